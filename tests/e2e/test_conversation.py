"""A shopper's whole conversation through the website chat, against the running
platform: search, refine, size advice, add to the cart, opt out of marketing; then
what the profile knows afterwards."""

import uuid
from typing import Any

import httpx
import pytest

from cli.stack import Stack
from tests.conftest import basic, bearer
from tests.e2e.conftest import eventually

pytestmark = pytest.mark.e2e


class Shopper:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.id = f"shopper-{uuid.uuid4().hex[:8]}"

    def say(self, text: str) -> list[dict[str, Any]]:
        response = httpx.post(
            f"{self.stack.api_url}/v1/channels/web/messages",
            json={"sender": self.id, "text": text}, headers=basic(), timeout=30,
        )  # fmt: skip
        assert response.status_code == 200, response.text
        return list(response.json()["messages"])

    def profile(self) -> dict[str, Any]:
        url = f"{self.stack.api_url}/v1/profiles/anonymous_id:{self.id}"
        response = httpx.get(url, headers=bearer(), timeout=10)
        return dict(response.json()) if response.status_code == 200 else {}


def colour_in_stock(stack: Stack, sku: str, size: str) -> str:
    product = httpx.get(f"{stack.api_url}/v1/products/{sku}", timeout=10).json()
    return next(
        v["color"] for v in product["variants"] if v["size"] == size and v["in_stock"]
    )


def products(replies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for r in replies for p in (r.get("custom") or {}).get("products", [])]


def text(replies: list[dict[str, Any]]) -> str:
    return "\n".join(r.get("text") or "" for r in replies)


def test_search_refine_size_cart_and_opt_out(stack: Stack) -> None:
    shopper = Shopper(stack)

    greeting = shopper.say("hi")
    found = products(shopper.say("do you have a hoodie for women under 60?"))
    cheaper = products(shopper.say("anything cheaper?"))
    advice = text(shopper.say("I usually wear M, which size should I take?"))
    first = shopper.say("add it to my cart in M")
    # The form asks for a colour when the product comes in several.
    added = (
        first
        if "Added the" in text(first)
        else shopper.say(colour_in_stock(stack, cheaper[0]["sku"], "M"))
    )
    stopped = text(shopper.say("stop"))

    assert "shopping assistant" in text(greeting)
    assert found, "the search found nothing"
    assert all(p["price"] <= 60 for p in found)
    assert cheaper, "the refinement found nothing"
    assert max(p["price"] for p in cheaper) < min(p["price"] for p in found)
    assert "M" in advice
    assert "Added the" in text(added), text(added)
    assert "no more marketing messages" in stopped
    cart = httpx.get(f"{stack.api_url}/shop/api/cart/{shopper.id}", timeout=10).json()
    assert len(cart["lines"]) == 1
    assert cart["lines"][0]["sku"].startswith(cheaper[0]["sku"] + "-M-")

    def settled() -> dict[str, Any]:
        profile = shopper.profile()
        names = {e["name"] for e in profile.get("recent_events", [])}
        traits = profile.get("traits", {})
        return (
            profile if "Product Added" in names and "preferred_size" in traits else {}
        )

    profile = eventually(settled, timeout=20)
    assert profile["traits"]["preferred_size"] == "M"
    consents = {c["purpose"]: c["status"] for c in profile["consents"]}
    assert consents["email_marketing"] == "withdrawn"
    assert consents["whatsapp_marketing"] == "withdrawn"

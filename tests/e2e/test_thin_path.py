"""The walking skeleton's thin path, through the real processes that `cdp demo` starts:
api, worker, action server and Rasa, on the demo catalog."""

import uuid
from typing import Any

import httpx
import pytest

from cli.stack import Stack
from tests.conftest import basic, bearer
from tests.e2e.conftest import eventually

pytestmark = pytest.mark.e2e


def profile_events(stack: Stack, visitor: str) -> list[dict[str, Any]]:
    url = f"{stack.api_url}/v1/profiles/anonymous_id:{visitor}/events"
    response = httpx.get(url, headers=bearer(), timeout=10)
    return response.json()["items"] if response.status_code == 200 else []


def test_tracked_view_lands_on_the_profile_and_drives_recommendations(
    stack: Stack,
) -> None:
    visitor = f"visitor-{uuid.uuid4().hex[:8]}"
    viewed = {"product_id": "WJ06", "sku": "WJ06", "name": "Juno Jacket", "price": 77}

    response = httpx.post(
        f"{stack.api_url}/v1/track",
        json={"anonymousId": visitor, "event": "Product Viewed", "properties": viewed},
        headers=basic(), timeout=10,
    )  # fmt: skip

    assert response.status_code == 200, response.text
    events = eventually(lambda: profile_events(stack, visitor))
    assert [(e["name"], e["properties"]["sku"]) for e in events] == [
        ("Product Viewed", "WJ06")
    ]
    recommended = httpx.get(
        f"{stack.api_url}/v1/recommendations",
        params={"profile": f"anonymous_id:{visitor}", "limit": 3,
                "placement": "product", "sku": "WJ06"},
        headers=basic(), timeout=10,
    ).json()  # fmt: skip
    assert recommended["strategy"] == "comparison"
    assert recommended["stage_reason"].startswith("from the placement; browsing: 1")
    assert "WJ06" not in [item["product"]["sku"] for item in recommended["items"]]
    assert recommended["items"][0]["reason"].startswith(
        "like the Juno Jacket you viewed"
    )


def test_assistant_answers_with_catalog_products_and_the_chat_joins_the_profile(
    stack: Stack,
) -> None:
    visitor = f"visitor-{uuid.uuid4().hex[:8]}"
    catalog = httpx.get(
        f"{stack.api_url}/v1/products",
        params={"category": "Women/Tops/Jackets", "limit": 100},
    ).json()["items"]
    jackets = {p["name"]: p["price"] for p in catalog}

    replies = httpx.post(
        f"{stack.rasa_url}/webhooks/rest/webhook",
        json={
            "sender": visitor,
            "message": "do you have a waterproof jacket for women?",
        },
        timeout=30,
    ).json()

    text = replies[0]["text"]
    listed = [line for line in text.splitlines() if line.startswith("- ")]
    assert len(listed) == 3, text
    for line in listed:
        name, price = line[2:].rsplit(": $", 1)
        assert jackets[name] == float(price), (
            f"{name} is not a women's jacket at that price"
        )
    wanted = {"Chat Message Received", "Chat Message Sent"}

    def both_stored() -> list[dict[str, Any]]:
        found = profile_events(stack, visitor)
        return found if wanted <= {e["name"] for e in found} else []

    events = eventually(both_stored)
    by_name = {e["name"]: e["properties"] for e in events}
    # Message text stays off the profile unless the shop's privacy setting keeps it.
    assert "text" not in by_name["Chat Message Received"]
    assert "text" not in by_name["Chat Message Sent"]
    assert by_name["Chat Message Received"]["intent"] == "search_product"


def test_storefront_chat_box_reaches_the_assistant(stack: Stack) -> None:
    visitor = f"visitor-{uuid.uuid4().hex[:8]}"

    page = httpx.get(f"{stack.api_url}/shop/p/wj06", timeout=10)
    reply = httpx.post(
        f"{stack.api_url}/v1/channels/web/messages",
        json={"sender": visitor, "text": "hello"}, headers=basic(), timeout=30,
    )  # fmt: skip

    assert page.status_code == 200
    assert "Juno Jacket" in page.text
    assert reply.status_code == 200, reply.text
    assert "shopping assistant" in reply.json()["messages"][0]["text"]


def test_a_sold_out_product_leaves_the_running_index_within_seconds(
    stack: Stack,
) -> None:
    def top_hit() -> str:
        body = httpx.get(
            f"{stack.api_url}/v1/products/search",
            params={"q": "gym duffle bag", "limit": 1}, timeout=10,
        ).json()  # fmt: skip
        return str(body["items"][0]["product"]["sku"])

    sold_out = top_hit()
    response = httpx.put(
        f"{stack.api_url}/v1/products/{sold_out}/stock",
        json={"qty": 0}, headers=bearer(), timeout=10,
    )  # fmt: skip

    assert response.status_code == 200, response.text
    assert eventually(lambda: top_hit() != sold_out, timeout=10)

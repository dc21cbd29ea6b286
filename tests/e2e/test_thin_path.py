"""The walking skeleton's thin path, through the real processes that `cdp demo` starts:
api, worker, action server and Rasa, on the demo catalog."""

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from cli.assistant import is_trained
from cli.stack import Ports, Stack
from tests.conftest import DEMO_CATALOG, basic, bearer

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Stack]:
    if not is_trained():
        pytest.fail(
            "the assistant model is missing or stale: run `cdp assistant train`"
        )
    workdir = tmp_path_factory.mktemp("stack")
    stack = Stack(
        ports=Ports.free(),
        workdir=workdir,
        database_url=f"sqlite:///{workdir / 'cdp.db'}",
        redis_url=redis_url,
        stream=f"e2e:{uuid.uuid4().hex}:events",
    )
    env = {**os.environ, "DATABASE_URL": stack.database_url or ""}
    subprocess.run(
        [sys.executable, "-m", "cli.main", "import", "catalog", str(DEMO_CATALOG)],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    stack.start()
    try:
        stack.wait_healthy(timeout=240)
        yield stack
    finally:
        stack.stop()


def eventually(probe: Callable[[], Any], timeout: float = 15.0) -> Any:
    """Poll until the probe returns something truthy (the worker is asynchronous)."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


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
    events = eventually(
        lambda: (
            len(profile_events(stack, visitor)) >= 2 and profile_events(stack, visitor)
        )
    )
    by_name = {e["name"]: e["properties"] for e in events}
    assert (
        by_name["Chat Message Received"]["text"]
        == "do you have a waterproof jacket for women?"
    )
    assert by_name["Chat Message Received"]["intent"] == "search_product"
    assert by_name["Chat Message Sent"]["text"] == text


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

"""The storefront's tracker (shop/static/cdp.js) in a real browser: page views,
batching, retries, persistence across pages, beacons and consent.

What the tracker sent is read from the api's side (``LiveApi.received``): beacons
sent while a page unloads are invisible to the browser's tooling.
"""

import itertools
import json
import time

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, Route

from tests.browser.live import LiveApi, Received
from tests.conftest import WRITE_KEY

pytestmark = pytest.mark.browser
QUEUE_KEY = f"cdp_queue:{WRITE_KEY}"


def visitor(context: BrowserContext) -> str:
    [cookie] = [c for c in context.cookies() if c["name"] == "cdp_aid"]
    return cookie["value"]


def stored_events(page: Page) -> list[dict]:
    return json.loads(page.evaluate(f"localStorage.getItem('{QUEUE_KEY}') || '[]'"))


def track_in_page(page: Page, event: str, **properties: object) -> bool:
    """Call cdp.track in the page and wait for its promise: delivered or not."""
    return page.evaluate(
        "([event, properties]) => cdp.track(event, properties)", [event, properties]
    )


def carrying(received: list[Received], event: str) -> list[Received]:
    return [r for r in received if any(e.get("event") == event for e in r.events)]


def a_product(shop: LiveApi) -> str:
    products = httpx.get(f"{shop.url}/v1/products", params={"limit": 1}).json()
    return products["items"][0]["url_key"]


def test_tracker_on_a_product_page_sends_its_page_view_and_product_view(
    shop: LiveApi, context: BrowserContext, page: Page
) -> None:
    url_key = a_product(shop)

    page.goto(f"{shop.url}/shop/p/{url_key}")

    events = shop.wait_for_events(f"anonymous_id:{visitor(context)}", 2)
    assert [(e["type"], e["name"]) for e in events] == [
        ("page", page.title()),
        ("track", "Product Viewed"),
    ]
    assert events[0]["properties"]["path"] == f"/shop/p/{url_key}"
    assert events[0]["context"]["library"]["name"] == "cdp.js"
    [cookie] = [c for c in context.cookies() if c["name"] == "cdp_aid"]
    assert (cookie["domain"], cookie["sameSite"]) == ("127.0.0.1", "Lax")
    assert cookie["expires"] > time.time() + 300 * 86400


def test_tracker_burst_of_track_calls_arrives_as_one_batch(
    shop: LiveApi, context: BrowserContext, page: Page
) -> None:
    page.goto(f"{shop.url}/shop")
    page.evaluate("cdp.flush()")  # the page view goes first, on its own

    delivered = page.evaluate(
        "Promise.all([1, 2, 3, 4, 5].map(i => cdp.track('Product Clicked', "
        "{position: i})))"
    )

    assert delivered == [True] * 5
    [batch] = carrying(shop.received("/v1/batch"), "Product Clicked")
    assert [e["properties"]["position"] for e in batch.events] == [1, 2, 3, 4, 5]
    events = shop.wait_for_events(f"anonymous_id:{visitor(context)}", 6)
    assert [e["name"] for e in events[1:]] == ["Product Clicked"] * 5


def test_tracker_while_the_api_answers_503_retries_later_and_delivers_once(
    shop: LiveApi, context: BrowserContext, page: Page
) -> None:
    shop.fail_next(503, count=3)
    page.goto(f"{shop.url}/shop")

    assert track_in_page(page, "Product Clicked", position=1) is True

    received = shop.received("/v1/batch")
    assert [r.status for r in received][:4] == [503, 503, 503, 200]
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(received)]
    assert gaps[0] < gaps[1] < gaps[2], f"no exponential backoff: {gaps}"
    delivered = [e["messageId"] for r in received if r.status == 200 for e in r.events]
    assert len(delivered) == len(set(delivered)) == 2
    events = shop.wait_for_events(f"anonymous_id:{visitor(context)}", 2)
    assert [e["type"] for e in events] == ["page", "track"]
    assert stored_events(page) == []


def test_tracker_refused_batch_is_dropped_and_not_sent_again(
    shop: LiveApi, page: Page
) -> None:
    shop.fail_next(422)
    page.goto(f"{shop.url}/shop")

    assert track_in_page(page, "Product Clicked", position=1) is False

    page.wait_for_timeout(1500)  # longer than the first retry would wait
    received = shop.received("/v1/batch")
    assert {r.status for r in received} == {422}
    sent = [e["messageId"] for r in received for e in r.events]
    assert len(sent) == len(set(sent)) == 2  # the page view and the click, once each
    assert stored_events(page) == []


def test_tracker_events_unsent_when_the_page_changes_arrive_from_the_next_page(
    shop: LiveApi, context: BrowserContext, page: Page
) -> None:
    shop.fail_next(503)  # until recover(): every request fails, beacons included
    page.goto(f"{shop.url}/shop")
    page.evaluate("void cdp.track('Product Clicked', {position: 1})")
    shop.wait_for(lambda: carrying(shop.received("/v1/batch"), "Product Clicked"))

    page.goto(f"{shop.url}/shop?category=Women")
    shop.recover()

    events = shop.wait_for_events(f"anonymous_id:{visitor(context)}", 3)
    assert [(e["type"], e["name"]) for e in events] == [
        ("page", "Luma demo shop"),
        ("track", "Product Clicked"),
        ("page", "Luma demo shop"),
    ]
    assert events[2]["properties"]["search"] == "?category=Women"
    failed_first = carrying(shop.received("/v1/batch"), "Product Clicked")[0]
    assert failed_first.status == 503


def test_tracker_leaving_a_page_sends_what_is_queued_with_a_beacon(
    shop: LiveApi, context: BrowserContext, page: Page
) -> None:
    page.goto(f"{shop.url}/shop")
    page.evaluate("cdp.flush()")
    page.evaluate("void cdp.track('Product Clicked', {position: 1})")

    page.goto(f"{shop.url}/shop/cart")

    beacons = shop.wait_for(
        lambda: [r for r in shop.received("/v1/batch") if r.is_beacon]
    )
    assert len(beacons) == 1
    assert beacons[0].headers["content-type"].startswith("text/plain")
    assert "authorization" not in beacons[0].headers
    assert beacons[0].payload["writeKey"] == WRITE_KEY
    assert [e["event"] for e in beacons[0].events] == ["Product Clicked"]
    assert beacons[0].status == 200
    events = shop.wait_for_events(f"anonymous_id:{visitor(context)}", 3)
    assert [e["name"] for e in events].count("Product Clicked") == 1


def test_tracker_with_consent_required_sends_and_keeps_nothing_until_granted(
    shop: LiveApi, context: BrowserContext, page: Page
) -> None:
    require_consent(context, f"{shop.url}/shop")
    page.goto(f"{shop.url}/shop")
    page.evaluate("void cdp.track('Product Clicked', {position: 1})")

    page.wait_for_timeout(2000)  # twice the flush interval
    assert shop.received("/v1/batch") == []
    assert context.cookies() == []
    assert stored_events(page) == []

    page.evaluate("cdp.consent.grant()")
    events = shop.wait_for_events(f"anonymous_id:{visitor(context)}", 2)
    assert [(e["type"], e["name"]) for e in events] == [
        ("page", "Luma demo shop"),
        ("track", "Product Clicked"),
    ]

    page.evaluate("cdp.consent.revoke()")
    requests_made = len(shop.received("/v1/batch"))
    assert track_in_page(page, "Product Clicked", position=2) is False
    page.wait_for_timeout(1500)
    assert len(shop.received("/v1/batch")) == requests_made
    assert context.cookies() == []


def require_consent(context: BrowserContext, url: str) -> None:
    """Serve ``url`` with the tracker's tag asking for consent, as a shop would."""

    def rewrite(route: Route) -> None:
        response = route.fetch()
        html = response.text().replace(
            "data-write-key=", 'data-consent-required="true" data-write-key=', 1
        )
        route.fulfill(response=response, body=html)

    context.route(url, rewrite)

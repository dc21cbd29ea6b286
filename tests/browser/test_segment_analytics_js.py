"""Segment's browser library (``@segment/analytics-next``, installed from npm into
web/ by scripts/setup.sh) on the demo page, served by the api as its own CDN."""

import re

import pytest
from playwright.sync_api import BrowserContext, Page, Route

from events.api import BROWSER_LIBRARY_DIR
from tests.browser.live import LiveApi
from tests.conftest import WRITE_KEY

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def _library_installed() -> None:
    if not BROWSER_LIBRARY_DIR.is_dir():
        pytest.fail(
            f"{BROWSER_LIBRARY_DIR} is missing: run scripts/setup.sh (npm ci in web/)"
        )


def block_other_hosts(context: BrowserContext, origin: str) -> list[str]:
    """Abort every request that leaves the api; the URLs that tried. (A pattern the
    browser matches itself: requests to the api never wait for this process.)"""
    elsewhere: list[str] = []

    def block(route: Route) -> None:
        elsewhere.append(route.request.url)
        route.abort()

    context.route(re.compile(f"^(?!{re.escape(origin)}/)"), block)
    return elsewhere


@pytest.mark.parametrize(
    ("delivery", "paths"),
    [("standard", ["/v1/p", "/v1/t", "/v1/i"]), ("batching", ["/v1/b"])],
)
def test_analytics_js_page_track_and_identify_land_on_one_profile(
    shop: LiveApi,
    context: BrowserContext,
    page: Page,
    delivery: str,
    paths: list[str],
) -> None:
    elsewhere = block_other_hosts(context, shop.url)
    page.goto(f"{shop.url}/shop/segment-demo?delivery={delivery}")
    page.wait_for_function(
        "document.getElementById('anonymous-id').textContent !== 'loading...'"
    )
    visitor = page.text_content("#anonymous-id")

    page.click("#track-view")
    page.fill("input[name=user_id]", "c-2002")
    page.fill("input[name=email]", "bob@example.com")
    page.click("#sign-in button")

    events = shop.wait_for_events(f"anonymous_id:{visitor}", 3)
    assert [(e["type"], e["name"]) for e in events] == [
        ("page", None),
        ("track", "Product Viewed"),
        ("identify", None),
    ]
    assert events[0]["properties"]["path"] == "/shop/segment-demo"
    assert events[1]["properties"]["sku"] == "WJ06"
    profile = shop.profile("email:bob@example.com")
    assert profile is not None
    assert {(i["type"], i["value"]) for i in profile["identities"]} >= {
        ("anonymous_id", visitor),
        ("customer_id", "c-2002"),
    }
    assert elsewhere == []
    assert len(shop.received(f"/v1/projects/{WRITE_KEY}/settings", method="GET")) == 1
    posts = [r for r in shop.recorder.received if r.method == "POST"]
    assert sorted({r.path for r in posts}) == sorted(paths)
    assert {r.headers["content-type"] for r in posts} == {"text/plain"}
    assert all(e["writeKey"] == WRITE_KEY for r in posts for e in r.events)

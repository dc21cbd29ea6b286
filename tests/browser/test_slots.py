"""Campaign slots on the storefront (shop/static/cdp.js, shop/templates): filled from
/v1/personalize once per page view, clicks tracked as Promotion Clicked and counted
in the campaign's results, and the shop's own content kept when the api fails."""

import re
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from playwright.sync_api import (
    BrowserContext,
    ConsoleMessage,
    Page,
    Response,
    Route,
    expect,
)

from catalog.models import Product
from core.settings import ROOT, get_settings
from recommender.embeddings import Embedder
from recommender.service import Recommender
from tests.browser.conftest import SHOP_PRODUCTS
from tests.browser.live import LiveApi
from tests.conftest import bearer

pytestmark = pytest.mark.browser
SHIPPED_CAMPAIGNS = ROOT / "shop" / "campaigns"
PERSONALIZE = re.compile(r"/v1/personalize\?")
JACKETS = ["mj01", "mj02", "mj04"]  # Men/Tops/Jackets: three make a comparison
GREETING = """\
id: greeting
name: Greeting for every visitor
kind: smart
placement:
  website: {slot: home}
variants:
  - id: hello
    template: "<p>Hello again</p>"
guards:
  control_share: 0
"""
FALLBACK = "Welcome to Luma: clothes and gear for every trail."


@pytest.fixture
def shipped_campaigns(
    settings_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """The shop's campaigns with no control group and one delivery a day per
    profile, so that what a visitor is shown is known in advance."""
    folder = tmp_path / "campaigns"
    shutil.copytree(SHIPPED_CAMPAIGNS, folder)
    for path in folder.glob("*.yml"):
        spec = yaml.safe_load(path.read_text())
        spec["guards"] = {
            **spec.get("guards", {}),
            "control_share": 0,
            "max_per_day": 1,
        }
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
    use_campaigns(monkeypatch, folder)
    return folder


@pytest.fixture
def greeting_campaign(
    settings_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """One home-slot campaign shown to every profile."""
    folder = tmp_path / "campaigns"
    folder.mkdir()
    (folder / "greeting.yml").write_text(GREETING)
    use_campaigns(monkeypatch, folder)
    return folder


def use_campaigns(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    monkeypatch.setenv("CDP_CAMPAIGNS__FOLDER", str(folder))
    get_settings.cache_clear()


@pytest.fixture
def shop_with_index(
    shop: LiveApi, embedder: Embedder, vector_cache_dir: Path,
    demo_products: list[Product],
) -> LiveApi:  # fmt: skip
    """The shop with a product index of its own products, so the campaigns' product
    links lead to pages that exist."""
    index = Recommender(embedder, vector_cache_dir)
    index.build(demo_products[:SHOP_PRODUCTS])
    shop.app.state.recommender = index
    return shop


def visitor(context: BrowserContext) -> str:
    [cookie] = [c for c in context.cookies() if c["name"] == "cdp_aid"]
    return f"anonymous_id:{cookie['value']}"


def is_personalize(response: Response) -> bool:
    return PERSONALIZE.search(response.url) is not None


def applied(shop: LiveApi, ref: str, name: str, count: int = 1) -> list[dict[str, Any]]:
    """The profile's events called ``name``, once the worker has applied ``count``
    of them (or the time is up)."""

    def found() -> list[dict[str, Any]]:
        shop.worker.run_once(block_ms=100)
        named = [e for e in shop.events(ref) if e["name"] == name]
        return named if len(named) >= count else []

    return shop.wait_for(found)


def view_products(shop: LiveApi, context: BrowserContext, page: Page) -> str:
    """Open the product pages of ``JACKETS`` one after the other, each applied to
    the profile before the next; the visitor's profile ref."""
    for count, url_key in enumerate(JACKETS, start=1):
        page.goto(f"{shop.url}/shop/p/{url_key}")
        ref = visitor(context)
        applied(shop, ref, "Product Viewed", count)
    return ref


def stage_of(shop: LiveApi, ref: str) -> str:
    response = httpx.get(f"{shop.url}/v1/profiles/{ref}/state", headers=bearer())
    assert response.status_code == 200, response.text
    return response.json()["state"]["stage"]


def shop_products(shop: LiveApi) -> list[dict[str, Any]]:
    response = httpx.get(f"{shop.url}/v1/products", params={"limit": 100})
    return response.json()["items"]


def results_of(shop: LiveApi, campaign: str) -> dict[str, tuple[int, int]]:
    url = f"{shop.url}/v1/campaigns/{campaign}/results"
    response = httpx.get(url, headers=bearer())
    assert response.status_code == 200, response.text
    return {
        v["variant"]: (v["impressions"], v["clicks"])
        for v in response.json()["variants"]
    }


def test_slot_while_comparing_shows_alternatives_and_counts_the_click_once(
    shipped_campaigns: Path, shop_with_index: LiveApi, context: BrowserContext,
    page: Page,
) -> None:  # fmt: skip
    shop = shop_with_index
    ref = view_products(shop, context, page)
    assert stage_of(shop, ref) == "comparison"

    with page.expect_response(is_personalize) as answered:
        page.goto(f"{shop.url}/shop/p/mj07")

    shown = answered.value.json()
    assert (shown["campaign"], shown["control"]) == ("comparison_alternatives", False)
    slot = page.locator("[data-cdp-slot=product_page]")
    links = slot.locator("a[data-cdp-click]")
    expect(links.first).to_be_visible()
    assert slot.get_attribute("data-cdp-variant") == shown["variant"]
    shop_names = {p["name"] for p in shop_products(shop)}
    assert set(links.all_inner_texts()) <= shop_names
    again = page.evaluate("cdp.fillSlots()")  # the same page view: not counted again
    assert again[0]["impression_id"] == shown["impression_id"]

    with page.expect_response(is_personalize) as next_answered:
        links.first.click()

    assert next_answered.value.json()["campaign"] is None  # one delivery a day
    expect(page.locator("[data-cdp-slot=product_page]")).to_be_empty()
    [click] = applied(shop, ref, "Promotion Clicked")
    impression = shown["impression_id"]
    assert click["properties"] == {
        "promotion_id": impression, "content_id": impression,
        "campaign": "comparison_alternatives", "variant": shown["variant"],
        "slot": "product_page", "url": page.url,
    }  # fmt: skip
    results = results_of(shop, "comparison_alternatives")
    assert results.pop(shown["variant"]) == (1, 1)
    assert set(results.values()) == {(0, 0)}  # the other variant


@pytest.mark.parametrize(
    "failure", ["503", "401", "connection refused"], ids=lambda f: f.replace(" ", "_")
)
def test_slot_when_personalisation_fails_keeps_the_shops_content(
    failure: str, greeting_campaign: Path, shop: LiveApi, context: BrowserContext,
    page: Page,
) -> None:  # fmt: skip
    console: list[ConsoleMessage] = []
    page.on("console", lambda message: console.append(message))
    page.goto(f"{shop.url}/shop")
    slot = page.locator("[data-cdp-slot=home]")
    # A visitor not met yet: nothing to show, and nothing logged.
    [first] = page.evaluate("cdp.fillSlots()")
    assert (first["campaign"], first["html"]) == (None, None)
    applied(shop, visitor(context), "Luma demo shop")
    page.route(PERSONALIZE, lambda route: fail(route, failure))

    with page.expect_console_message(is_slot_warning) as warned:
        page.reload()

    assert warned.value.type == "warning"
    expect(slot).to_have_text(FALLBACK)
    assert [m.text for m in console if "slot" in m.text] == [warned.value.text]
    page.unroute(PERSONALIZE)
    page.reload()
    expect(slot).to_have_text("Hello again")  # what the failure kept from showing


def fail(route: Route, failure: str) -> None:
    if failure == "connection refused":
        route.abort("connectionrefused")
    else:
        route.fulfill(
            status=int(failure), json={"detail": [{"type": f"http_{failure}"}]}
        )


def is_slot_warning(message: ConsoleMessage) -> bool:
    return "slot home keeps its content" in message.text

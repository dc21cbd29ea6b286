"""Browser tests: Debian's Chromium, driven by Playwright, against the real api on a
loopback port. Nothing is downloaded: Playwright drives /usr/bin/chromium."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, Playwright, sync_playwright
from sqlmodel import Session

from catalog.models import Product
from core import db
from tests.browser.live import LiveApi, serve_api

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SHOP_PRODUCTS = 24


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is not installed (apt-get install -y chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; .ci/run installs it, so CI must have it")
        pytest.skip(reason)
    with sync_playwright() as driver:
        yield driver


@pytest.fixture
def shop(
    settings_env: str, tmp_path: Path, demo_products: list[Product]
) -> Iterator[LiveApi]:
    """The api with a slice of the demo catalog, as a shopper's browser sees it."""
    engine = db.make_engine(f"sqlite:///{tmp_path / 'cdp.db'}")
    db.create_tables(engine)
    with Session(engine) as session:
        for product in demo_products[:SHOP_PRODUCTS]:
            session.add(Product(**product.model_dump()))
        session.commit()
    with serve_api(engine) as api:
        yield api
    engine.dispose()


@pytest.fixture
def context(playwright: Playwright, tmp_path: Path) -> Iterator[BrowserContext]:
    """A browser with a fresh profile: no cookies, no storage."""
    context = playwright.chromium.launch_persistent_context(
        tmp_path / "chromium-profile", executable_path=str(CHROMIUM),
        headless=True, args=CHROMIUM_ARGS,
    )  # fmt: skip
    context.set_default_timeout(20_000)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    page = context.pages[0] if context.pages else context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    assert errors == [], f"uncaught errors in the page: {errors}"

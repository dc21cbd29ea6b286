"""The website chat widget (channels/static/chat.js) on the demo storefront, in a real
browser.

Most tests put a scripted assistant behind the web channel (a dependency override of
``get_rasa``), so they check what the shopper sees without Rasa. The last one walks the
issue's path through the whole platform, Rasa included: chat, click a product card,
and find the chat and the product view on one profile.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from playwright.sync_api import BrowserContext, Locator, Page, expect

from channels.rasa import get_rasa
from cli.stack import Stack
from core.errors import UnavailableError
from tests.browser.live import LiveApi
from tests.conftest import bearer
from tests.e2e.conftest import eventually

pytestmark = pytest.mark.browser
CHEAPER = '/refine_search{"price_direction": "cheaper"}'
HOSTILE = '<img src=x onerror="window.hacked = true"><b>bold</b>'


@dataclass
class ScriptedAssistant:
    """Stands in for Rasa behind the web channel: answers each text from a script
    and records what it was sent; ``down`` plays an outage."""

    answers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    received: list[tuple[str, str]] = field(default_factory=list)
    down: bool = False

    def send(
        self, sender: str, text: str, metadata: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        if self.down:
            raise UnavailableError("the assistant is not reachable", loc=["rasa"])
        self.received.append((sender, text))
        return self.answers.get(text, [{"text": "Sorry, I did not get that."}])

    def trigger_intent(
        self, sender: str, intent: str, entities: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        return self.answers.get(f"/{intent}", [])


@pytest.fixture
def assistant(shop: LiveApi) -> Iterator[ScriptedAssistant]:
    scripted = ScriptedAssistant()
    app = shop.recorder.app
    assert isinstance(app, FastAPI)
    app.dependency_overrides[get_rasa] = lambda: scripted
    yield scripted
    app.dependency_overrides.pop(get_rasa, None)


def cards_of(shop: LiveApi, count: int) -> list[dict[str, Any]]:
    """Product cards as the assistant's search sends them, for real shop products."""
    products = httpx.get(f"{shop.url}/v1/products", params={"limit": count}).json()
    return [
        {"sku": p["sku"], "name": p["name"], "price": p["price"],
         "currency": p["currency"], "url": f"{shop.url}/shop/p/{p['url_key']}",
         "reason": "matches your search"}
        for p in products["items"]
    ]  # fmt: skip


def details(card: dict[str, Any]) -> dict[str, str]:
    """The search's button for a card, as the assistant sends it."""
    payload = "/product_details" + json.dumps({"product": card["sku"]})
    return {"title": card["name"], "payload": payload}


def search_answer(cards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    chips = [
        {"title": "Cheaper", "payload": CHEAPER},
        {"title": "In blue", "payload": '/refine_search{"color":"blue"}'},
    ]
    return [
        {
            "text": "Here is what I found:",
            "buttons": [details(c) for c in cards],
            "custom": {"products": cards},
        },
        {
            "text": "Anything else?",
            "buttons": [{"title": "View cart", "payload": "/view_cart"}],
            "custom": {"quick_replies": chips},
        },
    ]


def visitor(context: BrowserContext) -> str:
    [cookie] = [c for c in context.cookies() if c["name"] == "cdp_aid"]
    return cookie["value"]


def launcher(page: Page) -> Locator:
    return page.get_by_role("button", name="Chat with us")


def conversation(page: Page) -> Locator:
    return page.get_by_role("log", name="Conversation")


def chat(page: Page, text: str) -> None:
    """Open the widget if it is closed, type and send, as a shopper does."""
    box = page.get_by_role("textbox", name="Message to the shopping assistant")
    if not box.is_visible():
        launcher(page).click()
    box.fill(text)
    box.press("Enter")


def test_chat_widget_shows_buttons_quick_replies_and_product_cards(
    shop: LiveApi, assistant: ScriptedAssistant, context: BrowserContext, page: Page
) -> None:
    cards = cards_of(shop, 2)
    assistant.answers["show me jackets"] = search_answer(cards)
    assistant.answers["/view_cart"] = [{"text": "Your cart is empty."}]
    page.goto(f"{shop.url}/shop")

    chat(page, "show me jackets")

    log = conversation(page)
    expect(log.get_by_text("Anything else?")).to_be_visible()
    first = log.get_by_role("article", name=cards[0]["name"])
    link = first.get_by_role("link", name=cards[0]["name"])
    expect(link).to_have_attribute("href", cards[0]["url"])
    expect(first.get_by_text(f"${cards[0]['price']:.2f}")).to_be_visible()
    expect(first.get_by_role("button", name="Add to cart")).to_be_visible()
    # The search's button per product is the card's "Details", not a second list.
    expect(log.get_by_role("button", name=cards[0]["name"])).to_have_count(0)
    first.get_by_role("button", name="Details").click()
    expect(log.get_by_text("Sorry, I did not get that.")).to_have_count(1)
    assert assistant.received[-1][1] == details(cards[0])["payload"]

    # Quick replies went with the next message; buttons stay and send their payload.
    expect(log.get_by_role("group", name="Suggested replies")).to_have_count(0)
    log.get_by_role("button", name="View cart").click()
    expect(log.get_by_text("Your cart is empty.")).to_be_visible()
    assert assistant.received[-1] == (visitor(context), "/view_cart")
    expect(log.get_by_text("View cart", exact=True)).to_have_count(2)  # button, shown


def test_chat_widget_quick_reply_sends_its_payload_and_disappears(
    shop: LiveApi, assistant: ScriptedAssistant, page: Page
) -> None:
    assistant.answers["show me jackets"] = search_answer(cards_of(shop, 1))
    page.goto(f"{shop.url}/shop")
    chat(page, "show me jackets")
    chips = conversation(page).get_by_role("group", name="Suggested replies")

    chips.get_by_role("button", name="Cheaper").click()

    expect(chips).to_have_count(0)
    expect(conversation(page).get_by_text("Cheaper", exact=True)).to_be_visible()
    assert assistant.received[-1][1] == CHEAPER


def test_chat_widget_shows_bot_html_as_text_and_no_unsafe_link(
    shop: LiveApi, assistant: ScriptedAssistant, page: Page
) -> None:
    card = {"sku": "X1", "name": HOSTILE, "price": 1, "url": "javascript:alert(1)"}
    assistant.answers["hello"] = [{"text": HOSTILE, "custom": {"products": [card]}}]
    page.goto(f"{shop.url}/shop")

    chat(page, "hello")

    log = conversation(page)
    expect(log.get_by_text(HOSTILE, exact=True)).to_have_count(2)  # text, card name
    expect(log.locator("b")).to_have_count(0)
    expect(log.locator("img")).to_have_count(0)
    expect(log.get_by_role("link")).to_have_count(0)
    assert page.evaluate("window.hacked") is None


def test_chat_widget_conversation_and_draft_survive_a_page_load(
    shop: LiveApi, assistant: ScriptedAssistant, page: Page
) -> None:
    cards = cards_of(shop, 2)
    assistant.answers["show me jackets"] = search_answer(cards)
    page.goto(f"{shop.url}/shop")
    chat(page, "show me jackets")
    expect(conversation(page).get_by_text("Anything else?")).to_be_visible()
    box = page.get_by_role("textbox", name="Message to the shopping assistant")
    box.fill("and in size M")

    page.goto(f"{shop.url}/shop/cart")

    log = conversation(page)
    expect(log).to_be_visible()  # still open
    expect(log.get_by_text("show me jackets")).to_be_visible()
    expect(log.get_by_role("article")).to_have_count(2)
    expect(log.get_by_role("button", name="Cheaper")).to_be_visible()
    expect(box).to_have_value("and in size M")
    assert len(assistant.received) == 1  # shown again from storage, not asked again

    box.press("Escape")
    expect(log).to_be_hidden()
    expect(launcher(page)).to_be_focused()
    page.reload()
    expect(log).to_be_hidden()
    launcher(page).focus()  # from the keyboard: Enter opens it, ready to type
    page.keyboard.press("Enter")
    expect(box).to_be_focused()


def test_chat_widget_while_the_assistant_is_down_keeps_the_message_to_send_again(
    shop: LiveApi, assistant: ScriptedAssistant, page: Page
) -> None:
    assistant.answers["do you ship to Canada?"] = [{"text": "Yes, we do."}]
    assistant.down = True
    page.goto(f"{shop.url}/shop")

    chat(page, "do you ship to Canada?")

    log = conversation(page)
    expect(
        log.get_by_text("Sorry, I can't answer right now.", exact=False)
    ).to_be_visible()
    assistant.down = False
    log.get_by_role("button", name="Send again").click()
    expect(log.get_by_text("Yes, we do.")).to_be_visible()
    expect(log.get_by_role("button", name="Send again")).to_have_count(0)
    expect(log.get_by_text("do you ship to Canada?")).to_have_count(1)
    assert [text for _, text in assistant.received] == ["do you ship to Canada?"]


def test_chat_widget_campaign_message_opens_it_with_its_products(
    shop: LiveApi, assistant: ScriptedAssistant, context: BrowserContext, page: Page
) -> None:
    cards = cards_of(shop, 2)
    opening = "Still deciding between these two?"
    assistant.answers["/campaign_nudge"] = [
        {"text": opening, "custom": {"products": cards}}
    ]
    page.goto(f"{shop.url}/shop")
    expect(conversation(page)).to_be_hidden()

    response = httpx.post(
        f"{shop.url}/v1/conversations/web/{visitor(context)}/nudge",
        json={"campaign_id": "spring", "products": [c["sku"] for c in cards]},
        headers=bearer(),
    )
    assert response.status_code == 202, response.text
    page.goto(f"{shop.url}/shop?category=Women")

    log = conversation(page)
    expect(log.get_by_text(opening)).to_be_visible()
    expect(log.get_by_role("article")).to_have_count(2)
    expect(launcher(page)).to_have_attribute("aria-expanded", "true")


def test_chat_widget_with_a_person_on_the_conversation_shows_their_replies(
    shop: LiveApi, assistant: ScriptedAssistant, context: BrowserContext, page: Page
) -> None:
    page.goto(f"{shop.url}/shop")
    conversations = f"{shop.url}/v1/conversations/web/{visitor(context)}"
    httpx.post(f"{conversations}/handover", json={}, headers=bearer())

    chat(page, "where is my parcel?")

    expect(page.get_by_text("A person from our team will answer here.")).to_be_visible()
    assert assistant.received == []  # the assistant stays silent
    httpx.post(
        f"{conversations}/messages", json={"text": "Let me look that up."},
        headers=bearer(),
    )  # fmt: skip
    # Within the faster polling while a person has the conversation (3 s).
    expect(conversation(page).get_by_text("Let me look that up.")).to_be_visible(
        timeout=6000
    )


def test_chat_widget_card_clicks_and_cart_adds_land_on_the_browsing_profile(
    shop: LiveApi, assistant: ScriptedAssistant, context: BrowserContext, page: Page
) -> None:
    cards = cards_of(shop, 2)
    assistant.answers["show me jackets"] = search_answer(cards)
    page.goto(f"{shop.url}/shop")
    chat(page, "show me jackets")
    log = conversation(page)
    second = log.get_by_role("article", name=cards[1]["name"])

    second.get_by_role("button", name="Add to cart").click()
    expect(
        log.get_by_text(f"Added the {cards[1]['name']} to your cart.")
    ).to_be_visible()
    second.get_by_role("link", name=cards[1]["name"]).click()
    page.wait_for_url(cards[1]["url"])

    profile = f"anonymous_id:{visitor(context)}"
    assert assistant.received[0][0] == visitor(context)
    cart = httpx.get(f"{shop.url}/shop/api/cart/{visitor(context)}").json()
    assert [line["sku"] for line in cart["lines"]] == [cards[1]["sku"]]
    events = shop.wait_for_events(profile, 5)
    tracked = [
        (e["name"], e["properties"].get("sku")) for e in events if e["type"] == "track"
    ]
    assert tracked == [
        ("Product Added", cards[1]["sku"]),
        ("Product Clicked", cards[1]["sku"]),
        ("Product Viewed", cards[1]["sku"]),
    ]


@pytest.mark.e2e
def test_chat_widget_on_the_running_platform_joins_chat_and_browsing_in_one_profile(
    stack: Stack, context: BrowserContext, page: Page
) -> None:
    page.goto(f"{stack.api_url}/shop")

    chat(page, "show me jackets for women")
    card = conversation(page).get_by_role("article").first
    expect(card).to_be_visible(timeout=60_000)  # the first answer loads the model
    sku_link = card.get_by_role("link")
    url = sku_link.get_attribute("href")
    sku_link.click()
    page.wait_for_url(url or "")

    sku = page.locator("article.product").get_attribute("data-sku")
    ref = f"anonymous_id:{visitor(context)}"

    def joined() -> list[dict[str, Any]]:
        response = httpx.get(
            f"{stack.api_url}/v1/profiles/{ref}/events", params={"limit": 500},
            headers=bearer(), timeout=10,
        )  # fmt: skip
        events = response.json()["items"] if response.status_code == 200 else []
        names = {(e["name"], e["properties"].get("sku")) for e in events}
        wanted = {("Product Clicked", sku), ("Product Viewed", sku)}
        chatted = any(e["name"] == "Chat Message Received" for e in events)
        return events if chatted and wanted <= names else []

    events = eventually(joined, timeout=30)
    assert events, f"the chat and the product view are not on {ref}"
    said = [e for e in events if e["name"] == "Chat Message Received"]
    assert said[0]["properties"]["intent"] == "search_product"
    assert any(e["name"] == "Products Searched" for e in events)

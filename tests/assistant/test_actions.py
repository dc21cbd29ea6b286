"""Actions run without a Rasa server: a tracker in, the dispatcher's messages out.
Most reach the real api in-process, through its TestClient."""

from typing import Any

import pytest
from fastapi.testclient import TestClient
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import Engine
from sqlmodel import Session

from assistant.actions.platform import (
    PlatformClient,
    PlatformUnavailableError,
    ProductCard,
)
from assistant.actions.search import ActionSearchProducts
from catalog import service as catalog
from catalog.demo import DEMO_BRAND, DEMO_GEAR
from tests.conftest import DEMO_CATALOG


class RecordingPlatform:
    """Stands in for the platform api and remembers what it was asked."""

    def __init__(self, cards: list[ProductCard] | Exception) -> None:
        self.cards = cards
        self.calls: list[dict[str, Any]] = []

    def search_products(
        self, query: str, filters: dict[str, Any] | None = None, *, limit: int = 3
    ) -> list[ProductCard]:
        self.calls.append({"query": query, **(filters or {})})
        if isinstance(self.cards, Exception):
            raise self.cards
        return self.cards

    def track_quietly(self, *args: Any) -> None:
        pass


def make_tracker(
    text: str,
    entities: list[dict[str, Any]] | None = None,
    *,
    intent: str = "search_product",
    slots: dict[str, Any] | None = None,
    sender: str = "visitor-1",
) -> Tracker:
    message = {"text": text, "entities": entities or [], "intent": {"name": intent},
               "metadata": {"channel": "web"}}  # fmt: skip
    return Tracker(sender, slots or {}, message, [], False, None, {}, "action_listen")


def entities(**values: str) -> list[dict[str, Any]]:
    return [{"entity": k, "value": v} for k, v in values.items()]


JUNO = ProductCard("WJ06", "Juno Jacket", 77.0, "USD", "http://shop/p/wj06", "")


def test_search_answers_with_product_names_prices_and_buttons() -> None:
    platform = RecordingPlatform([JUNO])
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(
        "a jacket for women", entities(gender="women", category="jacket")
    )

    ActionSearchProducts(platform).run(dispatcher, tracker, {})  # type: ignore[arg-type]

    [message] = dispatcher.messages
    assert "Juno Jacket: $77.00" in message["text"]
    assert message["buttons"][0]["payload"] == '/product_details{"product":"WJ06"}'
    assert platform.calls == [
        {"query": "a jacket for women", "category": "Women/jacket"}
    ]


def test_search_when_the_platform_is_down_apologises_instead_of_failing() -> None:
    dispatcher = CollectingDispatcher()
    platform = RecordingPlatform(PlatformUnavailableError("search: timeout"))

    events = ActionSearchProducts(platform).run(  # type: ignore[arg-type]
        dispatcher, make_tracker("tee"), {}
    )

    assert events == []
    assert "can't reach the shop" in dispatcher.messages[0]["text"]


def test_a_typed_payload_with_a_junk_price_is_ignored_not_used() -> None:
    platform = RecordingPlatform([JUNO])
    tracker = make_tracker(
        '/search_product{"category": "hoodie", "max_price": "-5; drop"}',
        entities(category="hoodie", max_price="-5; drop"),
    )

    ActionSearchProducts(platform).run(CollectingDispatcher(), tracker, {})  # type: ignore[arg-type]

    assert platform.calls[0] == {"query": "hoodie -5; drop", "category": "hoodie"}


# Against the real api ---------------------------------------------------------------


@pytest.fixture
def platform(client: TestClient, engine: Engine) -> PlatformClient:
    with Session(engine) as session:
        catalog.import_file(session, DEMO_CATALOG, fmt="magento", brand=DEMO_BRAND)
        for path in DEMO_GEAR:
            catalog.import_file(session, path, fmt="magento-simple", brand=DEMO_BRAND)
    return PlatformClient(base_url="http://testserver", http=client)


def run(action, tracker: Tracker) -> tuple[list[dict], list[dict]]:  # type: ignore[no-untyped-def]
    dispatcher = CollectingDispatcher()
    events = action.run(dispatcher, tracker, {})
    return dispatcher.messages, events


def slots_of(events: list[dict]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


def test_refining_with_cheaper_shows_only_products_below_the_cheapest_shown(
    platform: PlatformClient,
) -> None:
    from assistant.actions.search import ActionRefineSearch

    _, first = run(ActionSearchProducts(platform), make_tracker(
        "hoodie for women", entities(category="hoodie", gender="women")
    ))  # fmt: skip
    slots = slots_of(first)
    shown = [platform.product(sku) for sku in slots["shown"]]
    messages, second = run(ActionRefineSearch(platform), make_tracker(
        "cheaper", entities(price_direction="cheaper"), intent="refine_search",
        slots=slots,
    ))  # fmt: skip

    cheapest = min(card.price for card in shown if card)
    refined = [platform.product(sku) for sku in slots_of(second)["shown"]]
    assert refined
    assert all(card and card.price < cheapest for card in refined)
    assert all(card and card.categories[0].startswith("Women/") for card in refined)
    assert messages[0]["text"].startswith("Here is what I found:")


def test_size_advice_uses_the_size_the_shopper_gives_and_remembers_it(
    platform: PlatformClient, engine: Engine
) -> None:
    from assistant.actions.sizing import ActionSizeAdvice
    from events.worker import Worker
    from profiles import service as profiles
    from tests.events.test_worker import drain, publish

    messages, events = run(ActionSizeAdvice(platform), make_tracker(
        "I wear M, which size for the Juno Jacket?",
        entities(size="M", product="Juno Jacket"), intent="size_advice",
    ))  # fmt: skip
    drain(Worker(engine, publish()))

    assert messages[0]["text"].startswith("Take your usual M: the Juno Jacket is in")
    assert slots_of(events)["product"] == "WJ06"
    with Session(engine) as session:
        profile = profiles.get_by_ref_or_raise(session, "anonymous_id:visitor-1")
        assert profile.traits["preferred_size"] == "M"


def test_size_advice_reads_the_size_a_shopper_bought_most(
    platform: PlatformClient, engine: Engine
) -> None:
    from assistant.actions.sizing import ActionSizeAdvice
    from events.worker import Worker
    from tests.events.test_worker import drain, envelope, publish

    bought = [
        envelope(f"o-{n}", anonymousId="visitor-1", event="Order Completed",
                 properties={"order_id": f"o-{n}", "total": 60.0,
                             "products": [{"sku": sku, "quantity": 1}]})
        for n, sku in enumerate(["MH01-L-Black", "MH02-L-Black", "MH03-M-Blue"])
    ]  # fmt: skip
    drain(Worker(engine, publish(*bought)))

    messages, _ = run(ActionSizeAdvice(platform), make_tracker(
        "which size for the Juno Jacket?", entities(product="Juno Jacket"),
        intent="size_advice",
    ))  # fmt: skip

    assert messages[0]["text"].startswith(
        "Going by your past orders you take L. Take your usual L: the Juno Jacket"
    )


def test_add_to_cart_puts_the_chosen_variant_in_the_cart_and_on_the_profile(
    platform: PlatformClient, engine: Engine
) -> None:
    from assistant.actions.cart import ActionAddToCart
    from events.worker import Worker
    from profiles import service as profiles
    from tests.events.test_worker import drain, publish

    messages, _ = run(ActionAddToCart(platform), make_tracker(
        "blue", intent="add_to_cart",
        slots={"product": "WJ06", "cart_size": "M", "cart_color": "Blue"},
    ))  # fmt: skip
    drain(Worker(engine, publish()))

    assert messages[0]["text"] == (
        "Added the Blue Juno Jacket in M to your cart. Cart total: $77.00."
    )
    cart = platform.cart("visitor-1")
    assert [line["sku"] for line in cart["lines"]] == ["WJ06-M-Blue"]
    with Session(engine) as session:
        profile = profiles.get_by_ref_or_raise(session, "anonymous_id:visitor-1")
        [added] = profiles.list_events(session, profile, name="Product Added")
    assert added.properties["sku"] == "WJ06-M-Blue"


def test_stop_withdraws_every_marketing_consent_even_for_a_new_visitor(
    platform: PlatformClient, client: TestClient
) -> None:
    from assistant.actions.consent import ActionSubscribe, ActionUnsubscribe
    from tests.conftest import bearer

    run(ActionSubscribe(platform), make_tracker(
        "send me offers by whatsapp", entities(channel="whatsapp"), intent="subscribe"
    ))  # fmt: skip
    messages, _ = run(
        ActionUnsubscribe(platform), make_tracker("STOP", intent="unsubscribe")
    )

    body = client.get("/v1/profiles/anonymous_id:visitor-1", headers=bearer()).json()
    consents = {c["purpose"]: c["status"] for c in body["consents"]}
    assert consents == {
        "email_marketing": "withdrawn", "whatsapp_marketing": "withdrawn",
        "sms_marketing": "withdrawn", "messenger_marketing": "withdrawn",
    }  # fmt: skip
    assert messages[0]["text"] == (
        "Done: you will get no more marketing messages on any channel."
    )


def test_order_status_shows_the_shoppers_orders_and_never_another_persons(
    platform: PlatformClient, engine: Engine
) -> None:
    from assistant.actions.orders import ActionOrderStatus
    from events.worker import Worker
    from tests.events.test_worker import drain, envelope, publish

    mine = envelope("o-1", event="Order Completed", anonymousId="visitor-1",
                    properties={"order_id": "100017", "total": 77.0,
                                "products": [{"sku": "WJ06"}]})  # fmt: skip
    theirs = envelope("o-2", event="Order Completed", anonymousId="visitor-2",
                      properties={"order_id": "100018", "total": 20.0})  # fmt: skip
    drain(Worker(engine, publish(mine, theirs)))
    action = ActionOrderStatus(platform)

    listed, _ = run(action, make_tracker("where is my order", intent="order_status"))
    other, _ = run(action, make_tracker(
        "order 100018", entities(order_number="100018"), intent="order_status"
    ))  # fmt: skip
    junk, _ = run(action, make_tracker(
        "x", entities(order_number="1; DROP TABLE"), intent="order_status"
    ))  # fmt: skip

    assert "order 100017" in listed[0]["text"]
    assert "completed, $77.00" in listed[0]["text"]
    assert other[0]["text"].startswith("I can't find order 100018 on your account")
    assert junk[0]["text"] == "That does not look like an order number."


def test_policy_answers_come_from_the_shops_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from assistant.actions.policy import POLICY_FILE, answer, load_policy

    text = POLICY_FILE.read_text().replace("cost: 15.00", "cost: 12.50")
    edited = tmp_path / "policy.yml"
    edited.write_text(text)

    delivery = answer("delivery_options", load_policy(edited))

    assert "- Express: 1-2 working days, $12.50" in delivery
    assert "- Standard: 3-5 working days, $5.00, free over $75.00" in delivery
    assert "30 days" in answer("return_refund", load_policy())


def test_a_handed_over_conversation_goes_to_the_agent_not_the_bot(
    client: TestClient, engine: Engine
) -> None:
    from events.worker import Worker
    from profiles import service as profiles
    from tests.conftest import basic, bearer
    from tests.events.test_worker import drain, publish

    url = "/v1/conversations/web/visitor-9"
    handed = client.post(f"{url}/handover", json={"reason": "a person please"},
                         headers=bearer())  # fmt: skip
    # Rasa is not running in this test: a message passed to it would be a 503.
    message = {"sender": "visitor-9", "text": "hello?"}
    silent = client.post("/v1/channels/web/messages", json=message, headers=basic())
    client.post(f"{url}/messages", json={"text": "Hi, I'm Sam."}, headers=bearer())
    polled = client.get("/v1/channels/web/messages/visitor-9", headers=basic())
    waiting = client.get("/v1/conversations/handovers", headers=bearer()).json()
    thread = client.get(f"{url}/messages", headers=bearer()).json()
    released = client.delete(f"{url}/handover", headers=bearer())
    drain(Worker(engine, publish()))

    assert handed.status_code == 201
    assert silent.json() == {"messages": [], "with_agent": True}
    assert polled.json()["messages"][0]["text"] == "Hi, I'm Sam."
    assert [h["sender"] for h in waiting] == ["visitor-9"]
    assert released.status_code == 204
    assert client.get("/v1/conversations/handovers", headers=bearer()).json() == []
    assert [(m["from"], m["text"]) for m in thread] == [
        ("shopper", "hello?"), ("agent", "Hi, I'm Sam.")
    ]  # fmt: skip
    with Session(engine) as session:
        profile = profiles.get_by_ref_or_raise(session, "anonymous_id:visitor-9")
        events = profiles.list_events(session, profile, limit=10)
    assert sorted(e.name for e in events) == [
        "Agent Message", "Agent Released", "Agent Requested", "Chat Message"
    ]  # fmt: skip
    # The shop keeps no message text by default: the agent read it in the thread.
    assert not any("text" in e.properties for e in events)


def test_a_campaign_nudge_names_the_products_and_goes_on_the_profile(
    platform: PlatformClient, engine: Engine
) -> None:
    from assistant.actions.campaigns import ActionCampaignNudge
    from assistant.actions.cart import ActionAddToCart
    from events.worker import Worker
    from profiles import service as profiles
    from tests.events.test_worker import drain, publish

    nudge = [{"entity": "campaign_id", "value": "spring-jackets"},
             {"entity": "product", "value": "WJ06"},
             {"entity": "product", "value": "WJ04"}]  # fmt: skip
    messages, events = run(ActionCampaignNudge(platform), make_tracker(
        "", nudge, intent="campaign_nudge"
    ))  # fmt: skip
    run(ActionAddToCart(platform), make_tracker("", intent="add_to_cart", slots={
        "product": "WJ06", "cart_size": "S", "cart_color": "Blue",
        "campaign_id": slots_of(events)["campaign_id"],
    }))  # fmt: skip
    drain(Worker(engine, publish()))

    assert messages[0]["text"].startswith(
        "Still deciding between the Juno Jacket and the Ingrid Running Jacket?"
    )
    with Session(engine) as session:
        profile = profiles.get_by_ref_or_raise(session, "anonymous_id:visitor-1")
        found = {e.name: e.properties for e in profiles.list_events(session, profile)}
    assert found["Campaign Message Sent"]["campaign_id"] == "spring-jackets"
    assert found["Product Added"]["campaign_id"] == "spring-jackets"


def test_a_nudge_triggered_in_rasas_short_form_still_shows_its_products(
    platform: PlatformClient,
) -> None:
    from assistant.actions.campaigns import ActionCampaignNudge

    # {"product": ["WJ06", "WJ04"]} in a trigger becomes one entity with a list.
    nudge = [{"entity": "campaign_id", "value": "spring-jackets"},
             {"entity": "product", "value": ["WJ06", "WJ04"]}]  # fmt: skip
    messages, events = run(ActionCampaignNudge(platform), make_tracker(
        "", nudge, intent="campaign_nudge"
    ))  # fmt: skip

    assert messages[0]["text"].startswith(
        "Still deciding between the Juno Jacket and the Ingrid Running Jacket?"
    )
    assert slots_of(events)["shown"] == ["WJ06", "WJ04"]


def test_a_nudge_waits_while_a_person_has_the_conversation(client: TestClient) -> None:
    from tests.conftest import bearer

    url = "/v1/conversations/web/visitor-7"
    client.post(f"{url}/handover", json={}, headers=bearer())

    refused = client.post(
        f"{url}/nudge", json={"campaign_id": "c-1", "products": ["WJ06"]},
        headers=bearer(),
    )  # fmt: skip
    bad = client.post(
        f"{url}/nudge", json={"campaign_id": "no spaces"}, headers=bearer()
    )

    assert refused.status_code == 409
    assert bad.status_code == 422


def test_the_action_server_can_load_and_copy_every_action() -> None:
    """rasa-sdk registers every Action it finds and pickles them into its worker."""
    import pickle

    from rasa_sdk.executor import ActionExecutor

    executor = ActionExecutor()
    executor.register_package("assistant.actions")

    wanted = {"action_search_products", "action_add_to_cart", "validate_cart_form",
              "action_session_start", "action_campaign_nudge"}  # fmt: skip
    assert wanted <= set(executor.actions)
    pickle.dumps(executor)


def test_a_brand_the_shop_does_not_carry_is_named_and_its_own_products_shown(
    platform: PlatformClient,
) -> None:
    messages, events = run(ActionSearchProducts(platform), make_tracker(
        "any adidas shorts?", entities(brand="Adidas", category="shorts")
    ))  # fmt: skip

    [message] = messages
    assert message["text"].startswith("We don't carry Adidas. Here is what we have:")
    shown = [platform.product(sku) for sku in slots_of(events)["shown"]]
    assert shown
    assert all(card and "Shorts" in card.categories[0] for card in shown)
    # "in blue" next refines the shorts shown, not a brand there is none of.
    assert slots_of(events).get("brand") is None


def test_a_brand_the_shop_carries_filters_the_search(platform: PlatformClient) -> None:
    messages, events = run(ActionSearchProducts(platform), make_tracker(
        "luma bags", entities(brand="luma", category="bag")
    ))  # fmt: skip

    assert messages[0]["text"].startswith("Here is what I found:")
    assert slots_of(events)["brand"] == "luma"
    shown = [platform.product(sku) for sku in slots_of(events)["shown"]]
    assert shown
    assert all(card and card.attributes["brand"] == "Luma" for card in shown)


def test_a_carried_brand_with_nothing_matching_says_so(
    platform: PlatformClient,
) -> None:
    # Luma has no watch under $10, and no other brand has one either.
    messages, _ = run(ActionSearchProducts(platform), make_tracker(
        "luma watch under 10",
        entities(brand="Luma", category="watch", max_price="10"),
    ))  # fmt: skip

    assert messages[0]["text"] == "I found nothing from Luma for that."
    assert messages[1]["response"] == "utter_nothing_found"


def test_cheaper_than_the_cheapest_says_so(platform: PlatformClient) -> None:
    from assistant.actions.search import ActionRefineSearch

    _, first = run(ActionSearchProducts(platform), make_tracker(
        "yoga pants for women under 50",
        entities(category="pants", gender="women", max_price="50"),
    ))  # fmt: skip
    slots = slots_of(first)
    for _ in range(5):  # cheaper, and cheaper again, until there is nothing left
        messages, events = run(ActionRefineSearch(platform), make_tracker(
            "cheaper", entities(price_direction="cheaper"), intent="refine_search",
            slots=slots,
        ))  # fmt: skip
        slots = {**slots, **slots_of(events)}
        if not slots.get("shown"):
            break

    assert messages[0]["text"].startswith("Those were already the cheapest I have")


def test_a_returning_shopper_is_greeted_with_the_name_of_what_they_viewed(
    platform: PlatformClient, engine: Engine
) -> None:
    from assistant.actions.session import context_of
    from events.worker import Worker
    from tests.events.test_worker import drain, envelope, publish

    drain(Worker(engine, publish(envelope("v-1", anonymousId="visitor-1",
                                          properties={"sku": "WJ06"}))))  # fmt: skip

    context = context_of(platform, make_tracker("hi", intent="greet"))

    assert context["returning"] is True
    assert context["last_viewed"] == "Juno Jacket"


def ask_for_gift_ideas(
    platform: PlatformClient, text: str, **found: Any
) -> tuple[str, list[ProductCard | None]]:
    """The reply's first line and the products shown, for a gift_ideas message
    with these entities."""
    from assistant.actions.recommend import ActionGiftIdeas

    tracker = make_tracker(
        text,
        [{"entity": name, "value": value} for name, value in found.items()],
        intent="gift_ideas",
    )
    messages, events = run(ActionGiftIdeas(platform), tracker)
    shown = [platform.product(sku) for sku in slots_of(events).get("shown", [])]
    return messages[0]["text"].splitlines()[0], shown


def test_gift_ideas_for_my_mum_are_womens_products_in_the_budget(
    platform: PlatformClient,
) -> None:
    heading, shown = ask_for_gift_ideas(
        platform, "gift ideas for my mum under 50", recipient="my mum", max_price=50.0
    )

    assert heading == "Gift ideas for your mum under $50:"
    assert shown
    assert all(card and card.price <= 50 for card in shown)
    assert all(card and card.categories[0].startswith("Women/") for card in shown)


def test_gift_ideas_for_an_occasion_search_for_it(platform: PlatformClient) -> None:
    heading, shown = ask_for_gift_ideas(
        platform, "a present for my husband's yoga practice",
        recipient="my husband's", occasion="yoga",
    )  # fmt: skip

    assert heading == "Yoga gift ideas for your husband:"
    assert shown
    assert all(card and card.categories[0].startswith("Men/") for card in shown)


def test_birthday_gift_ideas_are_the_shops_picks_for_the_recipient(
    platform: PlatformClient,
) -> None:
    heading, shown = ask_for_gift_ideas(
        platform, "something for my girlfriend's birthday",
        recipient="my girlfriend", occasion="birthday",
    )  # fmt: skip

    assert heading == "Birthday gift ideas for your girlfriend:"
    assert shown
    assert all(card and card.categories[0].startswith("Women/") for card in shown)


def test_product_details_name_the_brand_price_and_sizes_in_stock(
    platform: PlatformClient,
) -> None:
    from assistant.actions.products import details

    card = platform.product("WJ06")
    assert card is not None

    assert details(card).startswith(
        "Juno Jacket by Luma, $77.00: in stock in sizes XS, S, M, L, XL."
    )

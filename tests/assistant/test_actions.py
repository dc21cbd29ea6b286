"""Actions run without a server: a tracker in, the dispatcher's messages out."""

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from assistant.actions.platform import PlatformUnavailableError, ProductCard
from assistant.actions.search import ActionSearchProducts


class RecordingPlatform:
    """Stands in for the platform api and remembers what it was asked."""

    def __init__(self, cards: list[ProductCard] | Exception) -> None:
        self.cards = cards
        self.calls: list[dict[str, Any]] = []

    def search_products(self, query: str, **filters: Any) -> list[ProductCard]:
        self.calls.append({"query": query, **filters})
        if isinstance(self.cards, Exception):
            raise self.cards
        return self.cards


def make_tracker(text: str, entities: list[dict[str, Any]]) -> Tracker:
    message = {"text": text, "entities": entities, "intent": {"name": "search_product"}}
    return Tracker("visitor-1", {}, message, [], False, None, {}, "action_listen")


JUNO = ProductCard("WJ06", "Juno Jacket", 77.0, "USD", "http://shop/p/wj06", "")


def test_search_answers_with_product_names_and_prices() -> None:
    platform = RecordingPlatform([JUNO])
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(
        "a jacket for women",
        [
            {"entity": "gender", "value": "women"},
            {"entity": "category", "value": "jacket"},
        ],
    )

    ActionSearchProducts(platform).run(dispatcher, tracker, {})

    [message] = dispatcher.messages
    assert "Juno Jacket: $77.00" in message["text"]
    assert message["custom"]["products"][0]["sku"] == "WJ06"
    assert platform.calls == [
        {"query": "a jacket for women", "category": "Women", "color": None}
    ]


def test_search_with_no_results_asks_the_shopper_to_rephrase() -> None:
    dispatcher = CollectingDispatcher()

    ActionSearchProducts(RecordingPlatform([])).run(
        dispatcher, make_tracker("a unicorn saddle", []), {}
    )

    assert "couldn't find anything" in dispatcher.messages[0]["text"]


def test_search_when_the_platform_is_down_apologises_instead_of_failing() -> None:
    dispatcher = CollectingDispatcher()
    platform = RecordingPlatform(
        PlatformUnavailableError("/v1/products/search: timeout")
    )

    events = ActionSearchProducts(platform).run(dispatcher, make_tracker("tee", []), {})

    assert events == []
    assert "can't reach the product catalog" in dispatcher.messages[0]["text"]


def test_search_from_a_raw_intent_payload_uses_its_entities_not_the_payload() -> None:
    platform = RecordingPlatform([JUNO])
    tracker = make_tracker(
        '/search_product{"color": "red", "category": "hoodie"}',
        [
            {"entity": "color", "value": "red"},
            {"entity": "category", "value": "hoodie"},
        ],
    )

    ActionSearchProducts(platform).run(CollectingDispatcher(), tracker, {})

    assert platform.calls[0]["query"] == "red hoodie"
    assert platform.calls[0]["color"] == "red"

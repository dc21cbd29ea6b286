"""Product search and its refinement ("in blue", "cheaper", "only size M")."""

import logging
import string
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from assistant.actions.platform import (
    PlatformAction,
    PlatformUnavailableError,
    ProductCard,
)
from assistant.actions.shopper import (
    attribution,
    entity,
    filters_of,
    price,
    profile_ref,
)

logger = logging.getLogger(__name__)
SEARCH_SLOTS = (
    "category", "gender", "color", "size", "brand", "min_price", "max_price"
)  # fmt: skip
SHOWN = 3


def search_text(tracker: Tracker) -> str:
    """What to search for: the shopper's words, or, for a button or a typed
    ``/search_product{...}`` payload, the entity values it carries."""
    text = (tracker.latest_message.get("text") or "").strip()
    if text.startswith("/"):
        values = [
            str(e.get("value")) for e in tracker.latest_message.get("entities", [])
        ]
        text = " ".join(v for v in values if v) or "popular products"
    return text[:500]


def show_products(
    dispatcher: CollectingDispatcher, cards: list[ProductCard], intro: str
) -> None:
    lines = "\n".join(card.line() for card in cards)
    dispatcher.utter_message(
        text=f"{intro}\n{lines}",
        buttons=[card.button() for card in cards],
        json_message={"products": [card.public() for card in cards]},
    )


def unavailable(dispatcher: CollectingDispatcher, what: str, exc: Exception) -> list:
    logger.warning("platform call failed", extra={"what": what, "error": str(exc)})
    dispatcher.utter_message(
        text="Sorry, I can't reach the shop right now. Please try again in a minute."
    )
    return []


class ActionSearchProducts(PlatformAction, Action):
    """A new search: the filters are what this message says, nothing older."""

    def name(self) -> str:
        return "action_search_products"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        slots = {name: entity(tracker, name) for name in SEARCH_SLOTS}
        slots["min_price"] = price(slots["min_price"])
        slots["max_price"] = price(slots["max_price"])
        query = search_text(tracker)
        return self.search(dispatcher, tracker, query, slots)

    def search(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        query: str,
        slots: dict[str, Any],
        *,
        empty: str | None = None,
    ) -> list[dict[str, Any]]:
        """Search, show, remember; ``empty`` is what to say when nothing is found,
        if something better than the general answer fits."""
        brand_note = None
        try:
            cards = self.client.search_products(query, filters_of(slots), limit=SHOWN)
            if not cards and slots.get("brand"):
                brand_note = self._without_brand(query, slots)
                cards = self.client.search_products(
                    query, filters_of(slots), limit=SHOWN
                )
        except PlatformUnavailableError as exc:
            return unavailable(dispatcher, "search", exc)
        # Only what changed: every event is stored and re-read with the conversation.
        events = [
            SlotSet(name, value)
            for name, value in {**slots, "query": query}.items()
            if tracker.get_slot(name) != value
        ]
        if not cards and brand_note:
            dispatcher.utter_message(text=brand_note)
        if not cards and empty:
            dispatcher.utter_message(text=empty)
            return events
        if not cards:
            dispatcher.utter_message(response="utter_nothing_found")
            return [*events, SlotSet("shown", [])]
        if brand_note:
            show_products(dispatcher, cards, f"{brand_note} Here is what we have:")
        else:
            show_products(dispatcher, cards, "Here is what I found:")
        self.client.track_quietly(
            profile_ref(tracker),
            "Products Searched",
            {"query": query, **filters_of(slots), **attribution(tracker)},
        )
        return [*events, SlotSet("shown", [c.sku for c in cards])]

    def _without_brand(self, query: str, slots: dict[str, Any]) -> str:
        """Nothing of the brand asked for: say whether the shop has the brand at
        all, and search the same without it (``slots`` loses the brand)."""
        brand = str(slots.pop("brand"))
        slots["brand"] = None
        name = string.capwords(brand) if brand.islower() else brand
        if self.client.search_products(query, {"brand": brand}, limit=1):
            return f"I found nothing from {name} for that."
        return f"We don't carry {name}."


class ActionRefineSearch(ActionSearchProducts):
    """The last search with this message's changes: a colour, a size, a price
    limit, "cheaper" (below the cheapest shown) or "more expensive"."""

    def name(self) -> str:
        return "action_refine_search"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        query = tracker.get_slot("query")
        if not query:
            dispatcher.utter_message(response="utter_ask_what_to_search")
            return []
        slots = {name: tracker.get_slot(name) for name in SEARCH_SLOTS}
        for name in SEARCH_SLOTS:
            value = entity(tracker, name)
            if value is not None:
                slots[name] = price(value) if name.endswith("_price") else value
        direction = entity(tracker, "price_direction")
        if direction:
            shown = self._shown_prices(tracker)
            if shown and direction == "cheaper":
                slots["max_price"] = round(min(shown) - 0.01, 2)
                slots["min_price"] = None
            elif shown and direction == "pricier":
                slots["min_price"] = round(max(shown) + 0.01, 2)
                slots["max_price"] = None
        cheapest = (
            "Those were already the cheapest I have for that search. Shall I look in "
            "another category or colour?"
        )
        return self.search(
            dispatcher, tracker, query, slots,
            empty=cheapest if direction == "cheaper" else None,
        )  # fmt: skip

    def _shown_prices(self, tracker: Tracker) -> list[float]:
        prices = []
        for sku in tracker.get_slot("shown") or []:
            try:
                card = self.client.product(sku)
            except PlatformUnavailableError:
                continue
            if card is not None:
                prices.append(card.price)
        return prices

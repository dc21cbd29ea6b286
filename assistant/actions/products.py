"""Product details, stock and sizes, and comparing two products."""

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from assistant.actions.platform import (
    PlatformAction,
    PlatformClient,
    PlatformUnavailableError,
    ProductCard,
    money,
)
from assistant.actions.search import unavailable


def find_product(client: PlatformClient, reference: str | None) -> ProductCard | None:
    """A sku, or a product name as a shopper types it ("the juno jacket")."""
    if not reference:
        return None
    reference = str(reference).strip()[:200]
    direct = client.product(reference) if " " not in reference else None
    if direct is not None:
        return direct
    found = client.search_products(reference, {"in_stock": False}, limit=1)
    if not found:
        return None
    asked = _words(reference) - {"the", "a", "an", "one"}
    return found[0] if asked & _words(found[0].name) else None


def product_in_focus(client: PlatformClient, tracker: Tracker) -> ProductCard | None:
    """The product this message names, else the one talked about last, else the
    first one shown."""
    for entity in tracker.latest_message.get("entities", []):
        if entity.get("entity") == "product":
            found = find_product(client, entity.get("value"))
            if found is not None:
                return found
    for sku in [tracker.get_slot("product"), *(tracker.get_slot("shown") or [])[:1]]:
        if sku:
            found = client.product(sku)
            if found is not None:
                return found
    return None


def availability(card: ProductCard) -> str:
    if not card.in_stock:
        return "it is sold out at the moment"
    if not card.variants:
        return "it is in stock"
    sizes = [s for s in card.sizes if any(
        v.get("size") == s and v.get("in_stock") for v in card.variants
    )]  # fmt: skip
    gone = [s for s in card.sizes if s not in sizes]
    text = f"in stock in sizes {', '.join(sizes)}" if sizes else "sold out"
    return text + (f" (sold out in {', '.join(gone)})" if gone else "")


def details(card: ProductCard) -> str:
    name = f"{card.name} by {card.brand}" if card.brand else card.name
    lines = [f"{name}, {money(card.price, card.currency)}: {availability(card)}."]
    if card.colors:
        lines.append(f"Colours: {', '.join(card.colors)}.")
    material = card.attributes.get("material")
    if material:
        values = material if isinstance(material, list) else [material]
        lines.append(f"Material: {', '.join(values)}.")
    if card.review_count and card.rating is not None:
        lines.append(
            f"Rated {card.rating:.1f} of 5 in {card.review_count} "
            f"review{'s' if card.review_count != 1 else ''}."
        )
    lines.append(card.url)
    return " ".join(lines)


class ActionProductDetails(PlatformAction, Action):
    def name(self) -> str:
        return "action_product_details"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        try:
            card = product_in_focus(self.client, tracker)
        except PlatformUnavailableError as exc:
            return unavailable(dispatcher, "product details", exc)
        if card is None:
            dispatcher.utter_message(response="utter_which_product")
            return []
        dispatcher.utter_message(
            text=details(card), json_message={"products": [card.public()]}
        )
        return [SlotSet("product", card.sku)]


class ActionCompareProducts(PlatformAction, Action):
    def name(self) -> str:
        return "action_compare_products"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        named = [
            e.get("value")
            for e in tracker.latest_message.get("entities", [])
            if e.get("entity") == "product"
        ]
        try:
            cards = [c for c in (find_product(self.client, n) for n in named) if c]
            for sku in tracker.get_slot("shown") or []:
                if len(cards) >= 2:
                    break
                if all(c.sku != sku for c in cards):
                    found = self.client.product(sku)
                    cards += [found] if found else []
        except PlatformUnavailableError as exc:
            return unavailable(dispatcher, "compare", exc)
        if len(cards) < 2:
            dispatcher.utter_message(response="utter_which_two_products")
            return []
        first, second = cards[:2]
        dispatcher.utter_message(text=compare(first, second))
        return [SlotSet("product", first.sku)]


def compare(first: ProductCard, second: ProductCard) -> str:
    rows = [f"{first.name} or {second.name}:"]
    gap = second.price - first.price
    if abs(gap) >= 1:
        cheaper, dearer = (first, second) if gap > 0 else (second, first)
        rows.append(f"- the {cheaper.name} is {money(abs(gap), first.currency)} "
                    f"cheaper than the {dearer.name}")  # fmt: skip
    else:
        rows.append(f"- the same price, {money(first.price, first.currency)}")
    for key, label in (("material", "material"), ("climate", "made for")):
        a, b = first.attributes.get(key), second.attributes.get(key)
        if a and b and a != b:
            rows.append(f"- {label}: {_list(a)} against {_list(b)}")
    only = [c for c in second.colors if c not in first.colors]
    if only:
        rows.append(f"- only the {second.name} comes in {', '.join(only)}")
    for card in (first, second):
        rows.append(f"- the {card.name} is {availability(card)}")
        if card.review_count and card.rating is not None:
            rows.append(f"- the {card.name} is rated {card.rating:.1f} of 5 "
                        f"({card.review_count} reviews)")  # fmt: skip
    return "\n".join(rows)


def _list(value: Any) -> str:
    return ", ".join(value) if isinstance(value, list) else str(value)


def _words(text: str) -> set[str]:
    return {w.strip(".,!?'\"").lower().rstrip("s") for w in text.split()}

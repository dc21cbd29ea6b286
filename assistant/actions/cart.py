"""Adding to the demo shop's cart and showing it; the size and colour come from a
form, so a shopper can answer "M" to "which size?"."""

from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from assistant.actions.platform import (
    PlatformAction,
    PlatformClient,
    PlatformUnavailableError,
    money,
)
from assistant.actions.products import find_product, product_in_focus
from assistant.actions.search import unavailable
from assistant.actions.shopper import attribution, entity, profile_ref
from assistant.actions.sizing import sizes_in_stock

SIZE_WORDS = {"SMALL": "S", "MEDIUM": "M", "LARGE": "L", "EXTRA-SMALL": "XS",
              "EXTRA-LARGE": "XL"}  # fmt: skip


class ActionPrepareCart(PlatformAction, Action):
    """Before the form: which product, and the size and colour this message says."""

    def name(self) -> str:
        return "action_prepare_cart"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        try:
            card = product_in_focus(self.client, tracker)
        except PlatformUnavailableError as exc:
            return unavailable(dispatcher, "cart", exc)
        size, color = entity(tracker, "size"), entity(tracker, "color")
        return [
            SlotSet("product", card.sku if card else None),
            SlotSet("cart_size", str(size).upper() if size else None),
            SlotSet("cart_color", str(color).title() if color else None),
        ]


class ValidateCartForm(FormValidationAction):
    def __init__(self, client: PlatformClient | None = None) -> None:
        self.client = client or PlatformClient()

    def name(self) -> str:
        return "validate_cart_form"

    async def required_slots(
        self, domain_slots: list[str], dispatcher: CollectingDispatcher,
        tracker: Tracker, domain: DomainDict,
    ) -> list[str]:  # fmt: skip
        sku = tracker.get_slot("product")
        if not sku:
            return ["product"]
        card = self.client.product(sku)
        if card is None or not card.variants:
            return ["product"]
        needed = ["product"]
        if card.sizes:
            needed.append("cart_size")
        if len(card.colors) > 1:
            needed.append("cart_color")
        return needed

    def validate_product(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
        domain: DomainDict,
    ) -> dict[str, Any]:  # fmt: skip
        card = find_product(self.client, value)
        if card is None:
            dispatcher.utter_message(response="utter_which_product")
            return {"product": None}
        return {"product": card.sku}

    def validate_cart_size(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
        domain: DomainDict,
    ) -> dict[str, Any]:  # fmt: skip
        card = self.client.product(tracker.get_slot("product"))
        available = sizes_in_stock(card.variants, card.sizes) if card else []
        # An entity ("M") or the words of an answer ("medium please", "size 32").
        words = [w.strip(".,!?").upper() for w in str(value).split()]
        words = [SIZE_WORDS.get(w, w) for w in words]
        size = next((w for w in words if w in available), None)
        if size:
            return {"cart_size": size}
        asked = next((w for w in words if w in (card.sizes if card else [])), None)
        dispatcher.utter_message(
            text=(f"{asked} is sold out" if asked else "Please pick a size")
            + f"; in stock: {', '.join(available)}."
        )
        return {"cart_size": None}

    def validate_cart_color(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
        domain: DomainDict,
    ) -> dict[str, Any]:  # fmt: skip
        card = self.client.product(tracker.get_slot("product"))
        size = tracker.get_slot("cart_size")
        colors = [
            v["color"] for v in (card.variants if card else [])
            if v.get("in_stock") and v.get("color")
            and (size is None or v.get("size") == size)
        ]  # fmt: skip
        said = {w.strip(".,!?").lower() for w in str(value).split()}
        chosen = next((c for c in colors if c.lower() in said), None)
        if chosen:
            return {"cart_color": chosen}
        dispatcher.utter_message(
            text=f"Please pick a colour in stock: {', '.join(dict.fromkeys(colors))}."
        )
        return {"cart_color": None}


class ActionAddToCart(PlatformAction, Action):
    def name(self) -> str:
        return "action_add_to_cart"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        sku, size = tracker.get_slot("product"), tracker.get_slot("cart_size")
        color = tracker.get_slot("cart_color")
        try:
            card = self.client.product(sku) if sku else None
            if card is None:
                dispatcher.utter_message(response="utter_which_product")
                return []
            variant = next(
                (v for v in card.variants if v.get("in_stock")
                 and (size is None or v.get("size") == size)
                 and (color is None or v.get("color") == color)),
                None,
            )  # fmt: skip
            if card.variants and variant is None:
                dispatcher.utter_message(text=f"Sorry, that {card.name} just sold out.")
                return []
            chosen = variant["sku"] if variant else card.sku
            cart = self.client.add_to_cart(tracker.sender_id, chosen)
        except PlatformUnavailableError as exc:
            return unavailable(dispatcher, "add to cart", exc)
        added = {
            "sku": chosen, "product_id": card.sku, "name": card.name,
            "price": card.price, "quantity": 1,
            "category": card.categories[0] if card.categories else "",
        }  # fmt: skip
        if variant:
            added["variant"] = " ".join(x for x in (size, color) if x)
        added.update(attribution(tracker))
        self.client.track_quietly(profile_ref(tracker), "Product Added", added)
        what = " ".join(
            x for x in (color, card.name, f"in {size}" if size else None) if x
        )
        dispatcher.utter_message(
            text=f"Added the {what} to your cart. Cart total: "
            f"{money(cart['total'], card.currency)}.",
            buttons=[{"title": "View cart", "payload": "/view_cart"},
                     {"title": "Checkout help", "payload": "/checkout_help"}],
        )  # fmt: skip
        return [SlotSet("cart_size", None), SlotSet("cart_color", None)]


class ActionViewCart(PlatformAction, Action):
    def name(self) -> str:
        return "action_view_cart"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        try:
            cart = self.client.cart(tracker.sender_id)
        except PlatformUnavailableError as exc:
            return unavailable(dispatcher, "cart", exc)
        if not cart["lines"]:
            dispatcher.utter_message(text="Your cart is empty.")
            return []
        lines = "\n".join(
            f"- {line['qty']} x {line['name']} ({line['sku']}): {money(line['price'])}"
            for line in cart["lines"]
        )
        dispatcher.utter_message(
            text=f"In your cart:\n{lines}\nTotal: {money(cart['total'])}."
        )
        return []

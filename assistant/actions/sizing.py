"""Size advice from the product's sizes in stock and the size the shopper wears:
the one they give, their preferred size, or the size of most items they bought."""

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from assistant.actions.platform import (
    PlatformAction,
    PlatformUnavailableError,
)
from assistant.actions.products import product_in_focus
from assistant.actions.search import unavailable
from assistant.actions.shopper import entity, profile_ref, verified


def sizes_in_stock(variants: list[dict[str, Any]], sizes: list[str]) -> list[str]:
    return [
        s for s in sizes
        if any(v.get("size") == s and v.get("in_stock") for v in variants)
    ]  # fmt: skip


class ActionSizeAdvice(PlatformAction, Action):
    def name(self) -> str:
        return "action_size_advice"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        told = entity(tracker, "size")
        try:
            card = product_in_focus(self.client, tracker)
            usual, bought = (
                (str(told).upper(), False) if told else self._usual_size(tracker)
            )
        except PlatformUnavailableError as exc:
            return unavailable(dispatcher, "size advice", exc)
        # Where the size comes from, when the shopper did not say it.
        basis = f"Going by your past orders you take {usual}. " if bought else ""
        events: list[dict[str, Any]] = []
        if told:
            # What the shopper tells us makes the next answer better.
            self.client.identify_quietly(
                profile_ref(tracker), {"preferred_size": usual}
            )
            events.append(SlotSet("size", usual))
        if card is None:
            dispatcher.utter_message(response="utter_which_product")
            return events
        events.append(SlotSet("product", card.sku))
        if not card.sizes:
            dispatcher.utter_message(text=f"The {card.name} comes in one size.")
            return events
        available = sizes_in_stock(card.variants, card.sizes)
        if not usual:
            dispatcher.utter_message(
                text=f"The {card.name} comes in {', '.join(card.sizes)}; in stock now: "
                f"{', '.join(available) or 'none'}. Which size do you usually wear?"
            )
            return events
        if usual in available:
            dispatcher.utter_message(
                text=f"{basis}Take your usual {usual}: the {card.name} is in stock "
                f"in {usual}. "
                f"It comes in {', '.join(card.sizes)}, so there is room either side "
                "if you like a looser or a closer fit."
            )
        elif usual in card.sizes:
            dispatcher.utter_message(
                text=f"{basis}Your usual {usual} is sold out in the {card.name}. In "
                f"stock: {', '.join(available) or 'nothing at the moment'}."
            )
        else:
            dispatcher.utter_message(
                text=f"{basis}The {card.name} comes in {', '.join(card.sizes)}, not "
                f"in {usual}. In stock: {', '.join(available) or 'nothing right now'}."
            )
        return events

    def _usual_size(self, tracker: Tracker) -> tuple[str | None, bool]:
        """The size the shopper wears, and whether it was read from their past
        orders: what they said in this chat, their preferred size, else the size
        they bought most (only for a verified shopper)."""
        if tracker.get_slot("size"):
            return str(tracker.get_slot("size")).upper(), False
        if not verified(tracker):
            return None, False
        profile = self.client.profile(profile_ref(tracker))
        if profile is None:
            return None, False
        size = (profile.get("traits") or {}).get("preferred_size")
        if size:
            return str(size).upper(), False
        bought = (profile.get("computed") or {}).get("sizes_bought") or {}
        if not bought:
            return None, False
        return max(bought, key=lambda s: bought[s]), True

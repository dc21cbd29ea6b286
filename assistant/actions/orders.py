"""Order status from the profile's own orders, for a verified shopper only."""

import re
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from assistant.actions.platform import (
    PlatformAction,
    PlatformUnavailableError,
    money,
)
from assistant.actions.search import unavailable
from assistant.actions.shopper import entity, profile_ref, verified

# Order numbers as shops write them; anything else typed into a payload is refused.
ORDER_NUMBER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class ActionOrderStatus(PlatformAction, Action):
    def name(self) -> str:
        return "action_order_status"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        wanted = entity(tracker, "order_number")
        if wanted is not None and not ORDER_NUMBER.match(str(wanted).lstrip("#")):
            dispatcher.utter_message(text="That does not look like an order number.")
            return []
        if not verified(tracker):
            dispatcher.utter_message(response="utter_verify_for_orders")
            return []
        try:
            profile = self.client.profile(profile_ref(tracker))
        except PlatformUnavailableError as exc:
            return unavailable(dispatcher, "order status", exc)
        orders = sorted(
            (profile or {}).get("orders") or [],
            key=lambda o: o["placed_at"],
            reverse=True,
        )
        if wanted is not None:
            number = str(wanted).lstrip("#")
            # Only this profile's orders: another person's number finds nothing.
            orders = [o for o in orders if o["order_id"] == number]
            if not orders:
                dispatcher.utter_message(
                    text=f"I can't find order {number} on your account. Orders "
                    "placed as a guest with another email need a person to look up."
                )
                return []
        if not orders:
            dispatcher.utter_message(text="I can't find any orders for you yet.")
            return []
        lines = [
            f"- order {o['order_id']} of {o['placed_at'][:10]}: {o['status']}, "
            f"{money(o['total'], o['currency'])}"
            for o in orders[:3]
        ]
        dispatcher.utter_message(text="Your orders:\n" + "\n".join(lines))
        return []

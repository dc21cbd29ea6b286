"""The shopper's context at the start of a conversation, and a greeting that uses it.

Only for a verified sender: an unverified channel identity is greeted like anyone."""

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from assistant.actions.platform import (
    PlatformAction,
    PlatformClient,
    PlatformUnavailableError,
)
from assistant.actions.shopper import profile_ref, verified

SHOPPING_EVENTS = ("Product Viewed", "Product Added")


def context_of(client: PlatformClient, tracker: Tracker) -> dict[str, Any]:
    """Slots from the profile: stage, last viewed product, cart size, usual size."""
    ref = profile_ref(tracker)
    profile = client.profile(ref)
    if profile is None:
        return {"returning": False}
    viewed = next(
        (
            e["properties"].get("name") or e["properties"].get("sku")
            for e in profile.get("recent_events") or []
            if e.get("name") in SHOPPING_EVENTS
        ),
        None,
    )
    # A tracker may send only the sku; the shopper knows the product by its name.
    card = client.product(viewed) if viewed and " " not in viewed else None
    viewed = card.name if card else viewed
    recommendations = client.recommendations(ref, limit=1)
    cart = client.cart(tracker.sender_id) if ref.startswith("anonymous_id:") else None
    traits = profile.get("traits") or {}
    return {
        "returning": bool(viewed or profile.get("orders")),
        "stage": recommendations.stage,
        "last_viewed": viewed,
        "cart_items": sum(line["qty"] for line in cart["lines"]) if cart else 0,
        "size": traits.get("preferred_size"),
        "first_name": traits.get("first_name"),
    }


class ActionSessionStart(PlatformAction, Action):
    def name(self) -> str:
        return "action_session_start"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = [SessionStarted()]
        if verified(tracker):
            try:
                context = context_of(self.client, tracker)
            except PlatformUnavailableError:
                context = {}  # greet like anyone; the chat still works
            events += [SlotSet(name, value) for name, value in context.items()]
        events.append(ActionExecuted("action_listen"))
        return events


class ActionGreet(Action):
    def name(self) -> str:
        return "action_greet"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        if not tracker.get_slot("returning"):
            dispatcher.utter_message(response="utter_greet")
            return []
        name = tracker.get_slot("first_name")
        hello = f"Welcome back, {name}!" if name else "Welcome back!"
        parts = [hello]
        if tracker.get_slot("cart_items"):
            count = int(tracker.get_slot("cart_items"))
            parts.append(
                f"You have {count} item{'s' if count > 1 else ''} in your cart."
            )
        viewed = tracker.get_slot("last_viewed")
        if viewed and tracker.get_slot("stage") in ("comparison", "decision"):
            parts.append(f"Still deciding about the {viewed}? I can compare it or "
                         "help with the size.")  # fmt: skip
        elif viewed:
            parts.append(f"Last time you looked at the {viewed}.")
        parts.append("What can I find for you today?")
        dispatcher.utter_message(text=" ".join(parts))
        return []

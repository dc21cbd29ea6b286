"""Recommendations for the shopper's buying stage, and gift ideas."""

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from assistant.actions.platform import (
    PlatformAction,
    PlatformUnavailableError,
)
from assistant.actions.search import show_products, unavailable
from assistant.actions.shopper import entity, price, profile_ref, verified

INTRO_OF_STAGE = {
    "orientation": "A few things shoppers like right now:",
    "comparison": "Since you are comparing, these are close alternatives:",
    "decision": "These go well with what you have picked:",
    "evaluation": "To go with your order:",
}
# Who a gift is for, to the shop's department.
RECIPIENTS = {
    "Women": {"mum", "mom", "mother", "wife", "girlfriend", "sister", "daughter",
              "her", "grandma", "aunt", "niece", "woman", "lady"},
    "Men": {"dad", "father", "husband", "boyfriend", "brother", "son", "him",
            "grandpa", "uncle", "nephew", "man"},
}  # fmt: skip


class ActionRecommend(PlatformAction, Action):
    def name(self) -> str:
        return "action_recommend"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        # An unverified channel identity gets the shop's picks, not the profile's.
        profile = profile_ref(tracker) if verified(tracker) else None
        try:
            result = self.client.recommendations(profile, limit=3)
        except PlatformUnavailableError as exc:
            return unavailable(dispatcher, "recommendations", exc)
        if not result.cards:
            dispatcher.utter_message(response="utter_nothing_found")
            return []
        intro = INTRO_OF_STAGE.get(result.stage or "", "You might like:")
        show_products(dispatcher, result.cards, intro)
        lines = [f"- {c.name}: {c.reason}" for c in result.cards if c.reason]
        if lines:
            dispatcher.utter_message(text="Why these:\n" + "\n".join(lines))
        return [SlotSet("shown", [c.sku for c in result.cards])]


class ActionGiftIdeas(PlatformAction, Action):
    def name(self) -> str:
        return "action_gift_ideas"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        recipient = str(entity(tracker, "recipient") or "").lower()
        department = next(
            (d for d, words in RECIPIENTS.items() if recipient in words), None
        )
        budget = price(entity(tracker, "max_price"))
        filters = {"category": department, "max_price": budget}
        try:
            result = self.client.recommendations(
                None, stage="orientation", filters=filters, limit=3
            )
        except PlatformUnavailableError as exc:
            return unavailable(dispatcher, "gift ideas", exc)
        if not result.cards:
            dispatcher.utter_message(
                text="I found nothing in that budget. Shall I look a little higher?"
            )
            return []
        who = f" for your {recipient}" if recipient else ""
        limit = f" under ${budget:.0f}" if budget else ""
        show_products(dispatcher, result.cards, f"Gift ideas{who}{limit}:")
        return [SlotSet("shown", [c.sku for c in result.cards])]

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
from assistant.occasions import GIFT_EVENTS

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
    """Gift ideas by who they are for, the occasion and the budget: products for
    what the person does when the shopper names it ("loves hiking"), else the
    shop's picks (a birthday says nothing about what to give)."""

    def name(self) -> str:
        return "action_gift_ideas"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        who, department = recipient_of(entity(tracker, "recipient"))
        occasion = str(entity(tracker, "occasion") or "").strip()[:60]
        budget = price(entity(tracker, "max_price"))
        filters = {"category": department, "max_price": budget}
        try:
            if occasion and occasion.lower() not in GIFT_EVENTS:
                # Something the person does ("hiking"): products for it.
                cards = self.client.search_products(occasion, filters, limit=3)
            else:
                cards = self.client.recommendations(
                    None, stage="orientation", filters=filters, limit=3
                ).cards
        except PlatformUnavailableError as exc:
            return unavailable(dispatcher, "gift ideas", exc)
        if not cards:
            dispatcher.utter_message(
                text="I found nothing in that budget. Shall I look a little higher?"
            )
            return []
        heading = f"{occasion[:1].upper()}{occasion[1:]} gift ideas" if occasion else ""
        heading = heading or "Gift ideas"
        heading += f" for {who}" if who else ""
        heading += f" under ${budget:.0f}" if budget else ""
        show_products(dispatcher, cards, f"{heading}:")
        return [SlotSet("shown", [c.sku for c in cards])]


def recipient_of(value: Any) -> tuple[str, str | None]:
    """Who a gift is for as the reply says it ("my mum" is "your mum", "a runner"
    stays), and the shop's department their words point to, if any."""
    said = [
        w.removesuffix("'s").removesuffix("\u2019s")
        for w in str(value or "").split()[:8]
    ]
    words = [w.lower() for w in said]
    department = next(
        (d for d, names in RECIPIENTS.items() if any(w in names for w in words)), None
    )
    if words[:1] in (["my"], ["our"]):
        said = ["your", *said[1:]]
    return " ".join(said), department

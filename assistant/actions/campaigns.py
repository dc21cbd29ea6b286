"""Conversational campaigns: the platform opens a conversation through Rasa's
trigger-intent API ("still deciding between these two jackets?"), and the campaign
id goes on the profile's events from then on."""

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from assistant.actions.platform import PlatformAction, PlatformUnavailableError
from assistant.actions.search import show_products
from assistant.actions.shopper import entity, profile_ref


class ActionCampaignNudge(PlatformAction, Action):
    def name(self) -> str:
        return "action_campaign_nudge"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        campaign = entity(tracker, "campaign_id")
        values = [
            e.get("value")
            for e in tracker.latest_message.get("entities", [])
            if e.get("entity") == "product"
        ]
        # A trigger in Rasa's short form ({"product": [...]}) gives one list.
        skus = [
            str(sku)
            for value in values
            for sku in (value if isinstance(value, list) else [value])
            if sku not in (None, "")
        ]
        try:
            cards = [c for c in (self.client.product(s) for s in skus[:3]) if c]
        except PlatformUnavailableError:
            cards = []  # a nudge that cannot show its products is not sent
        if not cards:
            return []
        message = entity(tracker, "message")
        if message:
            intro = str(message)[:500]
        elif len(cards) >= 2:
            intro = (
                f"Still deciding between the {cards[0].name} and the {cards[1].name}?"
            )
        else:
            intro = f"Still thinking about the {cards[0].name}?"
        show_products(
            dispatcher, cards, intro + " I can compare them or help with sizes."
        )
        sent = {"campaign_id": campaign, "channel": "chat",
                "products": [c.sku for c in cards]}  # fmt: skip
        self.client.track_quietly(profile_ref(tracker), "Campaign Message Sent", sent)
        return [
            SlotSet("campaign_id", campaign),
            SlotSet("shown", [c.sku for c in cards]),
        ]

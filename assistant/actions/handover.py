"""Talking to a person: the conversation is flagged for an agent and the bot stays
silent until an agent releases it (channels/handover.py keeps the flag)."""

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from assistant.actions.platform import (
    PlatformAction,
    PlatformUnavailableError,
)
from assistant.actions.shopper import channel_of


class ActionHandover(PlatformAction, Action):
    def name(self) -> str:
        return "action_handover"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        reason = (tracker.latest_message.get("text") or "")[:500]
        try:
            self.client.hand_over(channel_of(tracker), tracker.sender_id, reason)
        except PlatformUnavailableError:
            dispatcher.utter_message(
                text="I could not reach our team just now. You can also email "
                "support@example.com and a person will answer."
            )
            return []
        dispatcher.utter_message(response="utter_handed_over")
        return []

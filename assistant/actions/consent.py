"""Marketing consent per channel, recorded on the profile. "stop" always works:
with no channel named it withdraws every marketing purpose."""

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from assistant.actions.platform import (
    PlatformAction,
    PlatformUnavailableError,
)
from assistant.actions.shopper import channel_of, entity, profile_ref

PURPOSE_OF_CHANNEL = {
    "email": "email_marketing",
    "whatsapp": "whatsapp_marketing",
    "sms": "sms_marketing",
    "messenger": "messenger_marketing",
}
# With no channel named, an opt in is for the channel the shopper is on (the web
# chat has no messages of its own to send, so email).
DEFAULT_CHANNEL = {"whatsapp": "whatsapp", "messenger": "messenger"}


def channel_named(tracker: Tracker) -> str | None:
    value = str(entity(tracker, "channel") or "").lower().replace("-", "").strip()
    aliases = {"mail": "email", "newsletter": "email", "text": "sms", "texts": "sms",
               "whats app": "whatsapp", "facebook": "messenger"}  # fmt: skip
    value = aliases.get(value, value)
    return value if value in PURPOSE_OF_CHANNEL else None


class ActionSubscribe(PlatformAction, Action):
    def name(self) -> str:
        return "action_subscribe"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        channel = channel_named(tracker) or DEFAULT_CHANNEL.get(
            channel_of(tracker), "email"
        )
        try:
            self.client.record_consent(
                profile_ref(tracker), PURPOSE_OF_CHANNEL[channel], "granted"
            )
        except PlatformUnavailableError:
            dispatcher.utter_message(
                text="Sorry, I could not save that just now; please try again."
            )
            return []
        dispatcher.utter_message(
            text=f'Done: you will get our offers by {channel}. Say "stop" at any '
            "time to stop them."
        )
        return []


class ActionUnsubscribe(PlatformAction, Action):
    def name(self) -> str:
        return "action_unsubscribe"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        channel = channel_named(tracker)
        channels = [channel] if channel else list(PURPOSE_OF_CHANNEL)
        failed = []
        for name in channels:
            try:
                self.client.record_consent(
                    profile_ref(tracker), PURPOSE_OF_CHANNEL[name], "withdrawn"
                )
            except PlatformUnavailableError:
                failed.append(name)
        if failed:
            # An opt-out that did not save must not look as if it did.
            dispatcher.utter_message(
                text="Sorry, I could not save your opt-out just now. Please say "
                '"stop" again in a minute, or ask for a person.'
            )
            return []
        what = f"by {channel}" if channel else "on any channel"
        dispatcher.utter_message(
            text=f"Done: you will get no more marketing messages {what}."
        )
        return []

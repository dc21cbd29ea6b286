"""Who the shopper is on this channel, and what they asked for so far.

The web chat's sender is the tracker's anonymous id: the browser that holds that
cookie is the one browsing, so the assistant may use that profile's history. A
channel identity that is not verified for a profile gets no personal data.
"""

from typing import Any

from rasa_sdk import Tracker

# Channel (from the message metadata) to the identity type its sender id is.
IDENTITY_OF_CHANNEL = {
    "web": "anonymous_id",
    "rest": "anonymous_id",
    "whatsapp": "whatsapp_id",
    "messenger": "messenger_id",
}
# The search slots, as the recommender's filter names.
FILTER_SLOTS = ("category", "color", "size", "brand", "min_price", "max_price")
GENDER_DEPARTMENTS = {"women": "Women", "men": "Men", "woman": "Women", "man": "Men"}


def channel_of(tracker: Tracker) -> str:
    metadata = tracker.get_slot("session_started_metadata") or {}
    latest = tracker.latest_message.get("metadata") or {}
    return str(latest.get("channel") or metadata.get("channel") or "web")


def profile_ref(tracker: Tracker) -> str:
    identity = IDENTITY_OF_CHANNEL.get(channel_of(tracker), "anonymous_id")
    return f"{identity}:{tracker.sender_id}"


def verified(tracker: Tracker) -> bool:
    """Whether this sender may see the profile's personal data (orders, names).
    The web chat is the visitor's own browser; other channels are verified when
    the channel says the number or account is the profile's (see channels/)."""
    metadata = tracker.latest_message.get("metadata") or {}
    return channel_of(tracker) in ("web", "rest") or bool(metadata.get("verified"))


def entity(tracker: Tracker, name: str) -> Any:
    return next(tracker.get_latest_entity_values(name), None)


def category_filter(category: str | None, gender: str | None) -> str | None:
    department = GENDER_DEPARTMENTS.get(str(gender).lower()) if gender else None
    if department and category:
        return f"{department}/{category}"
    return department or category


def filters_of(slots: dict[str, Any]) -> dict[str, Any]:
    """The recommender's filters from the search slots."""
    filters = {name: slots.get(name) for name in FILTER_SLOTS}
    filters["category"] = category_filter(slots.get("category"), slots.get("gender"))
    return {k: v for k, v in filters.items() if v not in (None, "")}


def price(value: Any) -> float | None:
    """A price slot or entity as a number; anything else is ignored, since a
    shopper can type any payload."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if 0 <= number <= 100_000 else None


def attribution(tracker: Tracker) -> dict[str, Any]:
    """The campaign that opened the conversation, for the events it leads to."""
    campaign = tracker.get_slot("campaign_id")
    return {"campaign_id": campaign} if campaign else {}

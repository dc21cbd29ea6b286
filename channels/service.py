"""Rules the Meta channels share, no HTTP: every message as an event on the
shopper's profile, the 24-hour customer-service window, replies held until the
shopper writes again, and sends that failed for good.

Events go onto the platform's event stream like any source's, so the worker ties
them to the profile: the sender id as the anonymous id (as Rasa's event broker and
the handover records use it), the channel's own identity in
``context.externalIds``, and on WhatsApp the number as an E.164 phone trait, which
the worker stores as the profile's phone identity.
"""

import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from sqlalchemy import Engine
from sqlmodel import Session

from channels import inbox
from channels.models import Inbound, Status
from core.settings import get_settings
from events import queue
from events import service as events
from profiles import service as profiles
from profiles.identity import phone_e164
from profiles.models import ConsentStatus, IdentityType

logger = logging.getLogger(__name__)

# Meta's customer-service window: free-form messages only this long after the
# shopper's last message.
WINDOW = timedelta(hours=24)
IDENTITY_OF_CHANNEL = {
    "whatsapp": IdentityType.whatsapp_id,
    "messenger": IdentityType.messenger_id,
}
MARKETING_PURPOSE = {
    "whatsapp": "whatsapp_marketing",
    "messenger": "messenger_marketing",
}
FAILED_MAX = 10_000


def sender_of(channel: str, sender: str) -> dict[str, Any]:
    """Who an event is about, in the shape the event worker reads identities from."""
    context: dict[str, Any] = {
        "channel": channel,
        "externalIds": [{"id": sender, "type": IDENTITY_OF_CHANNEL[channel].value}],
    }
    if channel == "whatsapp" and (phone := phone_e164(f"+{sender}")):
        context["traits"] = {"phone": phone}
    return {"anonymousId": sender, "context": context}


def record(
    client: redis.Redis,
    channel: str,
    sender: str,
    event: str,
    properties: dict[str, Any],
    *,
    message_id: str,
    text: str = "",
    at: datetime | None = None,
) -> None:
    """One event on the shopper's profile. ``message_id`` makes it idempotent: a
    message handled twice (a retry after Rasa came back) is stored once. The text
    is kept only when the shop's privacy settings allow it."""
    if text and get_settings().channels.keep_message_text:
        properties = {**properties, "text": text}
    raw = {
        "type": "track",
        "event": event,
        "messageId": message_id,
        "timestamp": (at or datetime.now(UTC)).isoformat(),
        "properties": {"channel": channel, **properties},
        **sender_of(channel, sender),
    }
    message = events.validate(raw)
    if isinstance(message, list):
        raise ValueError(f"channel event {event!r} is not a valid message: {message}")
    envelope = events.envelope(message, source=channel, received_at=datetime.now(UTC))
    queue.publish(client, get_settings().tracking.stream, [envelope])


def receive(
    client: redis.Redis, messages: list[Inbound], statuses: list[Status]
) -> int:
    """What a webhook call brought: new messages are queued for the worker, put on
    the timeline and open the window; Meta's repeats of them are dropped. Returns
    how many were queued."""
    queued = inbox.enqueue(client, messages)
    for message in queued:
        record_inbound(client, message)
        touch_window(client, message.channel, message.sender, message.timestamp)
    for status in statuses:
        record_status(client, status)
    return len(queued)


def record_inbound(client: redis.Redis, message: Inbound) -> None:
    shown = message.title if message.kind != "text" else message.text
    record(
        client, message.channel, message.sender, "Message Received",
        {"message_id": message.message_id, "kind": message.kind},
        message_id=f"{message.channel}-in-{message.message_id}",
        text=shown, at=message.timestamp,
    )  # fmt: skip


def record_status(client: redis.Redis, status: Status) -> None:
    properties = {"message_id": status.message_id, "status": status.status}
    if status.error:
        properties["error"] = status.error
    record(
        client, status.channel, status.recipient, "Message Status Updated",
        properties, at=status.timestamp,
        message_id=f"{status.channel}-status-{status.message_id}-{status.status}",
    )  # fmt: skip


def record_failure(
    client: redis.Redis,
    channel: str,
    sender: str,
    *,
    kind: str,
    origin: str,
    reason: str,
    attempts: int,
) -> None:
    """A send given up for good: on the profile, and in the channels' failed stream
    for the operator (without the text: the profile has it where allowed)."""
    logger.warning(
        "message not sent",
        extra={"channel": channel, "kind": kind, "attempts": attempts},
    )
    client.xadd(
        f"{inbox.prefix()}:failed",
        {"channel": channel, "sender": sender, "kind": kind, "origin": origin,
         "reason": reason, "attempts": attempts,
         "failed_at": datetime.now(UTC).isoformat()},
        maxlen=FAILED_MAX, approximate=True,
    )  # fmt: skip
    record(
        client, channel, sender, "Message Not Sent",
        {"kind": kind, "origin": origin, "reason": reason, "attempts": attempts},
        message_id=f"{channel}-failed-{uuid.uuid4()}",
    )  # fmt: skip


def _window_key(channel: str, sender: str) -> str:
    return f"{inbox.prefix()}:window:{channel}:{sender}"


def touch_window(client: redis.Redis, channel: str, sender: str, at: datetime) -> None:
    """The shopper wrote at ``at``: the window runs for 24 hours from the latest."""
    key = _window_key(channel, sender)
    latest = last_inbound(client, channel, sender)
    if latest is None or at > latest:
        client.set(key, at.isoformat(), ex=int(WINDOW.total_seconds()) + 3600)


def last_inbound(client: redis.Redis, channel: str, sender: str) -> datetime | None:
    raw = client.get(_window_key(channel, sender))
    if raw is None:
        return None
    return datetime.fromisoformat(raw.decode() if isinstance(raw, bytes) else raw)


def window_open(
    client: redis.Redis, channel: str, sender: str, now: datetime | None = None
) -> bool:
    latest = last_inbound(client, channel, sender)
    return latest is not None and (now or datetime.now(UTC)) - latest < WINDOW


def _held_key(channel: str, sender: str) -> str:
    return f"{inbox.prefix()}:held:{channel}:{sender}"


def hold(
    client: redis.Redis, channel: str, sender: str, message: dict[str, Any], origin: str
) -> int:
    """Keep a reply that may not be sent now; returns how many are waiting."""
    item = json.dumps({"message": message, "origin": origin})
    return int(client.rpush(_held_key(channel, sender), item))


def take_held(
    client: redis.Redis, channel: str, sender: str
) -> list[tuple[dict[str, Any], str]]:
    """The held replies, oldest first, taken once."""
    key = _held_key(channel, sender)
    pipe = client.pipeline()
    pipe.lrange(key, 0, -1)
    pipe.delete(key)
    items, _ = pipe.execute()
    taken = [json.loads(item) for item in items]
    return [(item["message"], item["origin"]) for item in taken]


def first_notice(client: redis.Redis, channel: str, sender: str, since: str) -> bool:
    """True once per handover: whether the shopper still has to be told that a
    person will answer."""
    key = f"{inbox.prefix()}:notice:{channel}:{sender}:{since}"
    return bool(client.set(key, "1", nx=True, ex=7 * 24 * 3600))


def has_marketing_consent(engine: Engine, channel: str, sender: str) -> bool:
    """Whether the profile behind this sender has granted marketing on the channel
    (the latest decision counts)."""
    with Session(engine) as session:
        key = (IDENTITY_OF_CHANNEL[channel], sender)
        profile = profiles.get_by_identity(session, key)
        if profile is None:
            return False
        purpose = MARKETING_PURPOSE[channel]
        return any(
            consent.purpose == purpose and consent.status == ConsentStatus.granted
            for consent in profiles.list_consents(session, profile)
        )

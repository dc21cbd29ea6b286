"""A Rasa event broker that puts the conversation on the shopper's profile.

Runs inside Rasa's own environment (Python 3.10), so it imports only what Rasa has.
Each user and bot message becomes a Segment-shaped ``track`` envelope on the
platform's event stream, the same shape the tracking API writes, and the worker
applies it to the profile of the sender's anonymous id.
"""

import json
import logging
import os
import threading
from datetime import datetime, timezone
from typing import Any

import redis
from rasa.core.brokers.broker import EventBroker
from rasa.utils.endpoints import EndpointConfig

logger = logging.getLogger(__name__)

EVENT_NAMES = {"user": "Chat Message Received", "bot": "Chat Message Sent"}
# Rasa only warns when a broker fails to load; the api's /health reads this key.
HEARTBEAT_SUFFIX = ":broker-heartbeat"
HEARTBEAT_SECONDS = 10


def keeps_text() -> bool:
    """The shop's privacy setting, as the platform reads it: message text goes on
    the profile only when CDP_CHANNELS__KEEP_MESSAGE_TEXT is true."""
    value = os.environ.get("CDP_CHANNELS__KEEP_MESSAGE_TEXT", "false")
    return value.strip().lower() in ("1", "true", "yes", "on")


def to_envelope(
    event: dict[str, Any], *, keep_text: bool = False
) -> dict[str, Any] | None:
    """The platform envelope for a Rasa event, or None for events we do not keep.
    Without ``keep_text`` the message's text is left out; its intent stays."""
    kind = event.get("event")
    sender = event.get("sender_id")
    if kind not in EVENT_NAMES or not sender:
        return None
    at = datetime.fromtimestamp(float(event.get("timestamp") or 0), tz=timezone.utc)
    properties: dict[str, Any] = {"channel": "assistant"}
    if keep_text:
        properties["text"] = event.get("text")
    if kind == "user":
        properties["channel"] = event.get("input_channel") or "assistant"
        intent = (event.get("parse_data") or {}).get("intent") or {}
        properties["intent"] = intent.get("name")
        properties["confidence"] = intent.get("confidence")
    message_id = event.get("message_id") or f"{sender}-{kind}-{event.get('timestamp')}"
    now = datetime.now(timezone.utc).isoformat()
    return {
        "type": "track",
        "event": EVENT_NAMES[kind],
        "anonymousId": sender,
        "userId": None,
        "messageId": f"rasa-{kind}-{message_id}",
        "timestamp": at.isoformat(),
        "originalTimestamp": at.isoformat(),
        "receivedAt": now,
        "sentAt": None,
        "properties": properties,
        "context": {"library": {"name": "rasa-event-broker"}},
        "traits": {},
        "integrations": {},
        "source": "assistant",
    }


class EventStreamBroker(EventBroker):
    def __init__(self, url: str, stream: str = "cdp:events") -> None:
        self.client = redis.Redis.from_url(url)
        self.stream = stream
        self.keep_text = keeps_text()
        self._stopped = threading.Event()
        threading.Thread(
            target=self._beat, name="broker-heartbeat", daemon=True
        ).start()

    def _beat(self) -> None:
        while not self._stopped.is_set():
            try:
                self.client.set(
                    self.stream + HEARTBEAT_SUFFIX, "up", ex=HEARTBEAT_SECONDS * 3
                )
            except redis.RedisError:
                logger.warning("event broker cannot reach redis")
            self._stopped.wait(HEARTBEAT_SECONDS)

    @classmethod
    async def from_endpoint_config(
        cls, broker_config: EndpointConfig, event_loop: Any = None
    ) -> "EventStreamBroker":
        return cls(broker_config.url, **broker_config.kwargs)

    def publish(self, event: dict[str, Any]) -> None:
        envelope = to_envelope(event, keep_text=self.keep_text)
        if envelope is None:
            return
        try:
            self.client.xadd(self.stream, {"payload": json.dumps(envelope)})
        except redis.RedisError:
            logger.warning("could not publish a conversation event to the stream")

    def is_ready(self) -> bool:
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False

    async def close(self) -> None:
        self._stopped.set()
        self.client.close()

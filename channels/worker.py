"""The channel worker: answers WhatsApp and Messenger messages from their queues.

Run it with ``python -m channels.worker`` beside the api and the event worker.

Each channel's stream is read in order, so a shopper's messages are answered in
the order they were written. While Rasa is down a message stays pending, and so
does every later message of the same shopper; the worker asks again, oldest
first, until Rasa answers. An entry is acknowledged only once its answers were
sent or recorded as not sent, so a crash or a restart loses nothing.
"""

import json
import logging
import signal
import time
from collections.abc import Mapping
from typing import Any, Protocol

import redis
from sqlalchemy import Engine

from channels import handover, inbox, service
from channels.models import Inbound, OutboxWake
from channels.rasa import RasaClient, get_rasa
from core.errors import UnavailableError
from core.settings import get_settings
from events.queue import Consumer

logger = logging.getLogger(__name__)

HANDOVER_NOTICE = "Thanks! A person from our team will answer you here shortly."
UNSUPPORTED_REPLY = "Sorry, I can only read text here. Please type your question."


class Channel(Protocol):
    channel: str

    def deliver(self, sender: str, message: dict[str, Any], *, origin: str) -> None:
        """Send one reply to the shopper, or record why it was not sent."""


# Stream entries as read: (entry id, fields).
Entries = list[tuple[str, dict[str, str]]]


class RasaDownError(Exception):
    """Rasa did not answer: the message waits in the queue."""


class ChannelWorker:
    def __init__(
        self,
        client: redis.Redis,
        channels: Mapping[str, Channel],
        rasa: RasaClient,
        *,
        name: str | None = None,
        batch_size: int = 50,
        max_pause_seconds: float = 5.0,
    ) -> None:
        self.client = client
        self.channels = dict(channels)
        self.rasa = rasa
        self.name = name or get_settings().channels.consumer_name
        self.consumers = {
            channel: Consumer(client, inbox.stream(channel), inbox.GROUP, self.name)
            for channel in self.channels
        }
        self.batch_size = batch_size
        self.max_pause_seconds = max_pause_seconds
        self.pause_seconds = 0.0
        self.rasa_down = False
        self.running = True

    def ensure_groups(self) -> None:
        for consumer in self.consumers.values():
            consumer.ensure_group()

    def run_once(self, block_ms: int = 1000) -> int:
        """Handle what is pending and what is new; returns how many entries were
        handled. Entries of shoppers Rasa could not answer stay pending."""
        self.rasa_down = False
        handled = 0
        for channel, entries in self._read(block_ms).items():
            handled += self._handle_entries(channel, entries)
        self._pace()
        return handled

    def _read(self, block_ms: int) -> dict[str, Entries]:
        """Pending entries first (oldest first), then new ones. When a stream has a
        full batch pending nothing new is read from it, so that no shopper's newer
        message can overtake an older one still waiting."""
        entries = {channel: self._pending(channel) for channel in self.consumers}
        fresh = {
            channel: ">"
            for channel in self.consumers
            if len(entries[channel]) < self.batch_size
        }
        waiting = any(entries.values())
        block = None if waiting or self.pause_seconds else block_ms
        for channel, new in self._xread_streams(fresh, block).items():
            entries[channel] += new
        return entries

    def _pending(self, channel: str) -> Entries:
        """What this worker read before and has not finished, oldest first."""
        return self._xread_streams({channel: "0"}, None)[channel]

    def _xread_streams(
        self, starts: dict[str, str], block_ms: int | None
    ) -> dict[str, Entries]:
        if not starts:
            return {}
        by_stream = {inbox.stream(channel): channel for channel in starts}
        response = self.client.xreadgroup(
            inbox.GROUP,
            self.name,
            {inbox.stream(channel): start for channel, start in starts.items()},
            count=self.batch_size,
            block=block_ms,
        )
        found: dict[str, Entries] = {channel: [] for channel in starts}
        for stream, entries in response or []:
            channel = by_stream[_text(stream)]
            found[channel] = [(_text(i), _fields(f)) for i, f in entries]
        return found

    def _handle_entries(self, channel: str, entries: Entries) -> int:
        consumer = self.consumers[channel]
        waiting: set[str] = set()
        handled = 0
        for entry_id, fields in entries:
            job = inbox.decode(fields)
            if job is None:
                self._done(consumer, entry_id)
                continue
            if job.sender in waiting:
                continue  # an older message of this shopper waits for Rasa
            try:
                self.handle(job)
            except RasaDownError:
                waiting.add(job.sender)
                continue
            self._done(consumer, entry_id)
            handled += 1
        return handled

    def _done(self, consumer: Consumer, entry_id: str) -> None:
        # Handled entries are of no further use: the stream keeps only what waits.
        consumer.ack([entry_id])
        self.client.xdel(consumer.stream, entry_id)

    def _pace(self) -> None:
        """While Rasa is down, wait a little longer before each new attempt."""
        if not self.rasa_down:
            if self.pause_seconds:
                logger.info("rasa answers again; waiting messages are being answered")
            self.pause_seconds = 0.0
            return
        if not self.pause_seconds:
            logger.warning("rasa is not answering; messages wait in the queue")
        self.pause_seconds = min(
            max(self.pause_seconds * 2, 0.25), self.max_pause_seconds
        )
        time.sleep(self.pause_seconds)

    def handle(self, job: Inbound | OutboxWake) -> None:
        channel = self.channels[job.channel]
        if isinstance(job, OutboxWake):
            self._send_outbox(channel, job.sender)
        else:
            self._answer(channel, job)

    def _send_outbox(self, channel: Channel, sender: str) -> None:
        """Replies from an agent or a campaign. Removed from the outbox only once
        handled, so a crash sends one again rather than losing it."""
        key = handover.outbox(channel.channel, sender)
        items = self.client.lrange(key, 0, -1)
        for item in items:
            reply = json.loads(item)
            origin = "agent" if reply.get("agent") else "campaign"
            channel.deliver(sender, reply, origin=origin)
        if items:
            self.client.ltrim(key, len(items), -1)

    def _answer(self, channel: Channel, message: Inbound) -> None:
        # Already on the timeline, and the window opened, when it was queued.
        for held, origin in service.take_held(
            self.client, message.channel, message.sender
        ):
            channel.deliver(message.sender, held, origin=origin)
        if self._with_agent(channel, message.sender):
            shown = message.text if message.kind == "text" else message.title
            handover.note(
                self.client, message.channel, message.sender, "shopper", shown
            )
            return
        if message.kind == "unsupported":
            channel.deliver(
                message.sender, {"text": UNSUPPORTED_REPLY}, origin="assistant"
            )
            return
        for reply in self._ask_rasa(message):
            channel.deliver(message.sender, reply, origin="assistant")
        # The assistant may just have handed over, and said so itself.
        if handed := handover.current(self.client, message.channel, message.sender):
            since = handed.since.isoformat()
            service.first_notice(self.client, message.channel, message.sender, since)

    def _with_agent(self, channel: Channel, sender: str) -> bool:
        """While a person has the conversation the assistant stays silent; the
        shopper is told once that a person will answer."""
        handed = handover.current(self.client, channel.channel, sender)
        if handed is None:
            return False
        since = handed.since.isoformat()
        if service.first_notice(self.client, channel.channel, sender, since):
            channel.deliver(sender, {"text": HANDOVER_NOTICE}, origin="notice")
        return True

    def _ask_rasa(self, message: Inbound) -> list[dict[str, Any]]:
        if self.rasa_down:  # it failed for an earlier message of this round
            raise RasaDownError
        try:
            return self.rasa.send(
                message.sender, message.text, metadata={"channel": message.channel}
            )
        except UnavailableError as exc:
            self.rasa_down = True
            raise RasaDownError from exc

    def run(self) -> None:
        self.ensure_groups()
        logger.info("channel worker started", extra={"channels": list(self.channels)})
        claim_idle_ms = get_settings().tracking.claim_idle_ms
        last_claim = 0.0
        while self.running:
            if not self.channels:
                time.sleep(1)  # no channel enabled: stay up, idle
                continue
            if time.monotonic() - last_claim > 30:
                for consumer in self.consumers.values():
                    consumer.claim_abandoned(claim_idle_ms)
                last_claim = time.monotonic()
            try:
                self.run_once()
            except Exception:
                # Nothing is acknowledged that was not handled: it is tried again.
                logger.exception("channel worker round failed; retrying")
                time.sleep(1)
        logger.info("channel worker stopped")

    def stop(self, *_args: object) -> None:
        self.running = False


def enabled_channels(client: redis.Redis, engine: Engine) -> dict[str, Channel]:
    from channels.messenger import Messenger
    from channels.whatsapp import WhatsApp

    settings = get_settings()
    channels: dict[str, Channel] = {}
    if settings.whatsapp.enabled:
        channels["whatsapp"] = WhatsApp(client, engine)
    if settings.messenger.enabled:
        channels["messenger"] = Messenger(client)
    return channels


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _fields(fields: dict[Any, Any]) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in fields.items()}


def main() -> None:
    from core.db import get_engine
    from core.logging import configure_logging
    from core.redis import get_redis

    configure_logging()
    client = get_redis()
    worker = ChannelWorker(client, enabled_channels(client, get_engine()), get_rasa())
    signal.signal(signal.SIGTERM, worker.stop)
    signal.signal(signal.SIGINT, worker.stop)
    worker.run()


if __name__ == "__main__":
    main()

"""The queue between Meta's webhooks and the channel worker: one Redis stream per
channel. A webhook call is answered as soon as its messages are in the stream, so
Meta never waits on Rasa; the worker takes them in order.

Meta delivers a message again when our answer was late or lost. Each message id is
queued once: marking it seen and adding it to the stream happen in one Lua script,
so a crash between the two can neither lose the message nor let a retry through.
"""

import logging

import redis
from pydantic import TypeAdapter, ValidationError

from channels.models import Inbound, Job, OutboxWake
from core.settings import get_settings

logger = logging.getLogger(__name__)

GROUP = "channel-workers"
CHANNELS = ("whatsapp", "messenger")
# Meta retries a webhook delivery for up to 7 days.
SEEN_SECONDS = 7 * 24 * 3600
_ENQUEUE_ONCE = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  return redis.call('XADD', KEYS[2], '*', 'payload', ARGV[2])
end
return false
"""
_jobs: TypeAdapter[Inbound | OutboxWake] = TypeAdapter(Job)


def prefix() -> str:
    # Beside the event stream, as the handover keys are, so that two platforms on
    # one Redis keep their own.
    return f"{get_settings().tracking.stream}:channels"


def stream(channel: str) -> str:
    return f"{prefix()}:{channel}:inbox"


def enqueue(client: redis.Redis, messages: list[Inbound]) -> list[Inbound]:
    """Queue the messages not seen before; returns those."""
    script = client.register_script(_ENQUEUE_ONCE)
    queued = []
    for message in messages:
        seen = f"{prefix()}:seen:{message.channel}:{message.message_id}"
        keys = [seen, stream(message.channel)]
        if script(keys=keys, args=[SEEN_SECONDS, message.model_dump_json()]):
            queued.append(message)
        else:
            logger.info("repeated delivery ignored", extra={"channel": message.channel})
    return queued


def wake(client: redis.Redis, channel: str, sender: str) -> None:
    """Tell the channel worker that replies wait in the shopper's outbox. The web
    chat fetches its own; WhatsApp and Messenger replies must be sent."""
    if channel not in CHANNELS:
        return
    job = OutboxWake(channel=channel, sender=sender)  # type: ignore[arg-type]
    client.xadd(stream(channel), {"payload": job.model_dump_json()})


def decode(fields: dict[str, str]) -> Inbound | OutboxWake | None:
    """The job in a stream entry; None for one that is not (logged, then dropped)."""
    try:
        return _jobs.validate_json(fields.get("payload", ""))
    except ValidationError as exc:
        logger.warning(
            "unreadable channel job dropped", extra={"errors": exc.error_count()}
        )
        return None

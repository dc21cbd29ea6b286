"""Accepting messages: validation, limits, clock correction and enqueueing.

A message is acknowledged only once it is in the Redis stream; one that is refused
is kept in the failed-events store with the reason. No HTTP here.
"""

import json
from datetime import UTC, datetime
from typing import Any

import redis
from pydantic import ValidationError

from core.errors import InvalidInputError
from events import failed, queue
from events.ecommerce import fact_errors
from events.models import Accepted, Batch, Message, Rejected

MAX_MESSAGE_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024


class InvalidMessageError(InvalidInputError):
    code = "invalid_message"


def envelope(
    message: Message, *, source: str, received_at: datetime,
    client: dict[str, str] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """What the worker receives: the message plus when and from where it arrived.
    ``client`` (the request's address and user agent) fills the context's ``ip``
    and ``userAgent`` where the message has none, as Segment's api does for ip."""
    data = message.model_dump(mode="json")
    data["context"] = {**(client or {}), **data["context"]}
    data["originalTimestamp"] = data.pop("timestamp")
    data["timestamp"] = message.corrected_timestamp(received_at).isoformat()
    data["receivedAt"] = received_at.isoformat()
    data["source"] = source
    return without_nul(data)


def without_nul(value: Any) -> Any:
    """NUL characters removed from every string, and lone surrogates (which no UTF-8
    text can hold) replaced: PostgreSQL cannot store either, and no real client
    means anything by them."""
    if isinstance(value, str):
        text = value.replace("\x00", "")
        return text.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_nul(v) for v in value]
    return value


def validate(
    raw: Any, *, defaults: dict[str, Any] | None = None
) -> Message | list[dict]:
    """The message, or the list of problems with it (locations relative to it)."""
    if not isinstance(raw, dict):
        return [
            {"type": "dict_type", "loc": [], "msg": "a message must be a JSON object"}
        ]
    size = len(json.dumps(raw, default=str).encode())
    if size > MAX_MESSAGE_BYTES:
        msg = f"message is {size} bytes; the limit is {MAX_MESSAGE_BYTES} bytes (32 KB)"
        return [{"type": "message_too_large", "loc": [], "msg": msg}]
    try:
        message = Message.model_validate({**(defaults or {}), **raw})
    except ValidationError as exc:
        return [
            {"type": e["type"], "loc": list(e["loc"]), "msg": e["msg"]}
            for e in exc.errors(include_url=False)
        ]
    if message.type == "track":
        return fact_errors(message.event, message.properties) or message
    return message


def accept_message(
    client: redis.Redis, stream: str, raw: Any, *, source: str,
    sender: dict[str, str] | None = None,
) -> Accepted:  # fmt: skip
    """One message: queued, or refused with every problem named and kept as failed."""
    result = validate(raw)
    if isinstance(result, list):
        failed.record(
            client, stream, raw, stage="ingest", reason=_reason(result), source=source
        )
        details = [{**e, "loc": ["body", *e["loc"]]} for e in result]
        raise InvalidMessageError(details[0]["msg"], details=details)
    now = datetime.now(UTC)
    queue.publish(
        client, stream,
        [envelope(result, source=source, received_at=now, client=sender)],
    )  # fmt: skip
    return Accepted(accepted=1)


def accept_batch(
    client: redis.Redis, stream: str, batch: Batch, *, source: str,
    sender: dict[str, str] | None = None,
) -> Accepted:  # fmt: skip
    """Good messages are enqueued; each bad one is reported with its index and why,
    and kept in the failed-events store."""
    now = datetime.now(UTC)
    defaults = {"context": batch.context, "sentAt": batch.sentAt}
    good, rejected = [], []
    for index, raw in enumerate(batch.batch):
        result = validate(raw, defaults=defaults)
        if isinstance(result, Message):
            good.append(envelope(result, source=source, received_at=now, client=sender))
            continue
        message_id = raw.get("messageId") if isinstance(raw, dict) else None
        rejected.append(Rejected(index=index, messageId=message_id, errors=result))
        failed.record(
            client, stream, raw, stage="ingest", reason=_reason(result), source=source
        )
    if not good and rejected:
        raise InvalidInputError(
            f"all {len(rejected)} messages of the batch were rejected; "
            f"first: {rejected[0].errors[0]['msg']}",
            loc=["body", "batch", rejected[0].index],
        )
    queue.publish(client, stream, good)
    return Accepted(accepted=len(good), rejected=rejected)


def _reason(errors: list[dict[str, Any]]) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'message'}: {e['msg']}" for e in errors
    )

"""Accepting messages: validation, clock correction and enqueueing. No HTTP here."""

from datetime import UTC, datetime
from typing import Any

import redis
from pydantic import ValidationError

from core.errors import InvalidInputError
from events import queue
from events.models import Accepted, Batch, Message, Rejected


def envelope(message: Message, *, source: str, received_at: datetime) -> dict[str, Any]:
    """What the worker receives: the message plus when and from where it arrived."""
    data = message.model_dump(mode="json")
    data["originalTimestamp"] = data.pop("timestamp")
    data["timestamp"] = message.corrected_timestamp(received_at).isoformat()
    data["receivedAt"] = received_at.isoformat()
    data["source"] = source
    return without_nul(data)


def without_nul(value: Any) -> Any:
    """NUL characters removed from every string: PostgreSQL cannot store them in text
    or JSON, and no real client means anything by them."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_nul(v) for v in value]
    return value


def accept_one(
    client: redis.Redis, stream: str, message: Message, *, source: str
) -> Accepted:
    now = datetime.now(UTC)
    queue.publish(client, stream, [envelope(message, source=source, received_at=now)])
    return Accepted(accepted=1)


def accept_batch(
    client: redis.Redis, stream: str, batch: Batch, *, source: str
) -> Accepted:
    """Good messages are enqueued; each bad one is reported with its index and why."""
    now = datetime.now(UTC)
    good, rejected = [], []
    for index, raw in enumerate(batch.batch):
        if not isinstance(raw, dict):
            error = {
                "type": "dict_type",
                "loc": [],
                "msg": "a message must be a JSON object",
            }
            rejected.append(Rejected(index=index, messageId=None, errors=[error]))
            continue
        merged = {"context": batch.context, "sentAt": batch.sentAt, **raw}
        try:
            message = Message.model_validate(merged)
        except ValidationError as exc:
            errors = [
                {"type": e["type"], "loc": list(e["loc"]), "msg": e["msg"]}
                for e in exc.errors(include_url=False)
            ]
            message_id = raw.get("messageId") if isinstance(raw, dict) else None
            rejected.append(Rejected(index=index, messageId=message_id, errors=errors))
            continue
        good.append(envelope(message, source=source, received_at=now))
    if not good and rejected:
        raise InvalidInputError(
            f"all {len(rejected)} messages of the batch were rejected; "
            f"first: {rejected[0].errors[0]['msg']}",
            loc=["body", "batch", rejected[0].index],
        )
    queue.publish(client, stream, good)
    return Accepted(accepted=len(good), rejected=rejected)

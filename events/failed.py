"""The failed-events store: every message the platform could not take, kept with the
reason, so that none is lost and each can be replayed once its cause is fixed.

Rejected at the door (invalid, too large) or by the worker (could not be applied),
a message lands in one Redis stream next to the event stream, in arrival order.
"""

import json
from datetime import UTC, datetime
from typing import Any, Literal

import redis
from pydantic import BaseModel

FAILED_SUFFIX = ":failed"
Stage = Literal["ingest", "apply"]


class FailedEvent(BaseModel):
    id: str
    stage: Stage
    reason: str
    source: str
    failed_at: datetime
    payload: Any


class FailedEventPage(BaseModel):
    items: list[FailedEvent]
    # Pass as ``before`` to read the next (older) page; null on the last page.
    next_before: str | None


def failed_stream(stream: str) -> str:
    return stream + FAILED_SUFFIX


def record(
    client: redis.Redis,
    stream: str,
    payload: Any,
    *,
    stage: Stage,
    reason: str,
    source: str,
) -> str:
    from events.service import without_nul

    fields = {
        "payload": json.dumps(without_nul(payload), default=str),
        "stage": stage,
        "reason": reason,
        "source": source,
        "failed_at": datetime.now(UTC).isoformat(),
    }
    return str(client.xadd(failed_stream(stream), fields))


def list_failed(
    client: redis.Redis, stream: str, *, limit: int = 50, before: str | None = None
) -> FailedEventPage:
    """Newest first."""
    maximum = f"({before}" if before else "+"
    entries = client.xrevrange(failed_stream(stream), max=maximum, min="-", count=limit)
    items = [_to_model(entry_id, fields) for entry_id, fields in entries]
    next_before = items[-1].id if len(items) == limit else None
    return FailedEventPage(items=items, next_before=next_before)


def get(client: redis.Redis, stream: str, entry_id: str) -> FailedEvent | None:
    entries = client.xrange(failed_stream(stream), min=entry_id, max=entry_id)
    return _to_model(*entries[0]) if entries else None


def delete(client: redis.Redis, stream: str, entry_id: str) -> bool:
    return bool(client.xdel(failed_stream(stream), entry_id))


def _to_model(entry_id: Any, fields: dict[Any, Any]) -> FailedEvent:
    decoded = {_text(k): _text(v) for k, v in fields.items()}
    try:
        payload = json.loads(decoded.get("payload", "null"))
    except json.JSONDecodeError:
        payload = decoded.get("payload")
    return FailedEvent(
        id=_text(entry_id),
        stage=decoded.get("stage", "apply"),  # type: ignore[arg-type]
        reason=decoded.get("reason", ""),
        source=decoded.get("source", ""),
        failed_at=decoded.get("failed_at") or datetime.now(UTC),
        payload=payload,
    )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class ReplayResult(BaseModel):
    id: str
    replayed: bool
    errors: list[dict[str, Any]] = []


def replay(client: redis.Redis, stream: str, entry_id: str) -> ReplayResult | None:
    """Send a failed message through again. A message refused at the door is checked
    again first and stays here, with the new errors, if it is still invalid; one the
    worker could not apply is queued as it was, and fails again if its cause remains.
    """
    from events import queue, service

    failed_event = get(client, stream, entry_id)
    if failed_event is None:
        return None
    if failed_event.stage == "apply":
        queue.publish(client, stream, [failed_event.payload])
    else:
        result = service.validate(failed_event.payload)
        if isinstance(result, list):
            return ReplayResult(id=entry_id, replayed=False, errors=result)
        envelope = service.envelope(
            result, source=failed_event.source, received_at=datetime.now(UTC)
        )
        queue.publish(client, stream, [envelope])
    delete(client, stream, entry_id)
    return ReplayResult(id=entry_id, replayed=True)

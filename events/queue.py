"""The durable event queue: a Redis stream read by a consumer group.

An event is acknowledged to its sender only after XADD returned, and removed from the
group's pending list only after the worker committed it, so a crash at any point
leaves it either unread or pending, never lost. Applying is idempotent on
``messageId``, so a pending event read again after a crash is stored once.
"""

import json
import logging
from collections.abc import Iterable
from typing import Any

import redis

from events import failed

logger = logging.getLogger(__name__)


def publish(
    client: redis.Redis, stream: str, envelopes: Iterable[dict[str, Any]]
) -> int:
    pipe = client.pipeline(transaction=False)
    count = 0
    for envelope in envelopes:
        pipe.xadd(stream, {"payload": json.dumps(envelope, default=str)})
        count += 1
    if count:
        pipe.execute()
    return count


class Consumer:
    def __init__(self, client: redis.Redis, stream: str, group: str, name: str) -> None:
        self.client, self.stream, self.group, self.name = client, stream, group, name
        self._backlog = True  # first drain what this consumer read but never acked

    def ensure_group(self) -> None:
        try:
            self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def read(
        self, count: int = 100, block_ms: int = 1000
    ) -> list[tuple[str, dict[str, Any]]]:
        if self._backlog:
            entries = self._read("0", count, block_ms=None)
            if entries:
                return entries
            self._backlog = False
        return self._read(">", count, block_ms=block_ms)

    def _read(
        self, start: str, count: int, *, block_ms: int | None
    ) -> list[tuple[str, dict[str, Any]]]:
        response = self.client.xreadgroup(
            self.group, self.name, {self.stream: start}, count=count, block=block_ms
        )
        entries = response[0][1] if response else []
        return [(entry_id, _decode(fields)) for entry_id, fields in entries]

    def claim_abandoned(self, min_idle_ms: int = 60_000) -> int:
        """Take over events another worker read and never acknowledged."""
        cursor, total = "0-0", 0
        while True:
            cursor, claimed, *_ = self.client.xautoclaim(
                self.stream, self.group, self.name, min_idle_time=min_idle_ms,
                start_id=cursor, count=500,
            )  # fmt: skip
            total += len(claimed)
            if _text(cursor) == "0-0":
                break
        if total:
            logger.warning("claimed abandoned events", extra={"count": total})
            self._backlog = True
        return total

    def retry_pending(self) -> None:
        """Read this consumer's unacknowledged events again before new ones."""
        self._backlog = True

    def ack(self, entry_ids: list[str]) -> None:
        if entry_ids:
            self.client.xack(self.stream, self.group, *entry_ids)

    def fail(self, entry_id: str, payload: dict[str, Any], reason: str) -> None:
        """Keep an event that cannot be applied, with the reason, for replay."""
        failed.record(
            self.client, self.stream, payload, stage="apply", reason=reason,
            source=str(payload.get("source", "")),
        )  # fmt: skip
        self.ack([entry_id])


def _decode(fields: dict[str, str]) -> dict[str, Any]:
    try:
        return json.loads(fields.get("payload", "{}"))
    except json.JSONDecodeError:
        return {"_undecodable": fields.get("payload")}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)

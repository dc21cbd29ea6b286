"""The worker: reads the event stream and applies each event to its profile."""

import logging
import os
import signal
import socket
import time
from datetime import UTC, datetime
from typing import Any

import redis
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlmodel import Session

from campaigns import worker as campaign_worker
from context import service as context_data
from core.db import get_engine
from core.redis import get_redis
from core.settings import get_settings
from events.ecommerce import ORDER_EVENTS, OrderFact, parse_fact
from events.queue import Consumer
from profiles import cache as profile_cache
from profiles import service as profiles
from profiles.errors import ConcurrentIdentityError
from profiles.models import Event, IdentityType, Profile
from segments import membership as segment_membership
from segments import service as segments

logger = logging.getLogger(__name__)

HEARTBEAT_SUFFIX = ":worker-heartbeat"
_TRAIT_IDENTITIES = {"email": IdentityType.email, "phone": IdentityType.phone}
_CHANNEL_IDENTITIES = {
    IdentityType.whatsapp_id.value, IdentityType.messenger_id.value,
    IdentityType.device_id.value,
}  # fmt: skip


def identity_keys(envelope: dict[str, Any]) -> list[tuple[IdentityType, str]]:
    keys: list[tuple[IdentityType, str]] = []
    if envelope.get("userId"):
        keys.append((IdentityType.customer_id, str(envelope["userId"])))
    if envelope.get("anonymousId"):
        keys.append((IdentityType.anonymous_id, str(envelope["anonymousId"])))
    traits = envelope.get("traits") or envelope.get("context", {}).get("traits") or {}
    for trait, identity_type in _TRAIT_IDENTITIES.items():
        if isinstance(traits.get(trait), str) and traits[trait].strip():
            keys.append((identity_type, traits[trait]))
    for external in envelope.get("context", {}).get("externalIds") or []:
        if isinstance(external, dict) and external.get("id") and external.get("type"):
            kind, value = str(external["type"]), str(external["id"])
            if kind in _CHANNEL_IDENTITIES:  # a chat channel's own identity types
                keys.append((IdentityType(kind), value))
            else:
                keys.append((IdentityType.external_id, f"{kind}:{value}"))
    return keys


def apply_event(session: Session, envelope: dict[str, Any]) -> bool:
    """Apply one envelope; False when it had been applied before (a redelivery)."""
    keys = identity_keys(envelope)
    if not keys:
        raise ValueError("event has neither userId nor anonymousId")
    if profiles.is_stored(session, str(envelope["messageId"])):
        return False  # a redelivery or a re-import: change nothing, not even traits
    source = envelope.get("source", "")
    profile = profiles.resolve(
        session, keys, source=source, message_id=str(envelope["messageId"])
    )
    # Whose stage and retention to recompute once the batch is committed.
    profile_cache.touch(session, profile.id)
    if envelope["type"] == "alias":
        previous = envelope["previousId"]
        for identity_type in (IdentityType.customer_id, IdentityType.anonymous_id):
            old = profiles.get_by_identity(session, (identity_type, previous))
            if old is not None and old.id != profile.id:
                profiles.merge(session, profile, old)
    at = _parse_time(envelope.get("timestamp"))
    if envelope["type"] == "identify":
        profiles.set_traits(
            session, profile, envelope.get("traits") or {}, at=at, source=source
        )
    is_trait_message = envelope["type"] in ("identify", "group")
    # Location and device are read here, before the IP address is stored as the
    # shop's privacy setting says.
    context, observed = context_data.enrich(envelope.get("context") or {})
    event = Event(
        message_id=envelope["messageId"],
        profile_id=profile.id,
        type=envelope["type"],
        name=envelope.get("event") or envelope.get("name"),
        properties=envelope.get("traits" if is_trait_message else "properties") or {},
        context=context,
        source=source,
        timestamp=at,
        received_at=_parse_time(envelope.get("receivedAt")),
        identity_keys=profiles.key_strings(keys),
    )
    if not profiles.add_event(session, profile, event):
        return False
    context_data.record(session, profile.id, observed, at=at)
    if event.name in ORDER_EVENTS:
        _record_order(session, profile, event)
    return True


_ORDER_STATUS = {
    "Order Completed": "completed",
    "Order Refunded": "refunded",
    "Order Cancelled": "cancelled",
}


def _record_order(session: Session, profile: Profile, event: Event) -> None:
    fact = parse_fact(event.name, event.properties)
    if not isinstance(fact, OrderFact) or not fact.order_id:
        logger.info("order event without order_id; kept on the timeline only")
        return
    profiles.record_order(
        session, profile, order_id=fact.order_id, source=event.source,
        status=_ORDER_STATUS[event.name or ""], total=fact.amount,
        currency=fact.currency.upper(), at=event.timestamp,
        products=[p.model_dump(exclude_none=True) for p in fact.products],
    )  # fmt: skip


class Worker:
    def __init__(
        self,
        engine: Engine,
        client: redis.Redis,
        *,
        name: str | None = None,
        batch_size: int = 100,
    ) -> None:
        settings = get_settings().tracking
        self.engine = engine
        self.client = client
        self.consumer = Consumer(
            client,
            settings.stream,
            settings.consumer_group,
            name or settings.consumer_name or f"{socket.gethostname()}-{os.getpid()}",
        )
        self.running = True
        self.applied = 0
        self.batch_size = batch_size

    def run_once(self, block_ms: int = 1000) -> int:
        """Read one batch and apply it; returns how many entries were handled.

        The batch is applied in one transaction, which is what makes the worker fast;
        if anything in it fails, it is applied again event by event, so one bad
        event neither blocks nor takes down the others."""
        entries = self.consumer.read(count=self.batch_size, block_ms=block_ms)
        if not entries:
            return 0
        try:
            with Session(self.engine) as session:
                applied = sum(
                    apply_event(session, envelope) for _id, envelope in entries
                )
                touched = set(session.info.get(profile_cache.TOUCHED, ()))
                session.commit()
        except Exception:
            logger.info("batch failed; applying its events one by one")
            return self._run_one_by_one(entries)
        self.applied += applied
        self.consumer.ack([entry_id for entry_id, _envelope in entries])
        self._refresh_states(touched)
        return len(entries)

    def _refresh_states(self, profile_ids: set[str]) -> None:
        """Stage and retention of the profiles the events touched. They are derived:
        a failure here is logged and the next event or `cdp segments refresh`
        recomputes them; the events themselves are already safe."""
        if not profile_ids:
            return
        try:
            with Session(self.engine) as session:
                segments.refresh(session, sorted(profile_ids))
        except (SQLAlchemyError, ValueError) as exc:
            logger.warning(
                "stage and retention not refreshed",
                extra={"profiles": len(profile_ids), "error": type(exc).__name__},
            )
        # After the stages: a campaign triggered by a stage change sees the new one.
        try:
            campaign_worker.note_touched(self.client, profile_ids)
        except redis.RedisError as exc:
            # Only a time-based recheck of these triggers is lost, not an event.
            logger.warning(
                "profiles not passed to campaigns", extra={"error": type(exc).__name__}
            )

    def recheck_segments(self) -> None:
        """Memberships whose time windows ran out, without waiting for an event."""
        try:
            with Session(self.engine) as session:
                segment_membership.recheck_due(session)
        except (SQLAlchemyError, ValueError) as exc:
            logger.warning(
                "segment windows not rechecked", extra={"error": type(exc).__name__}
            )

    def _run_one_by_one(self, entries: list[tuple[str, dict[str, Any]]]) -> int:
        for entry_id, envelope in entries:
            try:
                if self._apply(envelope):
                    self.applied += 1
            except OperationalError:
                # The database is away: leave this and the rest pending, retry soon.
                logger.warning("database unavailable; events stay pending")
                self.consumer.retry_pending()
                time.sleep(1)
                return 0
            except (
                KeyError,
                ValueError,
                TypeError,
                SQLAlchemyError,
                ConcurrentIdentityError,
            ) as exc:
                logger.warning(
                    "event could not be applied; kept in the failed stream",
                    extra={"entry": entry_id, "error": type(exc).__name__},
                )
                self.consumer.fail(entry_id, envelope, f"{type(exc).__name__}: {exc}")
                continue
            self.consumer.ack([entry_id])
        return len(entries)

    def _apply(self, envelope: dict[str, Any], attempts: int = 3) -> bool:
        """Apply in one transaction. Another worker may create the same identity or
        store the same message first: the unique constraints refuse ours, and a retry
        then finds theirs."""
        for attempt in range(1, attempts + 1):
            try:
                with Session(self.engine) as session:
                    applied = apply_event(session, envelope)
                    touched = set(session.info.get(profile_cache.TOUCHED, ()))
                    session.commit()
                self._refresh_states(touched)
                return applied
            except (IntegrityError, ConcurrentIdentityError):
                if attempt == attempts:
                    raise
                logger.info("concurrent write; retrying", extra={"attempt": attempt})
        return False

    def run(self) -> None:
        self.consumer.ensure_group()
        logger.info("worker started", extra={"consumer": self.consumer.name})
        idle_ms = get_settings().tracking.claim_idle_ms
        heartbeat = self.consumer.stream + HEARTBEAT_SUFFIX
        recheck_seconds = get_settings().segments.recheck_seconds
        last_claim = last_recheck = 0.0
        while self.running:
            self.client.set(heartbeat, datetime.now(UTC).isoformat(), ex=15)
            if time.monotonic() - last_claim > min(30.0, idle_ms / 1000):
                self.consumer.claim_abandoned(idle_ms)
                last_claim = time.monotonic()
            if time.monotonic() - last_recheck > recheck_seconds:
                self.recheck_segments()
                last_recheck = time.monotonic()
            self.run_once()
        logger.info("worker stopped", extra={"applied": self.applied})

    def stop(self, *_args: object) -> None:
        self.running = False


def main() -> None:
    from core.logging import configure_logging

    configure_logging()
    worker = Worker(get_engine(), get_redis())
    signal.signal(signal.SIGTERM, worker.stop)
    signal.signal(signal.SIGINT, worker.stop)
    worker.run()


def _parse_time(value: str | None) -> datetime:
    if not value:
        return datetime.now(UTC)
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


if __name__ == "__main__":
    main()

"""Profile rules and queries. No HTTP here.

Identity resolution here is the plain deterministic kind: identifiers that arrive
together belong to one profile, and two profiles that share one are merged into the
older. The rules, ledger and unmerge of issue #4 build on these functions.
"""

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete as sa_delete
from sqlalchemy import func, update
from sqlmodel import Session, col, select

from profiles.errors import ConcurrentIdentityError, ProfileNotFoundError
from profiles.identity import normalise, parse_ref
from profiles.models import (
    Consent,
    ConsentCreate,
    DeletionReport,
    Event,
    Identity,
    IdentityType,
    MatchSuggestion,
    Order,
    Profile,
    TraitsUpdate,
    utcnow,
)

logger = logging.getLogger(__name__)

IdentityKey = tuple[IdentityType, str]


def get(session: Session, profile_id: str) -> Profile | None:
    """The profile, following merges to the one that absorbed it."""
    profile = session.get(Profile, profile_id)
    while profile is not None and profile.merged_into:
        profile = session.get(Profile, profile.merged_into)
    return profile


def get_by_identity(session: Session, key: IdentityKey) -> Profile | None:
    identity_type, value = key
    key = (identity_type, normalise(identity_type, value))
    profile_id = _identity_cache(session).get(key)
    if profile_id is None and key in session.info.get("absent_identities", ()):
        return None
    if profile_id is None:
        statement = select(Identity.profile_id).where(
            Identity.type == key[0].value, Identity.value == key[1]
        )
        with session.no_autoflush:
            profile_id = session.exec(statement).first()
        if profile_id is None:
            return None
        _identity_cache(session)[key] = profile_id
    return get(session, profile_id)


def prefetch(
    session: Session, keys: Sequence[IdentityKey], message_ids: Sequence[str]
) -> None:
    """Read in two queries what a batch of events will ask one by one: which of
    these identities exist, and which of these messages were stored before."""
    keys = [(t, normalise(t, v)) for t, v in keys if v and v.strip()]
    cache = _identity_cache(session)
    values = {v for _t, v in keys}
    if values:
        statement = select(Identity).where(col(Identity.value).in_(values))
        wanted = {(t.value, v) for t, v in keys}
        for identity in session.exec(statement):
            if (identity.type, identity.value) in wanted:
                cache[(IdentityType(identity.type), identity.value)] = (
                    identity.profile_id
                )
    # Those not found are known to be new: add_event need not ask again.
    stored = set(
        session.exec(
            select(Event.message_id).where(col(Event.message_id).in_(message_ids))
        )
    )
    session.info.setdefault("message_ids", set()).update(stored)
    session.info["prefetched_message_ids"] = set(message_ids) - stored


def _identity_cache(session: Session) -> dict[IdentityKey, str]:
    """Identity to profile id, for identities read or written in this transaction:
    a worker applies a batch of events in one transaction, and most of a batch's
    events come from a few visitors."""
    return session.info.setdefault("identity_profile", {})


def get_by_ref_or_raise(session: Session, ref: str) -> Profile:
    parsed = parse_ref(ref)
    profile = (
        get(session, parsed)
        if isinstance(parsed, str)
        else get_by_identity(session, parsed)
    )
    if profile is None:
        raise ProfileNotFoundError(f"no profile for {ref!r}", loc=["path", "ref"])
    return profile


def resolve(session: Session, keys: Sequence[IdentityKey], *, source: str) -> Profile:
    """The one profile these identifiers belong to, created or merged as needed."""
    keys = [(t, normalise(t, v)) for t, v in keys if v and v.strip()]
    found = {p.id: p for k in keys if (p := get_by_identity(session, k)) is not None}
    if found:
        survivor, *others = sorted(found.values(), key=lambda p: p.created_at)
        _lock(session, [survivor, *others])
        for other in others:
            merge(session, survivor, other)
    else:
        # Flushed now: without ORM relationships the identities and events that
        # point at it would not be ordered after it.
        survivor = Profile()
        session.add(survivor)
        session.flush()
    _attach_identities(session, survivor, keys, source=source)
    return survivor


def _lock(session: Session, profiles: list[Profile]) -> None:
    """Row locks (PostgreSQL) for the rest of the transaction, so a concurrent writer
    to these profiles waits for us; taken once per profile and transaction."""
    locked: set[str] = session.info.setdefault("locked_profiles", set())
    for profile in profiles:
        if profile.id not in locked:
            session.flush()  # refresh would drop unflushed changes
            session.refresh(profile, with_for_update=True)
            locked.add(profile.id)


def merge(session: Session, survivor: Profile, other: Profile) -> None:
    """Fold ``other`` into ``survivor``: identities and events move, traits that the
    survivor lacks are kept, and ``other`` points at the survivor from now on."""
    session.execute(
        update(Identity).where(col(Identity.profile_id) == other.id)
        .values(profile_id=survivor.id)
    )  # fmt: skip
    for table in (Event, Order, Consent):
        session.execute(
            update(table).where(col(table.profile_id) == other.id)
            .values(profile_id=survivor.id)
        )  # fmt: skip
    cache = _identity_cache(session)
    for key, profile_id in list(cache.items()):
        if profile_id == other.id:
            cache[key] = survivor.id
    survivor.traits = {**other.traits, **survivor.traits}
    survivor.trait_times = {**other.trait_times, **survivor.trait_times}
    survivor.last_seen_at = _latest(survivor.last_seen_at, other.last_seen_at)
    survivor.updated_at = utcnow()
    other.merged_into = survivor.id
    session.add_all([survivor, other])
    logger.info("profiles merged", extra={"survivor": survivor.id, "other": other.id})


def set_traits(
    session: Session, profile: Profile, traits: dict[str, Any], *, at: datetime
) -> None:
    """Set traits as of event time ``at``: a trait set by a later event is kept."""
    stamp = _aware(at).isoformat()
    newer = {k: v for k, v in traits.items() if profile.trait_times.get(k, "") <= stamp}
    if not newer:
        return
    profile.traits = {**profile.traits, **newer}
    profile.trait_times = {**profile.trait_times, **dict.fromkeys(newer, stamp)}
    profile.updated_at = utcnow()
    session.add(profile)


def update_traits(session: Session, profile: Profile, update: TraitsUpdate) -> None:
    """Operations from the profile API, as of now: set, then set_once where the trait
    is absent, then unset. An unset is remembered like a set, so a late event that
    is older cannot bring the value back."""
    now = utcnow()
    set_once = {k: v for k, v in update.set_once.items() if k not in profile.traits}
    set_traits(session, profile, {**update.set, **set_once}, at=now)
    if update.unset:
        stamp = now.isoformat()
        profile.traits = {
            k: v for k, v in profile.traits.items() if k not in update.unset
        }
        profile.trait_times = {
            **profile.trait_times,
            **dict.fromkeys(update.unset, stamp),
        }
        profile.updated_at = now
        session.add(profile)
    session.commit()


def record_consent(
    session: Session, profile: Profile, consent: ConsentCreate
) -> Consent:
    row = Consent(profile_id=profile.id, **consent.model_dump())
    session.add(row)
    session.commit()
    return row


def list_consents(session: Session, profile: Profile) -> list[Consent]:
    """The decision in force for each purpose: the latest one recorded."""
    statement = select(Consent).where(Consent.profile_id == profile.id)
    latest: dict[str, Consent] = {}
    for consent in session.exec(
        statement.order_by(col(Consent.recorded_at), col(Consent.id))
    ):
        latest[consent.purpose] = consent
    return sorted(latest.values(), key=lambda c: c.purpose)


def delete(session: Session, profile: Profile) -> DeletionReport:
    """Erase the profile, every profile merged into it, and all that points at them
    (GDPR Article 17). Nothing of them is kept."""
    ids = _merged_family(session, profile.id)
    counts = {}
    for name, table in (
        ("consents", Consent), ("orders", Order), ("events", Event),
        ("identities", Identity),
    ):  # fmt: skip
        result = session.execute(sa_delete(table).where(col(table.profile_id).in_(ids)))
        counts[name] = result.rowcount
    pair = col(MatchSuggestion.profile_a).in_(ids) | col(MatchSuggestion.profile_b).in_(
        ids
    )
    session.execute(sa_delete(MatchSuggestion).where(pair))
    session.execute(
        update(Profile).where(col(Profile.id).in_(ids)).values(merged_into=None)
    )
    removed = session.execute(sa_delete(Profile).where(col(Profile.id).in_(ids)))
    session.commit()
    session.info.pop("identity_profile", None)
    logger.info("profile erased", extra={"profile": profile.id, "profiles": len(ids)})
    return DeletionReport(profiles=removed.rowcount, **counts)


def _merged_family(session: Session, profile_id: str) -> list[str]:
    family, frontier = [profile_id], [profile_id]
    while frontier:
        children = session.exec(
            select(Profile.id).where(col(Profile.merged_into).in_(frontier))
        ).all()
        frontier = [c for c in children if c not in family]
        family.extend(frontier)
    return family


def record_order(
    session: Session,
    profile: Profile,
    *,
    order_id: str,
    source: str,
    status: str,
    total: float,
    currency: str,
    products: list[dict[str, Any]],
    at: datetime,
) -> Order:
    """Create or update an order from an order event; a late event (older than the
    order's last change) does not undo a newer status."""
    at = _aware(at)
    statement = select(Order).where(Order.source == source, Order.order_id == order_id)
    order = session.exec(statement).first()
    if order is None:
        order = Order(
            profile_id=profile.id, order_id=order_id, source=source, status=status,
            total=total, currency=currency, products=products, placed_at=at,
            changed_at=at,
        )  # fmt: skip
    elif at >= _aware(order.changed_at):
        order.status, order.changed_at = status, at
        if status == "completed":
            order.total, order.currency, order.products = total, currency, products
    if status == "completed":
        # A completion that arrives after its refund still tells when and what.
        order.placed_at = at
        order.products = order.products or products
        order.total = order.total or total
    session.add(order)
    return order


def list_orders(session: Session, profile: Profile) -> list[Order]:
    statement = select(Order).where(Order.profile_id == profile.id)
    return list(session.exec(statement.order_by(col(Order.placed_at).desc())).all())


def is_stored(session: Session, message_id: str) -> bool:
    """Whether an event with this message id is stored, or added in this transaction."""
    seen: set[str] = session.info.setdefault("message_ids", set())
    if message_id in seen:
        return True
    if message_id in session.info.get("prefetched_message_ids", ()):
        return False
    duplicate = select(Event.id).where(Event.message_id == message_id)
    with session.no_autoflush:
        return session.exec(duplicate).first() is not None


def add_event(session: Session, profile: Profile, event: Event) -> bool:
    """Store the event on the profile's timeline; False if it was stored before."""
    if is_stored(session, event.message_id):
        return False
    session.info["message_ids"].add(event.message_id)
    event.profile_id = profile.id
    profile.last_seen_at = _latest(profile.last_seen_at, event.timestamp)
    session.add_all([event, profile])
    return True


def list_identities(session: Session, profile: Profile) -> list[Identity]:
    statement = select(Identity).where(Identity.profile_id == profile.id)
    return list(session.exec(statement.order_by(col(Identity.id))).all())


def count_events(session: Session, profile: Profile) -> int:
    statement = select(func.count()).where(Event.profile_id == profile.id)
    return int(session.exec(statement).one())


def list_events(
    session: Session,
    profile: Profile,
    *,
    limit: int = 50,
    offset: int = 0,
    event_type: str | None = None,
    name: str | None = None,
) -> list[Event]:
    """Newest first by event time (late arrivals take their place in the timeline)."""
    statement = select(Event).where(Event.profile_id == profile.id)
    if event_type:
        statement = statement.where(Event.type == event_type)
    if name:
        statement = statement.where(Event.name == name)
    statement = statement.order_by(col(Event.timestamp).desc(), col(Event.id).desc())
    return list(session.exec(statement.offset(offset).limit(limit)).all())


def _attach_identities(
    session: Session, profile: Profile, keys: Sequence[IdentityKey], *, source: str
) -> None:
    """Attach the identities the profile lacks. If another writer attached one of
    them meanwhile (found here, or refused by the unique constraint at commit), the
    caller applies the event again, and then finds that writer's profile."""
    for key in keys:
        owner = get_by_identity(session, key)
        if owner is profile:
            continue
        if owner is not None:
            raise ConcurrentIdentityError(key[0].value)
        session.add(
            Identity(
                profile_id=profile.id, type=key[0].value, value=key[1], source=source
            )
        )
        _identity_cache(session)[key] = profile.id


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None or b is None:
        return a or b
    return max(_aware(a), _aware(b))


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)

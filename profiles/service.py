"""Profile rules and queries. No HTTP here.

Identity resolution here is the plain deterministic kind: identifiers that arrive
together belong to one profile, and two profiles that share one are merged into the
older. The rules, ledger and unmerge of issue #4 build on these functions.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import delete as sa_delete
from sqlalchemy import func, update
from sqlmodel import Session, SQLModel, col, select

from profiles import cache as documents
from profiles.errors import (
    ConcurrentIdentityError,
    MergeNotFoundError,
    ProfileNotFoundError,
)
from profiles.identity import normalise, parse_ref
from profiles.models import (
    Consent,
    ConsentCreate,
    ConsentStatus,
    DeletionReport,
    Event,
    Identity,
    IdentityType,
    LedgerAction,
    LedgerEntry,
    MatchSuggestion,
    Order,
    Profile,
    TraitsUpdate,
    UnmergeResult,
    utcnow,
)
from profiles.rules import IdentityRules, Strategy, get_rules
from profiles.survivorship import Candidate, value_key, wins

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
        # The identity and its profile in one round trip.
        statement = (
            select(Profile)
            .join(Identity, col(Identity.profile_id) == col(Profile.id))
            .where(Identity.type == key[0].value, Identity.value == key[1])
        )
        with session.no_autoflush:
            found = session.exec(statement).first()
        if found is None:
            return None
        _identity_cache(session)[key] = found.id
        profile_id = found.id
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


def resolve(
    session: Session,
    keys: Sequence[IdentityKey],
    *,
    source: str,
    message_id: str | None = None,
) -> Profile:
    """The one profile these identifiers belong to, created or merged as needed,
    under the identity rules; every link, merge and refusal goes to the ledger.

    Identifiers are taken in rule priority. The profiles they lead to are merged
    into one unless that would give it two values of a unique type (two customer
    ids are two people); a profile that cannot join is left alone, and so is the
    identifier that led to it."""
    rules = get_rules()
    evidence = _Evidence(source=source, message_id=message_id)
    keys = _usable_keys(session, keys, rules, evidence)
    wanted = _unique_values(rules, keys)
    target: Profile | None = None
    owners: dict[IdentityKey, str | None] = {}
    untrusted: list[IdentityKey] = []
    for key in keys:
        owner = get_by_identity(session, key)
        owners[key] = owner.id if owner else None
        if owner is None or owner is target:
            continue
        if not rules.may_join(key[0], source):
            # e.g. an email typed into a web form: it may not pull the event, and
            # whoever sent it, into the profile of the person who owns that email.
            untrusted.append(key)
            continue
        if not _compatible(session, rules, owner, wanted, target):
            continue
        _lock(session, [owner] if target is None else [target, owner])
        if owner.merged_into or (target is not None and target.merged_into):
            # Merged by another writer after we looked it up: start again.
            raise ConcurrentIdentityError(key[0].value)
        if target is None:
            target = owner
            continue
        survivor, other = sorted((target, owner), key=lambda p: _aware(p.created_at))
        merge(session, survivor, other, evidence=evidence, via=key)
        target = survivor
    if target is None:
        # Flushed now: without ORM relationships the identities and events that
        # point at it would not be ordered after it.
        target = Profile()
        session.add(target)
        session.flush()
    for key in untrusted:
        reason = f"{key[0].value} from source {source!r} may not join profiles"
        _ledger(session, target, LedgerAction.refused_source, key, reason, evidence)
    _attach_identities(session, target, keys, rules, evidence, owners)
    return target


def key_strings(keys: Sequence[IdentityKey]) -> list[str]:
    """The usable identifiers as ``type:value``, as an event records them."""
    rules = get_rules()
    strings = []
    for identity_type, raw in keys:
        value = normalise(identity_type, raw or "")
        if value and not rules.is_blocked(value):
            strings.append(f"{identity_type.value}:{value}")
    return strings


@dataclass(frozen=True)
class _Evidence:
    source: str
    message_id: str | None


def _usable_keys(
    session: Session,
    keys: Sequence[IdentityKey],
    rules: IdentityRules,
    evidence: _Evidence,
) -> list[IdentityKey]:
    usable: list[IdentityKey] = []
    for identity_type, raw in keys:
        if not raw or not raw.strip():
            continue
        key = (identity_type, normalise(identity_type, raw))
        if rules.is_blocked(key[1]):
            logger.info(
                "blocked identifier ignored", extra={"type": identity_type.value}
            )
            continue
        if key not in usable:
            usable.append(key)
    return sorted(usable, key=lambda k: rules.rule(k[0]).priority)


def _unique_values(rules: IdentityRules, keys: list[IdentityKey]) -> dict[str, str]:
    """The event's own values of unique types: the person it is about has these."""
    return {t.value: v for t, v in keys if rules.rule(t).unique}


def _identities_of(session: Session, profile: Profile) -> list[tuple[str, str]]:
    cache: dict[str, list[tuple[str, str]]] = session.info.setdefault(
        "identities_of", {}
    )
    if profile.id not in cache:
        statement = select(Identity.type, Identity.value).where(
            Identity.profile_id == profile.id
        )
        with session.no_autoflush:
            cache[profile.id] = [(t, v) for t, v in session.exec(statement)]
    return cache[profile.id]


def _compatible(
    session: Session,
    rules: IdentityRules,
    candidate: Profile,
    wanted: dict[str, str],
    target: Profile | None,
) -> bool:
    """Whether ``candidate`` may be the person of this event (and of ``target``):
    no unique type with a different value on either side."""
    held = dict(wanted)
    if target is not None:
        for t, v in _identities_of(session, target):
            if rules.rule(IdentityType(t)).unique:
                held.setdefault(t, v)
    for t, v in _identities_of(session, candidate):
        if rules.rule(IdentityType(t)).unique and held.get(t, v) != v:
            return False
    return True


def _lock(session: Session, profiles: list[Profile]) -> None:
    """Row locks (PostgreSQL) for the rest of the transaction, so a concurrent writer
    to these profiles waits for us; taken once per profile and transaction."""
    locked: set[str] = session.info.setdefault("locked_profiles", set())
    for profile in profiles:
        if profile.id not in locked:
            session.flush()  # refresh would drop unflushed changes
            session.refresh(profile, with_for_update=True)
            locked.add(profile.id)


def merge(
    session: Session,
    survivor: Profile,
    other: Profile,
    *,
    evidence: "_Evidence | None" = None,
    via: IdentityKey | None = None,
    rule: str = "",
) -> None:
    """Fold ``other`` into ``survivor``: identities and events move, traits that the
    survivor lacks are kept, and ``other`` points at the survivor from now on."""
    evidence = evidence or _Evidence(source="", message_id=None)
    if via and not rule:
        rule = f"both profiles have {via[0].value} {via[1]!r}"
    session.flush()
    undo = {
        "identities": list(
            session.exec(select(Identity.id).where(Identity.profile_id == other.id))
        ),
        "consents": list(
            session.exec(select(Consent.id).where(Consent.profile_id == other.id))
        ),
        "survivor": _trait_state(survivor),
        "other": _trait_state(other),
    }
    session.add(
        LedgerEntry(
            profile_id=survivor.id, action=LedgerAction.merged,
            other_profile_id=other.id,
            identity_type=via[0].value if via else None,
            identity_value=via[1] if via else None,
            rule=rule,
            source=evidence.source, message_id=evidence.message_id, undo=undo,
        )
    )  # fmt: skip
    session.info.get("identities_of", {}).pop(survivor.id, None)
    session.info.get("identities_of", {}).pop(other.id, None)
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
    _merge_traits(survivor, other)
    survivor.last_seen_at = _latest(survivor.last_seen_at, other.last_seen_at)
    survivor.updated_at = utcnow()
    other.merged_into = survivor.id
    session.add_all([survivor, other])
    # What is derived from ``other`` (its segments, its document) goes too.
    documents.touch(session, survivor.id, other.id)
    logger.info("profiles merged", extra={"survivor": survivor.id, "other": other.id})


def unmerge(session: Session, survivor: Profile, other_id: str) -> UnmergeResult:
    """Undo the merge of ``other_id`` into ``survivor``: its identifiers, consents,
    the events that arrived with its identifiers (before or after the merge) and
    their orders go back, and both sides get their traits as they were before the
    merge, with later identify events applied again on the side they belong to."""
    entry = session.exec(
        select(LedgerEntry)
        .where(
            LedgerEntry.profile_id == survivor.id,
            LedgerEntry.action == LedgerAction.merged,
            LedgerEntry.other_profile_id == other_id,
        )
        .order_by(col(LedgerEntry.id).desc())
    ).first()
    other = session.get(Profile, other_id)
    if entry is None or other is None or other.merged_into != survivor.id:
        raise MergeNotFoundError(
            f"profile {other_id!r} is not merged into {survivor.id!r}",
            loc=["body", "other_profile_id"],
        )
    documents.touch(session, survivor.id, other.id)
    session.execute(
        update(Identity).where(col(Identity.id).in_(entry.undo.get("identities", [])))
        .values(profile_id=other.id)
    )  # fmt: skip
    session.execute(
        update(Consent).where(col(Consent.id).in_(entry.undo.get("consents", [])))
        .values(profile_id=other.id)
    )  # fmt: skip
    session.info.pop("identity_profile", None)
    session.info.pop("identities_of", None)
    theirs = {
        f"{t}:{v}"
        for t, v in session.exec(
            select(Identity.type, Identity.value).where(Identity.profile_id == other.id)
        )
    }
    events = session.exec(select(Event).where(Event.profile_id == survivor.id))
    moved = [e for e in events if _belongs_to(e.identity_keys, theirs)]
    for event in moved:
        event.profile_id = other.id
    order_ids = {str(e.properties.get("order_id")) for e in moved if e.name in _ORDERS}
    orders = session.exec(
        select(Order).where(
            Order.profile_id == survivor.id, col(Order.order_id).in_(order_ids)
        )
    ).all()
    for order in orders:
        order.profile_id = other.id
    for side, profile in (("survivor", survivor), ("other", other)):
        before = entry.undo.get(side, {})
        profile.traits = dict(before.get("traits", {}))
        profile.trait_times = dict(before.get("trait_times", {}))
        profile.trait_sources = dict(before.get("trait_sources", {}))
        profile.trait_counts = dict(before.get("trait_counts", {}))
        profile.updated_at = utcnow()
    other.merged_into = None
    session.add_all([survivor, other, *moved, *orders])
    session.flush()
    _replay_identifies_after(session, entry.at, [survivor, other])
    session.add(
        LedgerEntry(
            profile_id=survivor.id, action=LedgerAction.unmerged,
            other_profile_id=other.id,
            rule=f"undid the merge of {entry.at.isoformat()}",
        )
    )  # fmt: skip
    session.commit()
    return UnmergeResult(
        profile_id=survivor.id, restored_profile_id=other.id,
        identities=len(entry.undo.get("identities", [])), events=len(moved),
        orders=len(orders),
    )  # fmt: skip


_ORDERS = ("Order Completed", "Order Refunded", "Order Cancelled")


def _belongs_to(keys: list[str], theirs: set[str]) -> bool:
    """Whether an event goes with the restored side: decided, as in ``resolve``, by
    its highest-priority identifier (an event with a customer id is that customer's,
    whatever cookie came with it)."""
    if not keys:
        return False
    rules = get_rules()
    first = min(
        keys, key=lambda k: rules.rule(IdentityType(k.split(":", 1)[0])).priority
    )
    return first in theirs


def _trait_state(profile: Profile) -> dict[str, Any]:
    return {
        "traits": profile.traits, "trait_times": profile.trait_times,
        "trait_sources": profile.trait_sources, "trait_counts": profile.trait_counts,
    }  # fmt: skip


def _replay_identifies_after(
    session: Session, since: datetime, profiles: list[Profile]
) -> None:
    for profile in profiles:
        statement = (
            select(Event)
            .where(Event.profile_id == profile.id, Event.type == "identify")
            .where(col(Event.received_at) >= since)
            .order_by(col(Event.timestamp))
        )
        for event in session.exec(statement):
            set_traits(
                session, profile, event.properties, at=event.timestamp,
                source=event.source,
            )  # fmt: skip


def set_traits(
    session: Session,
    profile: Profile,
    traits: dict[str, Any],
    *,
    at: datetime,
    source: str = "",
) -> None:
    """Offer trait values from one event (time ``at``, from ``source``); each trait
    keeps the value its survivorship rule prefers (by default the most recent, so a
    late event cannot overwrite a newer value)."""
    rules = get_rules().traits
    stamp = _aware(at).isoformat()
    values, times = dict(profile.traits), dict(profile.trait_times)
    sources = dict(profile.trait_sources)
    counts = {k: dict(v) for k, v in profile.trait_counts.items()}
    for trait, value in traits.items():
        rule = rules.rule(trait)
        if rule.strategy is Strategy.most_frequent:
            seen = counts.setdefault(trait, {})
            seen[value_key(value)] = seen.get(value_key(value), 0) + 1
        new = Candidate(value, stamp, source, _count(counts, trait, value))
        if wins(rule, new, _current(profile, trait, counts)):
            values[trait], times[trait], sources[trait] = value, stamp, source
    profile.traits, profile.trait_times = values, times
    profile.trait_sources, profile.trait_counts = sources, counts
    profile.updated_at = utcnow()
    session.add(profile)


def _count(counts: dict[str, dict[str, int]], trait: str, value: Any) -> int:
    return counts.get(trait, {}).get(value_key(value), 1)


def _current(
    profile: Profile, trait: str, counts: dict[str, dict[str, int]]
) -> Candidate | None:
    if trait not in profile.traits and trait not in profile.trait_times:
        return None
    if trait not in profile.traits:  # unset: only a newer value may come back
        return Candidate(None, profile.trait_times[trait], "api", 0)
    value = profile.traits[trait]
    return Candidate(
        value, profile.trait_times.get(trait, ""), profile.trait_sources.get(trait, ""),
        _count(counts, trait, value),
    )  # fmt: skip


def _merge_traits(survivor: Profile, other: Profile) -> None:
    """The traits of two merged profiles, each decided by its survivorship rule."""
    counts = {k: dict(v) for k, v in survivor.trait_counts.items()}
    for trait, seen in other.trait_counts.items():
        mine = counts.setdefault(trait, {})
        for key, n in seen.items():
            mine[key] = mine.get(key, 0) + n
    values, times = dict(survivor.traits), dict(survivor.trait_times)
    sources = dict(survivor.trait_sources)
    rules = get_rules().traits
    for trait, value in other.traits.items():
        new = Candidate(
            value, other.trait_times.get(trait, ""), other.trait_sources.get(trait, ""),
            _count(counts, trait, value),
        )  # fmt: skip
        if wins(rules.rule(trait), new, _current(survivor, trait, counts)):
            values[trait] = value
            times[trait] = new.at
            sources[trait] = new.source
    survivor.traits, survivor.trait_times = values, times
    survivor.trait_sources, survivor.trait_counts = sources, counts


def update_traits(session: Session, profile: Profile, update: TraitsUpdate) -> None:
    """Operations from the profile API, as of now: set, then set_once where the trait
    is absent, then unset. An unset is remembered like a set, so a late event that
    is older cannot bring the value back."""
    now = utcnow()
    documents.touch(session, profile.id)
    set_once = {k: v for k, v in update.set_once.items() if k not in profile.traits}
    set_traits(session, profile, {**update.set, **set_once}, at=now, source="api")
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
    documents.touch(session, profile.id)
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
    documents.touch(session, *ids)
    counts = {}
    for name, table in (
        ("consents", Consent), ("orders", Order), ("events", Event),
        ("identities", Identity), ("ledger", LedgerEntry),
    ):  # fmt: skip
        result = session.execute(sa_delete(table).where(col(table.profile_id).in_(ids)))
        counts[name] = result.rowcount
    # Whatever else other parts keep about a person (their stage history, ...).
    handled = {"consent", "order", "event", "identity", "identity_ledger", "profile"}
    for table in reversed(SQLModel.metadata.sorted_tables):
        if "profile_id" in table.c and table.name not in handled:
            session.execute(sa_delete(table).where(table.c.profile_id.in_(ids)))
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
    counts.pop("ledger")
    return DeletionReport(profiles=removed.rowcount, **counts)


def list_merged_into(
    session: Session, profile_ids: Sequence[str]
) -> dict[str, list[str]]:
    """For each profile, the profiles merged into it, directly or through
    another; one query per level of merges."""
    parent: dict[str, str] = {}
    frontier = list(dict.fromkeys(profile_ids))
    while frontier:
        children = session.exec(
            select(Profile.id, Profile.merged_into).where(
                col(Profile.merged_into).in_(frontier)
            )
        ).all()
        children = [(c, p) for c, p in children if c not in parent and p is not None]
        parent.update(children)
        frontier = [c for c, _p in children]
    merged: dict[str, list[str]] = {p: [] for p in profile_ids}
    for child in parent:
        root = parent[child]
        while root in parent:
            root = parent[root]
        if root in merged:
            merged[root].append(child)
    return merged


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
    session: Session,
    profile: Profile,
    keys: Sequence[IdentityKey],
    rules: IdentityRules,
    evidence: _Evidence,
    owners: dict[IdentityKey, str | None],
) -> None:
    """Attach the identities the profile lacks, within the rules. ``owners`` is who
    had each identifier when the event was resolved: if another writer attached one
    meanwhile (found here, or refused by the unique constraint at commit), the
    caller applies the event again and then finds that writer's profile."""
    held = _identities_of(session, profile)
    for key in keys:
        owner = get_by_identity(session, key)
        if owner is profile:
            continue
        if owner is not None:
            if owners.get(key) is None:
                raise ConcurrentIdentityError(key[0].value)
            continue  # belongs to a person this event could not be joined with
        refusal = _refusal(rules, held, key)
        if refusal is not None:
            action, reason = refusal
            _ledger(session, profile, action, key, reason, evidence)
            continue
        session.add(
            Identity(
                profile_id=profile.id,
                type=key[0].value,
                value=key[1],
                source=evidence.source,
            )
        )
        _ledger(
            session,
            profile,
            LedgerAction.linked,
            key,
            _link_reason(keys, key),
            evidence,
        )
        held.append((key[0].value, key[1]))
        _identity_cache(session)[key] = profile.id


def _refusal(
    rules: IdentityRules, held: list[tuple[str, str]], key: IdentityKey
) -> tuple[LedgerAction, str] | None:
    rule = rules.rule(key[0])
    same_type = [v for t, v in held if t == key[0].value]
    if rule.unique and same_type:
        return LedgerAction.refused_unique, (
            f"{key[0].value} is unique and the profile already has {same_type[0]!r}"
        )
    if rule.max_per_profile is not None and len(same_type) >= rule.max_per_profile:
        return LedgerAction.refused_limit, (
            f"the profile already has {len(same_type)} {key[0].value} values, "
            f"the most the rules allow"
        )
    return None


def _link_reason(keys: Sequence[IdentityKey], key: IdentityKey) -> str:
    others = [f"{t.value} {v!r}" for t, v in keys if (t, v) != key]
    if not others:
        return "first seen on this profile"
    return "sent together with " + ", ".join(others)


def _ledger(
    session: Session,
    profile: Profile,
    action: LedgerAction,
    key: IdentityKey,
    rule: str,
    evidence: _Evidence,
) -> None:
    session.add(
        LedgerEntry(
            profile_id=profile.id, action=action, identity_type=key[0].value,
            identity_value=key[1], rule=rule, source=evidence.source,
            message_id=evidence.message_id,
        )
    )  # fmt: skip


def explain(session: Session, profile: Profile) -> list[LedgerEntry]:
    """The ledger of this profile and of every profile merged into it, oldest first."""
    ids = _merged_family(session, profile.id)
    statement = select(LedgerEntry).where(col(LedgerEntry.profile_id).in_(ids))
    return list(
        session.exec(statement.order_by(col(LedgerEntry.at), col(LedgerEntry.id)))
    )


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None or b is None:
        return a or b
    return max(_aware(a), _aware(b))


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# Readers for many profiles at once: what segment evaluation over a batch needs,
# in one query each instead of one per profile.


class OrderFigures(NamedTuple):
    placed_at: datetime
    total: float
    currency: str
    status: str


class ProfileFacts(NamedTuple):
    """The columns of a profile that rules test, without loading the whole row."""

    id: str
    merged_into: str | None
    traits: dict[str, Any]
    created_at: datetime
    last_seen_at: datetime | None


def list_profile_facts(
    session: Session, profile_ids: Sequence[str]
) -> list[ProfileFacts]:
    statement = select(
        Profile.id, Profile.merged_into, Profile.traits, Profile.created_at,
        Profile.last_seen_at,
    ).where(col(Profile.id).in_(list(profile_ids)))  # fmt: skip
    return sorted(
        (ProfileFacts(*row) for row in session.exec(statement)), key=lambda p: p.id
    )


def list_orders_of(
    session: Session, profile_ids: Sequence[str]
) -> dict[str, list[OrderFigures]]:
    found: dict[str, list[OrderFigures]] = {p: [] for p in profile_ids}
    statement = select(
        Order.profile_id, Order.placed_at, Order.total, Order.currency, Order.status
    ).where(col(Order.profile_id).in_(list(profile_ids)))
    for profile_id, *figures in session.exec(statement):
        found[profile_id].append(OrderFigures(*figures))
    return found


def list_events_of(
    session: Session,
    profile_ids: Sequence[str],
    *,
    names: Sequence[str],
    since: datetime | None = None,
) -> dict[str, list[tuple[str, datetime, dict[str, Any]]]]:
    """(name, time, properties) of the named events, newest first per profile."""
    found: dict[str, list[tuple[str, datetime, dict[str, Any]]]] = {
        p: [] for p in profile_ids
    }
    if not names:
        return found
    statement = select(
        Event.profile_id, Event.name, Event.timestamp, Event.properties
    ).where(col(Event.profile_id).in_(list(profile_ids)), col(Event.name).in_(names))
    if since is not None:
        statement = statement.where(Event.timestamp >= since)
    statement = statement.order_by(col(Event.timestamp).desc())
    for profile_id, name, at, properties in session.exec(statement):
        found[profile_id].append((name, _aware(at), properties or {}))
    return found


def granted_purposes_of(
    session: Session, profile_ids: Sequence[str]
) -> dict[str, frozenset[str]]:
    """The purposes each profile's consent is granted for now (the latest decision
    per purpose counts)."""
    latest: dict[tuple[str, str], ConsentStatus] = {}
    statement = (
        select(Consent.profile_id, Consent.purpose, Consent.status)
        .where(col(Consent.profile_id).in_(list(profile_ids)))
        .order_by(col(Consent.recorded_at), col(Consent.id))
    )
    for profile_id, purpose, status in session.exec(statement):
        latest[(profile_id, purpose)] = status
    granted: dict[str, set[str]] = {p: set() for p in profile_ids}
    for (profile_id, purpose), status in latest.items():
        if status == ConsentStatus.granted:
            granted[profile_id].add(purpose)
    return {p: frozenset(purposes) for p, purposes in granted.items()}


def list_recent_events(
    session: Session, *, names: Sequence[str], since: datetime, limit: int
) -> list[tuple[str, str | None, dict[str, Any]]]:
    """(profile id, name, properties) of everyone's named events since then, the
    newest ``limit`` of them."""
    statement = (
        select(Event.profile_id, Event.name, Event.properties)
        .where(col(Event.name).in_(names), Event.timestamp >= since)
        .order_by(col(Event.timestamp).desc())
        .limit(limit)
    )
    return [(p, n, props or {}) for p, n, props in session.exec(statement)]


def list_live_ids(
    session: Session, *, after: str | None = None, limit: int = 500
) -> list[str]:
    """Ids of the profiles not merged into another, in id order, after ``after``:
    page through all with the last id of each page."""
    statement = select(Profile.id).where(col(Profile.merged_into).is_(None))
    if after is not None:
        statement = statement.where(col(Profile.id) > after)
    return list(session.exec(statement.order_by(col(Profile.id)).limit(limit)))


def list_activity_of(
    session: Session,
    profile_ids: Sequence[str],
    *,
    since: datetime,
    leave_out: Sequence[str] = (),
) -> dict[str, list[tuple[datetime, dict[str, Any]]]]:
    """(time, context) of each profile's events since ``since``, oldest first,
    without the events named in ``leave_out``."""
    found: dict[str, list[tuple[datetime, dict[str, Any]]]] = {
        p: [] for p in profile_ids
    }
    named_otherwise = col(Event.name).is_(None) | col(Event.name).not_in(leave_out)
    statement = (
        select(Event.profile_id, Event.timestamp, Event.context)
        .where(col(Event.profile_id).in_(list(profile_ids)))
        .where(Event.timestamp >= since, named_otherwise)
        .order_by(col(Event.timestamp))
    )
    for profile_id, at, context in session.exec(statement):
        found[profile_id].append((_aware(at), context or {}))
    return found

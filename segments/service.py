"""Keeping each profile's stage, retention cell, customer type and persuasion type
current, with their history. No HTTP here."""

import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select

from catalog import service as catalog
from profiles import service as profiles
from profiles.models import Event, Order, Profile
from segments import customer_types, membership, persuasion, retention, stages
from segments.models import Flow, Funnel, ProfileState, RetentionGrid, StateChange

logger = logging.getLogger(__name__)
# The stage reads this many of the profile's latest events; the customer type and
# the persuasion type read PROFILE_EVENTS.
STAGE_EVENTS = 200
PROFILE_EVENTS = 500


def refresh(
    session: Session,
    profile_ids: Iterable[str],
    *,
    now: datetime | None = None,
    reason: str = "new events",
) -> int:
    """Recompute the stage and the cell of these profiles (merged ones through their
    survivor), then their segments; a change is recorded with its reason. Returns
    how many stages, cells, customer types and persuasion types changed."""
    now = now or datetime.now(UTC)
    profile_ids = list(profile_ids)
    changed = 0
    done: set[str] = set()
    for profile_id in profile_ids:
        profile = profiles.get(session, profile_id)
        if profile is None or profile.id in done:
            continue
        done.add(profile.id)
        changed += _refresh_one(session, profile, now)
    membership.evaluate(session, [*profile_ids, *done], reason=reason, now=now)
    session.commit()
    return changed


def refresh_all(session: Session, *, batch: int = 500) -> int:
    """Every live profile again: time windows (a sleeper, an expired evaluation)
    move without an event, so this runs on a schedule (`cdp segments refresh`)."""
    changed, offset = 0, 0
    # The population rates persuasion types are measured against: once per run.
    persuasion.refresh_population(session)
    session.commit()
    while True:
        ids = session.exec(
            select(Profile.id).where(col(Profile.merged_into).is_(None))
            .order_by(Profile.id).offset(offset).limit(batch)
        ).all()  # fmt: skip
        if not ids:
            return changed
        changed += refresh(session, ids, reason="scheduled refresh")
        offset += batch


def _refresh_one(session: Session, profile: Profile, now: datetime) -> int:
    events = profiles.list_events(
        session, profile, limit=PROFILE_EVENTS, event_type="track"
    )
    orders = list(session.exec(select(Order).where(Order.profile_id == profile.id)))
    signals = stages.signals_of(events)
    categories = _categories_of(session, signals)
    stage = stages.classify(
        stages.signals_of(events[:STAGE_EVENTS]),
        category_of={sku: paths[0] for sku, paths in categories.items()},
        now=now,
    )
    placed = [o.placed_at for o in orders if o.status == "completed"]
    cell = retention.classify(placed, now=now)
    kind = _customer_type(signals, events, orders, categories, now)
    persuaded = _persuasion(session, profile.id, events, now)

    state = session.get(ProfileState, profile.id)
    moved = _record_moves(
        session, profile.id, _current(state), now,
        stage=(stage.stage.value, stage.reason), retention=(cell.cell, cell.reason),
        customer_type=(kind.customer_type, kind.reason),
        persuasion=(persuaded.persuasion_type, persuaded.reason),
    )  # fmt: skip
    state = state or ProfileState(profile_id=profile.id, stage=stage.stage.value)
    if "stage" in moved:
        state.stage_since = now
    if "retention" in moved:
        state.retention_since = now
    state.stage, state.stage_reason = stage.stage.value, stage.reason
    state.retention, state.retention_reason = cell.cell, cell.reason
    state.customer_type, state.customer_type_reason = kind.customer_type, kind.reason
    state.persuasion_type, state.persuasion_reason = (
        persuaded.persuasion_type, persuaded.reason
    )  # fmt: skip
    state.persuasion_evidence = [e.model_dump() for e in persuaded.evidence]
    state.updated_at = now
    session.add(state)
    return len(moved)


def _categories_of(
    session: Session, signals: list[stages.Signal]
) -> dict[str, list[str]]:
    skus = {sku for s in signals for sku in s.skus}
    return {
        sku: p.categories
        for sku, p in catalog.get_many(session, skus).items()
        if p.categories
    }


def _customer_type(
    signals: list[stages.Signal], events: list[Event], orders: list[Order],
    categories: dict[str, list[str]], now: datetime,
) -> customer_types.CustomerTypeResult:  # fmt: skip
    behaviour = customer_types.behaviour_of(
        signals, orders, discounted=customer_types.discounted_orders(events),
        categories_of=categories, now=now,
    )  # fmt: skip
    return customer_types.classify(behaviour)


def _persuasion(
    session: Session, profile_id: str, events: list[Event], now: datetime
) -> persuasion.PersuasionResult:
    tallies = persuasion.tally(events, now=now)
    persuasion.save_tallies(session, profile_id, tallies)
    return persuasion.assess(tallies, persuasion.get_population(session))


def _current(state: ProfileState | None) -> dict[str, str | None]:
    """Where the profile stood before this refresh; nowhere, for a new one."""
    if state is None:
        return {}
    return {"stage": state.stage, "retention": state.retention,
            "customer_type": state.customer_type,
            "persuasion": state.persuasion_type}  # fmt: skip


def _record_moves(
    session: Session, profile_id: str, before: dict[str, str | None], at: datetime,
    **after: tuple[str | None, str],
) -> set[str]:  # fmt: skip
    """Record each kind whose value changed, with its reason; the kinds moved."""
    moved = set()
    for kind, (value, reason) in after.items():
        if before.get(kind) != value:
            _record(session, profile_id, kind, before.get(kind), value, reason, at)
            moved.add(kind)
    return moved


def _record(
    session: Session, profile_id: str, kind: str, old: str | None, new: str | None,
    reason: str, at: datetime,
) -> None:  # fmt: skip
    session.add(
        StateChange(profile_id=profile_id, kind=kind, from_value=old, to_value=new,
                    reason=reason, at=at)
    )  # fmt: skip


def history(session: Session, profile: Profile) -> list[StateChange]:
    return list(
        session.exec(
            select(StateChange).where(StateChange.profile_id == profile.id)
            .order_by(col(StateChange.at), col(StateChange.id))
        ).all()
    )  # fmt: skip


def funnel(session: Session, *, days: int = 30) -> Funnel:
    since = datetime.now(UTC) - timedelta(days=days)
    counts = _current_counts(session, ProfileState.stage)
    ordered = {s.value: counts.get(s.value, 0) for s in stages.Stage}
    return Funnel(stages=ordered, since=since, flows=_flows(session, "stage", since))


def retention_grid(session: Session, *, days: int = 30) -> RetentionGrid:
    since = datetime.now(UTC) - timedelta(days=days)
    counts = _current_counts(session, ProfileState.retention)
    cells = {c.name: counts.get(c.name, 0) for c in retention.get_rules().cells}
    return RetentionGrid(
        cells=cells, since=since, movements=_flows(session, "retention", since)
    )


def _current_counts(session: Session, column) -> dict[str, int]:  # type: ignore[no-untyped-def]
    rows = session.exec(
        select(column, func.count())
        .join(Profile, col(Profile.id) == col(ProfileState.profile_id))
        .where(col(Profile.merged_into).is_(None))
        .group_by(column)
    ).all()  # fmt: skip
    return {value: count for value, count in rows if value is not None}


def _flows(session: Session, kind: str, since: datetime) -> list[Flow]:
    """Moves between two values in the period (first placements left out)."""
    rows = session.exec(
        select(StateChange.from_value, StateChange.to_value,
               func.count(func.distinct(StateChange.profile_id)))
        .where(StateChange.kind == kind, StateChange.at >= since,
               col(StateChange.from_value).is_not(None))
        .group_by(StateChange.from_value, StateChange.to_value)
    ).all()  # fmt: skip
    flows = [Flow(from_value=a, to_value=b, profiles=n) for a, b, n in rows]
    return sorted(flows, key=lambda f: -f.profiles)


def labels_of(session: Session, profile: Profile) -> dict[str, str | None]:
    """The profile's stage, retention cell, customer type and persuasion type now;
    empty before its first refresh."""
    state = session.get(ProfileState, profile.id)
    if state is None:
        return {}
    return {
        "stage": state.stage, "retention": state.retention,
        "customer_type": state.customer_type,
        "persuasion_type": state.persuasion_type,
    }  # fmt: skip

"""Keeping each profile's stage and retention cell current, with their history.
No HTTP here."""

import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select

from catalog import service as catalog
from profiles import service as profiles
from profiles.models import Order, Profile
from segments import retention, stages
from segments.models import Flow, Funnel, ProfileState, RetentionGrid, StateChange

logger = logging.getLogger(__name__)
# The stage reads this many of the profile's latest events.
STAGE_EVENTS = 200


def refresh(
    session: Session, profile_ids: Iterable[str], *, now: datetime | None = None
) -> int:
    """Recompute the stage and the cell of these profiles (merged ones through their
    survivor); a change is recorded with its reason. Returns how many changed."""
    now = now or datetime.now(UTC)
    changed = 0
    done: set[str] = set()
    for profile_id in profile_ids:
        profile = profiles.get(session, profile_id)
        if profile is None or profile.id in done:
            continue
        done.add(profile.id)
        changed += _refresh_one(session, profile, now)
    session.commit()
    return changed


def refresh_all(session: Session, *, batch: int = 500) -> int:
    """Every live profile again: time windows (a sleeper, an expired evaluation)
    move without an event, so this runs on a schedule (`cdp segments refresh`)."""
    changed, offset = 0, 0
    while True:
        ids = session.exec(
            select(Profile.id).where(col(Profile.merged_into).is_(None))
            .order_by(Profile.id).offset(offset).limit(batch)
        ).all()  # fmt: skip
        if not ids:
            return changed
        changed += refresh(session, ids)
        offset += batch


def _refresh_one(session: Session, profile: Profile, now: datetime) -> int:
    events = profiles.list_events(
        session, profile, limit=STAGE_EVENTS, event_type="track"
    )
    signals = stages.signals_of(events)
    skus = {sku for s in signals for sku in s.skus}
    category_of = {
        sku: p.categories[0]
        for sku, p in catalog.get_many(session, skus).items()
        if p.categories
    }
    stage = stages.classify(signals, category_of=category_of, now=now)
    placed = [
        o.placed_at
        for o in session.exec(select(Order).where(Order.profile_id == profile.id))
        if o.status == "completed"
    ]
    cell = retention.classify(placed, now=now)
    state = session.get(ProfileState, profile.id)
    first = state is None
    if state is None:
        state = ProfileState(profile_id=profile.id, stage=stage.stage.value)
    moves = 0
    if first or state.stage != stage.stage.value:
        old = None if first else state.stage
        _record(session, profile.id, "stage", old, stage.stage.value, stage.reason, now)
        state.stage_since, moves = now, moves + 1
    if (first and cell.cell is not None) or (
        not first and state.retention != cell.cell
    ):
        old = None if first else state.retention
        _record(session, profile.id, "retention", old, cell.cell, cell.reason, now)
        state.retention_since, moves = now, moves + 1
    state.stage, state.stage_reason = stage.stage.value, stage.reason
    state.retention, state.retention_reason = cell.cell, cell.reason
    state.updated_at = now
    session.add(state)
    return moves


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

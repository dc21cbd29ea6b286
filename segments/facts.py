"""What the segments test of a profile, read in one query.

Re-evaluating a profile after an event needs its columns, its recent events, its
orders, its consents, its stage and cell, its predictions, the segments it is in and
when it is next due for a recheck. Read one kind at a time, that is eight round
trips, which on PostgreSQL over loopback cost more than the evaluation itself. Here
they are one statement: the profile row joined to its state, prediction and recheck,
with the many-row facts as JSON arrays from correlated subqueries (json_agg on
PostgreSQL, json_group_array on SQLite), for one profile or a batch of thousands.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    DateTime,
    Select,
    bindparam,
    func,
    literal_column,
    select,
)
from sqlmodel import Session, col

from profiles.models import Consent, ConsentStatus, Event, Order, Profile
from profiles.service import ProfileFacts
from segments.definitions import Definitions, Facts
from segments.models import (
    ProfilePrediction,
    ProfileState,
    SegmentMember,
    SegmentRecheck,
)

LABELS = ("stage", "retention", "customer_type", "persuasion_type")


@dataclass(frozen=True)
class Snapshot:
    """A profile as the segments see it, with where it stands now."""

    profile: ProfileFacts
    facts: Facts
    segments: frozenset[str]
    recheck_due: datetime | None


def read(
    session: Session,
    profile_ids: Sequence[str],
    definitions: Definitions,
    *,
    now: datetime,
) -> dict[str, Snapshot]:
    """The snapshots of the profiles that exist among ``profile_ids``; context
    facts are not read here (see ``membership._add_context``)."""
    if not profile_ids:
        return {}
    statement = _statement(
        session.get_bind().dialect.name,
        tuple(sorted(definitions.event_names)),
        windowed=definitions.window is not None,
    )
    parameters: dict[str, Any] = {"ids": sorted(set(profile_ids))}
    if definitions.window is not None:
        parameters["since"] = now - definitions.window
    found = {}
    for row in session.execute(statement, parameters):
        profile = ProfileFacts(*row[:5])
        has_state, *labels = row[5:10]
        has_prediction, propensity, clv, recheck, *many = row[10:]
        events, orders, consents, members = many
        found[profile.id] = Snapshot(
            profile=profile,
            facts=Facts(
                now=now,
                traits=profile.traits or {},
                computed=_computed(profile, orders or [], now),
                events=_by_name(events or []),
                state=dict(zip(LABELS, labels, strict=True)) if has_state else {},
                predictions=(
                    {"propensity_30d": propensity, "clv": clv} if has_prediction else {}
                ),
                consents=_granted(consents or []),
            ),
            segments=frozenset(m["segment"] for m in members or []),
            recheck_due=aware(recheck) if recheck is not None else None,
        )
    return found


@lru_cache(maxsize=64)
def _statement(dialect: str, event_names: tuple[str, ...], *, windowed: bool) -> Select:
    """The query, built once per shape: building it costs more than running it."""
    columns = [
        Profile.id, Profile.merged_into, Profile.traits, Profile.created_at,
        Profile.last_seen_at,
        ProfileState.profile_id, *(getattr(ProfileState, label) for label in LABELS),
        ProfilePrediction.profile_id, ProfilePrediction.propensity_30d,
        ProfilePrediction.clv,
        SegmentRecheck.due_at,
        _events(dialect, list(event_names), windowed=windowed),
        _rows_of(dialect, Order, Order.placed_at, Order.total, Order.currency,
                 Order.status),
        _rows_of(dialect, Consent, Consent.purpose, Consent.status,
                 Consent.recorded_at, Consent.id),
        _rows_of(dialect, SegmentMember, SegmentMember.segment),
    ]  # fmt: skip
    return (
        select(*columns)
        .outerjoin(ProfileState, col(ProfileState.profile_id) == col(Profile.id))
        .outerjoin(
            ProfilePrediction, col(ProfilePrediction.profile_id) == col(Profile.id)
        )
        .outerjoin(SegmentRecheck, col(SegmentRecheck.profile_id) == col(Profile.id))
        .where(col(Profile.id).in_(bindparam("ids", expanding=True)))
    )


def _rows_of(dialect: str, table: type, *columns: Any) -> ColumnElement:
    """The profile's rows of ``table`` as a JSON array of objects."""
    return (
        select(_json_array(dialect, columns))
        .where(col(table.profile_id) == col(Profile.id))  # type: ignore[attr-defined]
        .scalar_subquery()
    )


def _events(dialect: str, names: list[str], *, windowed: bool) -> ColumnElement:
    columns = (Event.name, Event.timestamp, Event.properties)
    statement = select(_json_array(dialect, columns)).where(
        col(Event.profile_id) == col(Profile.id), col(Event.name).in_(names)
    )
    if windowed:
        statement = statement.where(
            col(Event.timestamp) >= bindparam("since", type_=DateTime)
        )
    return statement.scalar_subquery()


def _json_array(dialect: str, columns: Sequence[Any]) -> ColumnElement:
    pairs: list[Any] = []
    for column in columns:
        name = column.key
        value = column
        if dialect == "sqlite" and isinstance(column.type, JSON):
            value = func.json(column)  # nested, not a string of JSON
        pairs += [literal_column(f"'{name}'"), value]
    if dialect == "postgresql":
        return func.json_agg(func.json_build_object(*pairs), type_=JSON)
    return func.json_group_array(func.json_object(*pairs), type_=JSON)


def _by_name(
    events: list[dict[str, Any]],
) -> dict[str, list[tuple[datetime, dict[str, Any]]]]:
    """Event name -> (time, properties), newest first."""
    timed = sorted(
        ((aware(_time(e["timestamp"])), e) for e in events),
        key=lambda pair: pair[0],
        reverse=True,
    )
    by_name: dict[str, list[tuple[datetime, dict[str, Any]]]] = {}
    for at, event in timed:
        by_name.setdefault(event["name"], []).append((at, event["properties"] or {}))
    return by_name


def _granted(consents: list[dict[str, Any]]) -> frozenset[str]:
    """The purposes granted now: the latest decision per purpose counts."""
    latest: dict[str, str] = {}
    for consent in sorted(consents, key=lambda c: (_time(c["recorded_at"]), c["id"])):
        latest[consent["purpose"]] = consent["status"]
    granted = ConsentStatus.granted
    return frozenset(p for p, status in latest.items() if status == granted)


def _computed(
    profile: ProfileFacts, orders: list[dict[str, Any]], now: datetime
) -> dict[str, float | None]:
    completed = [o for o in orders if o["status"] == "completed"]
    revenue = float(sum(o["total"] for o in completed))
    last_order = max((aware(_time(o["placed_at"])) for o in completed), default=None)
    return {
        "order_count": float(len(completed)),
        "revenue": revenue,
        "average_order_value": revenue / len(completed) if completed else None,
        "days_since_last_order": _days(now, last_order),
        "days_since_last_seen": _days(now, profile.last_seen_at),
        "days_since_created": _days(now, profile.created_at),
    }


def _time(value: str | datetime) -> datetime:
    # PostgreSQL writes a timestamp in JSON as 2026-12-04T10:00:00.5, SQLite keeps
    # the text it was stored as, 2026-12-04 10:00:00.500000: both are ISO 8601.
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def _days(now: datetime, then: datetime | None) -> float | None:
    if then is None:
        return None
    return max((now - aware(then)).total_seconds() / 86400, 0.0)


def aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)

"""Who is in which segment: kept current on every event, on time windows running
out, and by a full recompute; every entry and exit is kept. No HTTP here."""

import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from context import service as context_data
from core import db
from core.settings import get_settings
from profiles.models import Profile
from profiles.service import ProfileFacts
from segments import facts
from segments.definitions import (
    Definitions,
    Facts,
    InvalidSegmentsError,
    PredictionCondition,
    Segment,
    parse,
    walk,
)
from segments.errors import SegmentNotFoundError
from segments.models import (
    SegmentChange,
    SegmentMember,
    SegmentRecheck,
)

logger = logging.getLogger(__name__)
_loaded: dict[Path, tuple[float, Definitions]] = {}
_refused: dict[Path, tuple[float, InvalidSegmentsError]] = {}  # read once per edit
_lock = threading.Lock()


def get_definitions(path: Path | None = None) -> Definitions:
    """The segments in force. An edited file is read again; an edit with a mistake
    is logged once and the last good definitions stay in force. With no good
    version since the process started, ``InvalidSegmentsError`` is raised."""
    path = path or get_settings().segments.definitions_path
    mtime = path.stat().st_mtime
    with _lock:
        cached = _loaded.get(path)
        if cached and cached[0] == mtime:
            return cached[1]
        refused = _refused.get(path)
        if refused and refused[0] == mtime:
            if cached is None:
                raise refused[1]
            return cached[1]
        try:
            definitions = parse(path.read_text(encoding="utf-8"), name=path.name)
        except InvalidSegmentsError as exc:
            _refused[path] = (mtime, exc)
            logger.error(
                "segment file has mistakes; the last good one stays in force"
                if cached
                else "segment file has mistakes; no segment is evaluated until "
                "it is fixed, and the profiles wait for it",
                extra={"problems": exc.problems},
            )
            if cached is None:
                raise
            return cached[1]
        _refused.pop(path, None)
        _loaded[path] = (mtime, definitions)
        logger.info("segments loaded", extra={"segments": len(definitions.segments)})
        return definitions


@dataclass(frozen=True)
class Moves:
    entered: int = 0
    exited: int = 0

    def __add__(self, other: "Moves") -> "Moves":
        return Moves(self.entered + other.entered, self.exited + other.exited)


def evaluate(
    session: Session,
    profile_ids: Iterable[str],
    *,
    reason: str,
    now: datetime | None = None,
    definitions: Definitions | None = None,
) -> Moves:
    """Test these profiles against every segment and record who entered and who
    left, saying ``reason``. A profile merged into another leaves all its segments.
    The caller commits."""
    now = now or datetime.now(UTC)
    if definitions is None:
        try:
            definitions = get_definitions()
        except InvalidSegmentsError:
            _wait_for_a_good_file(session, profile_ids, now)
            return Moves()
    found = facts.read(session, sorted(set(profile_ids)), definitions, now=now)
    _add_context(session, found, definitions, now)
    known = {s.name for s in definitions.segments}
    changes = _Changes(reason=reason, now=now)
    for profile_id, snapshot in sorted(found.items()):
        was = set(snapshot.segments)
        changes.stored[profile_id] = snapshot.recheck_due
        merged_into = snapshot.profile.merged_into
        if merged_into is not None:
            changes.move(profile_id, set(), was, f"merged into {merged_into}")
            changes.recheck[profile_id] = None
            continue
        fact = snapshot.facts
        inside = {s.name for s in definitions.segments if s.test(fact)}
        was &= known  # a segment no longer defined is emptied by a recompute
        changes.move(profile_id, inside - was, was - inside)
        changes.recheck[profile_id] = min(
            (t for t in fact.changes if t > now), default=None
        )
    return changes.write(session)


def _wait_for_a_good_file(
    session: Session, profile_ids: Iterable[str], now: datetime
) -> None:
    """The segment file has had mistakes since this process started: these
    profiles are due for a recheck, so that the sweep tests them once it is fixed.
    Their events are stored; only their memberships wait."""
    rows = [{"profile_id": p, "due_at": now} for p in sorted(set(profile_ids))]
    if rows:
        session.execute(db.upsert(session, SegmentRecheck.__table__), rows)


@dataclass
class _Changes:
    """Entries, exits and recheck times of a batch, written in a few statements."""

    reason: str
    now: datetime
    entered: list[dict] = field(default_factory=list)
    exited: dict[str, set[str]] = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    recheck: dict[str, datetime | None] = field(default_factory=dict)
    stored: dict[str, datetime | None] = field(default_factory=dict)  # read before

    def move(
        self, profile_id: str, entered: set[str], exited: set[str], reason: str = ""
    ) -> None:
        for segment in sorted(entered):
            self.entered.append(
                {"segment": segment, "profile_id": profile_id, "entered_at": self.now}
            )
        if exited:
            self.exited[profile_id] = exited
        for segment, inside in [*((s, True) for s in sorted(entered)),
                                *((s, False) for s in sorted(exited))]:  # fmt: skip
            self.history.append({
                "segment": segment, "profile_id": profile_id, "entered": inside,
                "reason": reason or self.reason, "at": self.now,
            })  # fmt: skip

    def write(self, session: Session) -> Moves:
        for profile_id, segments in self.exited.items():
            session.execute(
                delete(SegmentMember).where(
                    col(SegmentMember.profile_id) == profile_id,
                    col(SegmentMember.segment).in_(sorted(segments)),
                )
            )
        db.insert_rows(session, SegmentMember.__table__, self.entered)
        db.insert_rows(session, SegmentChange.__table__, self.history)
        self._write_rechecks(session)
        return Moves(len(self.entered), sum(len(s) for s in self.exited.values()))

    def _write_rechecks(self, session: Session) -> None:
        changed = [p for p, due in self.recheck.items() if self.stored.get(p) != due]
        cleared = sorted(p for p in changed if self.recheck[p] is None)
        if cleared:
            session.execute(
                delete(SegmentRecheck).where(
                    col(SegmentRecheck.profile_id).in_(cleared)
                )
            )
        due = [
            {"profile_id": p, "due_at": self.recheck[p]}
            for p in sorted(changed)
            if self.recheck[p] is not None
        ]
        if due:
            session.execute(db.upsert(session, SegmentRecheck.__table__), due)


def recheck_due(
    session: Session, *, now: datetime | None = None, limit: int = 500
) -> Moves:
    """Re-evaluate the profiles whose time windows ran out; the worker calls this
    every few seconds. Returns the moves, committed."""
    now = now or datetime.now(UTC)
    due = session.exec(
        select(SegmentRecheck.profile_id).where(SegmentRecheck.due_at <= now)
        .order_by(col(SegmentRecheck.due_at)).limit(limit)
    ).all()  # fmt: skip
    if not due:
        return Moves()
    moves = evaluate(session, due, reason="a time window passed", now=now)
    session.commit()
    return moves


def recompute_all(session: Session, *, batch: int = 5000) -> Moves:
    """Every live profile against every segment, in batches, each committed; also
    empties the segments that are no longer defined."""
    now = datetime.now(UTC)
    definitions = get_definitions()
    moves = _drop_undefined(session, definitions, now)
    last = ""
    while True:
        live = col(Profile.merged_into).is_(None)
        ids = session.exec(
            select(Profile.id).where(live, Profile.id > last)
            .order_by(Profile.id).limit(batch)
        ).all()  # fmt: skip
        if not ids:
            return moves
        moves += evaluate(
            session, ids, reason="full recompute", now=now, definitions=definitions
        )
        session.commit()
        session.expunge_all()  # a long run should not hold every profile in memory
        last = ids[-1]


def tests_predictions() -> bool:
    """Whether any segment in force has a prediction condition."""
    try:
        segments = get_definitions().segments
    except InvalidSegmentsError:
        return False  # none is evaluated until the file is fixed
    return any(
        isinstance(c, PredictionCondition) for s in segments for c in walk(s.when)
    )


def load_facts(
    session: Session,
    rows: Sequence[ProfileFacts],
    definitions: Definitions,
    *,
    now: datetime,
) -> dict[str, Facts]:
    """What the segments test, for many profiles, in one query."""
    found = facts.read(session, [p.id for p in rows], definitions, now=now)
    _add_context(session, found, definitions, now)
    return {p.id: found[p.id].facts for p in rows if p.id in found}


def _add_context(
    session: Session,
    found: dict[str, facts.Snapshot],
    definitions: Definitions,
    now: datetime,
) -> None:
    """Context snapshots, only when a segment tests one, and only the kinds of
    facts tested; with when weather and traffic are next asked for again."""
    if not definitions.context_facts or not found:
        return
    snapshots = context_data.snapshots(
        session, sorted(found), now=now, facts=definitions.context_facts
    )
    settings = get_settings().context
    changes = {
        "weather": now + timedelta(seconds=settings.weather_seconds),
        "traffic": now + timedelta(seconds=settings.traffic_seconds),
    }
    for profile_id, snapshot in found.items():
        snapshot.facts.context = snapshots.get(profile_id, {})
        snapshot.facts.context_changes = changes


def list_segments(session: Session) -> list[tuple[str, str, int]]:
    """(name, description, members) of every defined segment."""
    counts = dict(
        session.exec(
            select(SegmentMember.segment, func.count()).group_by(SegmentMember.segment)
        ).all()
    )
    return [
        (s.name, s.description, counts.get(s.name, 0))
        for s in get_definitions().segments
    ]


def get_or_raise(name: str) -> Segment:
    segments = get_definitions().by_name()
    if name not in segments:
        raise SegmentNotFoundError(
            f"no segment {name!r}; defined: {', '.join(sorted(segments)) or 'none'}",
            loc=["path", "name"],
        )
    return segments[name]


def list_members(
    session: Session, segment: str, *, after: str | None = None, limit: int = 100
) -> tuple[int, list[SegmentMember]]:
    """The total, and a page of members ordered by profile id after ``after``."""
    total = session.exec(
        select(func.count()).where(SegmentMember.segment == segment)
    ).one()
    statement = select(SegmentMember).where(SegmentMember.segment == segment)
    if after:
        statement = statement.where(SegmentMember.profile_id > after)
    page = session.exec(statement.order_by(SegmentMember.profile_id).limit(limit))
    return int(total), list(page.all())


def list_member_ids(session: Session, segment: str) -> set[str]:
    statement = select(SegmentMember.profile_id).where(SegmentMember.segment == segment)
    return set(session.exec(statement).all())


def segments_of(session: Session, profile: Profile) -> list[SegmentMember]:
    statement = select(SegmentMember).where(SegmentMember.profile_id == profile.id)
    return list(session.exec(statement.order_by(SegmentMember.segment)).all())


def history_of(
    session: Session, profile: Profile, *, limit: int = 200
) -> list[SegmentChange]:
    statement = select(SegmentChange).where(SegmentChange.profile_id == profile.id)
    statement = statement.order_by(
        col(SegmentChange.at).desc(), col(SegmentChange.id).desc()
    )
    return list(session.exec(statement.limit(limit)).all())


def movements(
    session: Session, segment: str, *, since: datetime
) -> list[SegmentChange]:
    """Who entered and left the segment since then, newest first."""
    statement = select(SegmentChange).where(
        SegmentChange.segment == segment, SegmentChange.at >= since
    )
    return list(session.exec(statement.order_by(col(SegmentChange.at).desc())).all())


def _drop_undefined(session: Session, definitions: Definitions, now: datetime) -> Moves:
    known = [s.name for s in definitions.segments]
    gone = session.exec(
        select(SegmentMember).where(col(SegmentMember.segment).not_in(known))
    ).all()
    for member in gone:
        session.add(
            SegmentChange(segment=member.segment, profile_id=member.profile_id,
                          entered=False, reason="segment removed", at=now)
        )  # fmt: skip
        session.delete(member)
    session.commit()
    return Moves(0, len(gone))

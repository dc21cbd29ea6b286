"""Where each profile stands now, and every move it made: the history behind the
acquisition funnel and the retention grid's movements."""

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class ProfileState(SQLModel, table=True):
    """The current buying stage and retention cell, with the reason for each."""

    __tablename__ = "profile_state"

    profile_id: str = Field(primary_key=True, foreign_key="profile.id")
    stage: str = Field(index=True)
    stage_reason: str = ""
    stage_since: datetime = Field(default_factory=utcnow)
    retention: str | None = Field(default=None, index=True)
    retention_reason: str = ""
    retention_since: datetime = Field(default_factory=utcnow)
    customer_type: str | None = Field(default=None, index=True)
    customer_type_reason: str = ""
    persuasion_type: str | None = Field(default=None, index=True)
    persuasion_reason: str = ""
    # Per cue: exposures, responses, the estimate and the population rate.
    persuasion_evidence: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON)
    )
    updated_at: datetime = Field(default_factory=utcnow)


class StateChange(SQLModel, table=True):
    """One move: into a stage or a retention cell (from None for the first)."""

    __tablename__ = "state_change"
    __table_args__ = (Index("ix_state_change_kind_at", "kind", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    profile_id: str = Field(index=True, foreign_key="profile.id")
    kind: str  # stage, retention, customer_type or persuasion
    from_value: str | None = None
    to_value: str | None = None
    reason: str = ""
    at: datetime = Field(default_factory=utcnow)


class PersuasionTally(SQLModel, table=True):
    """A profile's exposures to content carrying one cue, and how many it answered."""

    __tablename__ = "persuasion_tally"

    profile_id: str = Field(primary_key=True, foreign_key="profile.id")
    cue: str = Field(primary_key=True)
    exposures: int = 0
    responses: int = 0


class PersuasionPopulation(SQLModel, table=True):
    """Every live profile's tallies summed per cue: the prior's source, recomputed
    on schedule (`cdp segments refresh`). Counts only, nobody's own."""

    __tablename__ = "persuasion_population"

    cue: str = Field(primary_key=True)
    exposures: int = 0
    responses: int = 0
    profiles: int = 0
    computed_at: datetime = Field(default_factory=utcnow)


class CueEvidence(BaseModel):
    """What one cue's estimate rests on; the estimates are None when the population
    has too few exposures to give a prior."""

    cue: str
    exposures: int
    responses: int
    posterior_mean: float | None = None
    population_rate: float | None = None
    probability_above: float | None = None


class StatePublic(BaseModel):
    stage: str
    stage_reason: str
    stage_since: datetime
    retention: str | None
    retention_reason: str
    retention_since: datetime
    customer_type: str | None = None
    customer_type_reason: str = ""
    persuasion_type: str | None = None
    persuasion_reason: str = ""
    persuasion_evidence: list[CueEvidence] = []


class ChangePublic(BaseModel):
    kind: str
    from_value: str | None
    to_value: str | None
    reason: str
    at: datetime


class ProfileStateReport(BaseModel):
    profile_id: str
    state: StatePublic
    history: list[ChangePublic]


class Flow(BaseModel):
    from_value: str | None
    to_value: str | None
    profiles: int


class Funnel(BaseModel):
    """Profiles per stage now, and the moves between stages in the period."""

    stages: dict[str, int]
    since: datetime
    flows: list[Flow]


class RetentionGrid(BaseModel):
    cells: dict[str, int]
    since: datetime
    movements: list[Flow]


class SegmentMember(SQLModel, table=True):
    """A profile in a segment now; the row goes when it leaves."""

    __tablename__ = "segment_member"

    segment: str = Field(primary_key=True)
    profile_id: str = Field(primary_key=True, foreign_key="profile.id", index=True)
    entered_at: datetime = Field(default_factory=utcnow)


class SegmentChange(SQLModel, table=True):
    """Membership history: every entry and exit, with why."""

    __tablename__ = "segment_change"
    __table_args__ = (Index("ix_segment_change_segment_at", "segment", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    segment: str
    profile_id: str = Field(index=True, foreign_key="profile.id")
    entered: bool
    reason: str = ""  # what moved it: an event, time passing, a recompute, a merge
    at: datetime = Field(default_factory=utcnow)


class SegmentRecheck(SQLModel, table=True):
    """When a profile's memberships change by time alone (an event leaves its
    window): the worker re-evaluates it then, and nobody else."""

    __tablename__ = "segment_recheck"

    profile_id: str = Field(primary_key=True, foreign_key="profile.id")
    due_at: datetime = Field(index=True)


class SegmentPublic(BaseModel):
    name: str
    description: str
    members: int


class SegmentMemberPublic(BaseModel):
    profile_id: str
    entered_at: datetime


class SegmentMembers(BaseModel):
    segment: str
    total: int
    items: list[SegmentMemberPublic]
    next_cursor: str | None = None


class SegmentChangePublic(BaseModel):
    segment: str
    entered: bool
    reason: str
    at: datetime


class SegmentMovement(SegmentChangePublic):
    profile_id: str


class MembershipPublic(BaseModel):
    segment: str
    entered_at: datetime


class ProfileSegments(BaseModel):
    profile_id: str
    segments: list[MembershipPublic]
    history: list[SegmentChangePublic]


class ProfilePrediction(SQLModel, table=True):
    """The latest predictions for a profile (`cdp segments predict`), each with what
    it rests on."""

    __tablename__ = "profile_prediction"

    profile_id: str = Field(primary_key=True, foreign_key="profile.id")
    # The chance of a completed order in the 30 days after computed_at.
    propensity_30d: float | None = Field(default=None, index=True)
    # Expected spend in the clv_days after computed_at, in currency.
    clv: float | None = None
    clv_days: int = 365
    currency: str | None = None
    prediction_reason: str = ""
    # When the profile is most active: hour 0-23 and weekday 0 (Monday) to 6, in
    # contact_timezone.
    best_hour: int | None = None
    best_weekday: int | None = None
    contact_timezone: str = "UTC"
    contact_reason: str = ""
    model_version: str = ""
    computed_at: datetime = Field(default_factory=utcnow)


class PredictionPublic(BaseModel):
    profile_id: str
    propensity_30d: float | None
    clv: float | None
    clv_days: int
    currency: str | None
    prediction_reason: str
    best_hour: int | None
    best_weekday: int | None
    contact_timezone: str
    contact_reason: str
    model_version: str
    computed_at: datetime

"""Where each profile stands now, and every move it made: the history behind the
acquisition funnel and the retention grid's movements."""

from datetime import UTC, datetime

from pydantic import BaseModel
from sqlalchemy import Index
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
    updated_at: datetime = Field(default_factory=utcnow)


class StateChange(SQLModel, table=True):
    """One move: into a stage or a retention cell (from None for the first)."""

    __tablename__ = "state_change"
    __table_args__ = (Index("ix_state_change_kind_at", "kind", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    profile_id: str = Field(index=True, foreign_key="profile.id")
    kind: str  # stage or retention
    from_value: str | None = None
    to_value: str | None = None
    reason: str = ""
    at: datetime = Field(default_factory=utcnow)


class StatePublic(BaseModel):
    stage: str
    stage_reason: str
    stage_since: datetime
    retention: str | None
    retention_reason: str
    retention_since: datetime


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

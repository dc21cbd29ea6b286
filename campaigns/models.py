"""Campaign tables (impressions, outcomes, skipped messages, suppression lists) and
API schemas."""

from datetime import UTC, datetime

from pydantic import BaseModel
from pydantic import Field as PydanticField
from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class CampaignImpression(SQLModel, table=True):
    """One delivery of a campaign to a profile, or one hold-out (``control``): the
    control group's members are recorded too, so that uplift can be measured."""

    __table_args__ = (
        Index("ix_campaignimpression_profile_at", "profile_id", "channel", "at"),
    )

    # The client's impression id when it gave one (a page view's id), so asking
    # again records nothing new; otherwise a new random id.
    id: str = Field(primary_key=True, max_length=64)
    campaign: str = Field(index=True)
    variant: str | None = None
    profile_id: str = Field(index=True)
    channel: str
    placement: str
    control: bool = False
    cues: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    at: datetime = Field(default_factory=utcnow)


class CampaignOutcome(SQLModel, table=True):
    """A click on, or an order attributed to, an impression; read from the profile's
    events and stored once (``ref`` is the click's impression or the order id)."""

    __table_args__ = (UniqueConstraint("impression_id", "kind", "ref"),)

    id: int | None = Field(default=None, primary_key=True)
    impression_id: str = Field(foreign_key="campaignimpression.id", index=True)
    campaign: str = Field(index=True)
    kind: str  # click, conversion
    ref: str
    revenue: float = 0.0
    at: datetime


class CampaignSkip(SQLModel, table=True):
    """A message not delivered because its template failed for this profile."""

    id: int | None = Field(default=None, primary_key=True)
    campaign: str = Field(index=True)
    variant: str
    profile_id: str
    reason: str
    at: datetime = Field(default_factory=utcnow)


class SuppressionEntry(SQLModel, table=True):
    """A profile on a named suppression list (do-not-contact, complaints, staff)."""

    list_name: str = Field(primary_key=True)
    profile_id: str = Field(primary_key=True)
    added_at: datetime = Field(default_factory=utcnow)


# API schemas --------------------------------------------------------------------


class Stop(BaseModel):
    campaign: str
    reason: str


class Personalisation(BaseModel):
    slot: str
    campaign: str | None = None
    variant: str | None = None
    impression_id: str | None = PydanticField(
        default=None,
        description="send it as promotion_id and content_id with Promotion Clicked",
    )
    control: bool = PydanticField(
        default=False, description="held out to measure uplift: nothing is shown"
    )
    html: str | None = None
    cues: list[str] = []
    stopped: list[Stop] = PydanticField(
        default=[], description="campaigns for this slot that did not deliver, and why"
    )


class CampaignPublic(BaseModel):
    id: str | None
    file: str
    name: str | None = None
    status: str | None = None
    kind: str | None = None
    slot: str | None = None
    running: bool = False
    variants: list[str] = []
    problems: list[str] = PydanticField(
        default=[],
        description="mistakes in the file now; a campaign that loaded before keeps "
        "its last good version running",
    )


class Uplift(BaseModel):
    treated_rate: float
    control_rate: float
    difference: float
    low: float
    high: float
    method: str = "Wald interval for a difference of two proportions, 95%"


class VariantResult(BaseModel):
    variant: str
    impressions: int
    profiles: int
    clicks: int
    conversions: int
    revenue: float


class CampaignResults(BaseModel):
    campaign: str
    impressions: int
    profiles: int
    control_profiles: int
    clicks: int
    conversions: int
    revenue: float
    variants: list[VariantResult]
    uplift: Uplift | None = PydanticField(
        default=None, description="None until both groups have profiles"
    )
    render_errors: list[str] = []

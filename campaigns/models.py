"""Campaign tables (impressions, outcomes, skipped messages, suppression lists) and
API schemas."""

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from pydantic import Field as PydanticField
from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

# The context facts campaigns learn from and report by.
CONTEXT_FACTS = ("device", "daypart", "weather_band")


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
    # The person's context at the time (see context.service): results are broken
    # down by it, and the bandit learns per context.
    device: str | None = None
    daypart: str | None = None
    weather_band: str | None = None

    @classmethod
    def of_send(
        cls, send: "CampaignSend", at: datetime, *, control: bool = False
    ) -> "CampaignImpression":
        """A message delivered (or held out): its id is the send's."""
        context = send.payload.get("context") or {}
        return cls(
            id=send.id, campaign=send.campaign, variant=send.variant,
            profile_id=send.profile_id, channel=send.channel,
            placement=send.channel, control=control, cues=send.cues, at=at,
            **{k: context.get(k) for k in CONTEXT_FACTS},
        )  # fmt: skip


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


class CampaignJourney(SQLModel, table=True):
    """One profile's way through a hybrid campaign: entered on a trigger, then one
    step after another until it is done or exits (a check did not hold, the rules
    stopped holding, a branch said exit)."""

    __table_args__ = (
        UniqueConstraint("campaign", "profile_id", "key"),
        Index("ix_campaignjourney_status_due", "status", "due_at"),
    )

    id: str = Field(primary_key=True, max_length=32)
    campaign: str = Field(index=True)
    profile_id: str = Field(index=True)
    # The trigger's occurrence (see campaigns.triggers): one journey per key.
    key: str = Field(max_length=200)
    status: str = "active"  # active, done, exited
    # The next step to run, and when.
    step: int = 0
    due_at: datetime
    entered_at: datetime
    # Held out to measure uplift: it runs every step, and its sends deliver nothing.
    control: bool = False
    # The trigger's products and detail, and why the journey ended.
    skus: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    detail: str = ""
    reason: str = ""
    # A step whose send was put off (quiet hours, active hours, a frequency cap)
    # once already, so that it is not put off again for the same reason.
    deferred: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))


class CampaignWatch(SQLModel, table=True):
    """When to test a profile's trigger again with no new event (a cart going
    quiet, days since the last order growing)."""

    campaign: str = Field(primary_key=True)
    profile_id: str = Field(primary_key=True)
    due_at: datetime = Field(index=True)


class CampaignSend(SQLModel, table=True):
    """A message a journey step sends: written in the same transaction that moves
    the journey past the step, with an id made of the journey and the step, so a
    restarted worker delivers what is pending and never writes a send twice."""

    __table_args__ = (
        Index("ix_campaignsend_status_next", "status", "next_attempt_at"),
    )

    id: str = Field(primary_key=True, max_length=64)
    journey_id: str = Field(index=True)
    campaign: str = Field(index=True)
    variant: str | None = None
    profile_id: str = Field(index=True)
    channel: str
    # pending, sent, failed (gave up), stopped (a guard), control (held out)
    status: str = "pending"
    reason: str = ""
    # What is delivered: the address, subject, HTML and text, or the JSON body.
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    cues: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None


class CampaignCursor(SQLModel, table=True):
    """How far the campaigns worker has read a stream of changes (catalog)."""

    name: str = Field(primary_key=True)
    # A change id read up to (catalog), or a profile id swept up to (audience).
    value: int = 0
    mark: str = ""


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
    method: str = (
        "Newcombe hybrid score interval for a difference of two proportions, 95%"
    )


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
    by_context: dict[str, list["ContextResult"]] = PydanticField(
        default={},
        description="per context fact (device, daypart, weather_band): treated "
        "impressions, clicks and conversions for each value",
    )
    journeys: dict[str, int] = PydanticField(
        default={}, description="hybrid campaigns: journeys by status"
    )
    sends: dict[str, int] = PydanticField(
        default={},
        description="hybrid campaigns: messages by status (pending, sent, failed, "
        "stopped by a guard, control)",
    )


class ContextResult(BaseModel):
    value: str = PydanticField(description="unknown where the fact was not known")
    impressions: int
    clicks: int
    conversions: int
    click_rate: float
    conversion_rate: float


class SendPublic(BaseModel):
    id: str
    step: int
    channel: str
    variant: str | None
    status: str
    reason: str
    attempts: int
    created_at: datetime
    sent_at: datetime | None


class JourneyPublic(BaseModel):
    id: str
    profile_id: str
    status: str
    detail: str = PydanticField(description="what the trigger saw")
    reason: str = PydanticField(description="why it ended")
    step: int = PydanticField(description="the next step to run (0-based)")
    due_at: datetime
    entered_at: datetime
    control: bool
    products: list[str]
    sends: list[SendPublic]

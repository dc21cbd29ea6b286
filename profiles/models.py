"""Profile store tables and API schemas."""

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel
from pydantic import Field as PydanticField
from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


class IdentityType(StrEnum):
    email = "email"
    phone = "phone"
    customer_id = "customer_id"
    anonymous_id = "anonymous_id"
    device_id = "device_id"
    whatsapp_id = "whatsapp_id"
    messenger_id = "messenger_id"
    # Another system's id, as "type:id" (Segment's context.externalIds).
    external_id = "external_id"


class Profile(SQLModel, table=True):
    id: str = Field(default_factory=new_id, primary_key=True)
    traits: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    # When each trait was last set (event time), so a late event cannot overwrite a
    # newer value.
    trait_times: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON))
    # The source that set each trait, and for most_frequent traits how often each
    # value was seen: what the survivorship rules decide on.
    trait_sources: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON))
    trait_counts: dict[str, dict[str, int]] = Field(
        default_factory=dict, sa_column=Column(JSON)
    )
    # Set when this profile was merged into another; reads follow the pointer.
    merged_into: str | None = Field(default=None, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime | None = None


class Identity(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("type", "value"),)

    id: int | None = Field(default=None, primary_key=True)
    profile_id: str = Field(foreign_key="profile.id", index=True)
    type: str
    value: str
    source: str = ""
    created_at: datetime = Field(default_factory=utcnow)


class Event(SQLModel, table=True):
    """Something a profile did, as the tracking API received it."""

    # The timeline query: one profile's events, newest first.
    __table_args__ = (Index("ix_event_profile_time", "profile_id", "timestamp"),)

    id: int | None = Field(default=None, primary_key=True)
    # The sender's id (Segment's messageId); a retried delivery is stored once.
    message_id: str = Field(unique=True)
    profile_id: str = Field(foreign_key="profile.id", index=True)
    type: str  # track, page, screen, identify, group, alias
    name: str | None = Field(default=None, index=True)
    properties: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    context: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    source: str = ""
    timestamp: datetime = Field(index=True)  # when it happened (clock-corrected)
    received_at: datetime = Field(default_factory=utcnow)
    # The identifiers it arrived with ("type:value"), so an unmerge knows whose it is.
    identity_keys: list[str] = Field(default_factory=list, sa_column=Column(JSON))


class Order(SQLModel, table=True):
    """An order as the profile's events describe it (Segment e-commerce spec)."""

    __table_args__ = (UniqueConstraint("source", "order_id"),)

    id: int | None = Field(default=None, primary_key=True)
    profile_id: str = Field(foreign_key="profile.id", index=True)
    order_id: str
    source: str = ""
    status: str = "completed"  # completed, refunded, cancelled
    total: float = 0.0
    currency: str = "USD"
    products: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    placed_at: datetime
    # Event time of the last change, so a late event cannot undo a newer one.
    changed_at: datetime


class LedgerAction(StrEnum):
    linked = "linked"  # an identifier was attached to the profile
    merged = "merged"  # another profile was folded into this one
    refused_blocked = "refused_blocked"  # a junk value, used for nothing
    refused_unique = "refused_unique"  # would give the profile two of a unique type
    refused_limit = "refused_limit"  # the profile has as many of the type as allowed
    unmerged = "unmerged"  # a merge was undone
    refused_source = "refused_source"  # a source the rules do not trust to join


class LedgerEntry(SQLModel, table=True):
    """Append-only record of why identifiers belong to a profile, and of what was
    refused, with its evidence: rule, identifier, source, triggering event, time."""

    __tablename__ = "identity_ledger"

    id: int | None = Field(default=None, primary_key=True)
    profile_id: str = Field(index=True)
    action: LedgerAction
    identity_type: str | None = None
    identity_value: str | None = None
    other_profile_id: str | None = None
    rule: str = ""
    source: str = ""
    message_id: str | None = None
    at: datetime = Field(default_factory=utcnow)
    # For a merge: what moved and the traits before, so it can be undone.
    undo: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))


class LedgerEntryPublic(BaseModel):
    action: LedgerAction
    identity_type: str | None
    identity_value: str | None
    other_profile_id: str | None
    rule: str
    source: str
    message_id: str | None
    at: datetime


class IdentityExplanation(BaseModel):
    profile_id: str
    identities: list["IdentityPublic"]
    ledger: list[LedgerEntryPublic]


class UnmergeRequest(BaseModel):
    other_profile_id: str


class UnmergeResult(BaseModel):
    profile_id: str
    restored_profile_id: str
    identities: int
    events: int
    orders: int


class ConsentStatus(StrEnum):
    granted = "granted"
    denied = "denied"
    withdrawn = "withdrawn"


class LawfulBasis(StrEnum):
    """GDPR Article 6(1) bases a shop may rely on."""

    consent = "consent"
    contract = "contract"
    legal_obligation = "legal_obligation"
    vital_interests = "vital_interests"
    public_task = "public_task"
    legitimate_interests = "legitimate_interests"


class Consent(SQLModel, table=True):
    """One consent decision; append-only, the latest per purpose is in force."""

    id: int | None = Field(default=None, primary_key=True)
    profile_id: str = Field(foreign_key="profile.id", index=True)
    purpose: str = Field(index=True)  # e.g. email_marketing, whatsapp_marketing
    status: ConsentStatus
    lawful_basis: LawfulBasis = LawfulBasis.consent
    source: str = ""  # where it was given: web form, chat, CRM import
    version: str = ""  # of the text the person agreed to
    recorded_at: datetime = Field(default_factory=utcnow)


class ConsentCreate(BaseModel):
    purpose: str = PydanticField(pattern=r"^[a-z][a-z0-9_]{1,63}$")
    status: ConsentStatus
    lawful_basis: LawfulBasis = LawfulBasis.consent
    source: str = PydanticField(default="", max_length=128)
    version: str = PydanticField(default="", max_length=64)


class ConsentPublic(BaseModel):
    purpose: str
    status: ConsentStatus
    lawful_basis: LawfulBasis
    source: str
    version: str
    recorded_at: datetime


class TraitsUpdate(BaseModel):
    """Trait operations, applied in this order: set, set_once (only where absent),
    unset."""

    set: dict[str, Any] = {}
    set_once: dict[str, Any] = {}
    unset: list[str] = []


class ComputedTraits(BaseModel):
    event_count: int
    order_count: int
    revenue: float
    average_order_value: float | None
    currency: str | None
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    last_order_at: datetime | None
    favourite_categories: list[str]
    channels_used: list[str]
    # Sizes in the profile's completed orders, with how many items of each.
    sizes_bought: dict[str, int] = {}


class DeletionReport(BaseModel):
    profiles: int
    identities: int
    events: int
    orders: int
    consents: int


class OrderPublic(BaseModel):
    order_id: str
    source: str
    status: str
    total: float
    currency: str
    products: list[dict[str, Any]]
    placed_at: datetime


class IdentityPublic(BaseModel):
    type: str
    value: str
    source: str
    created_at: datetime


class EventPublic(BaseModel):
    message_id: str
    type: str
    name: str | None
    properties: dict[str, Any]
    context: dict[str, Any]
    source: str
    timestamp: datetime
    received_at: datetime


class ProfilePublic(BaseModel):
    id: str
    traits: dict[str, Any]
    computed: ComputedTraits
    consents: list[ConsentPublic]
    identities: list[IdentityPublic]
    event_count: int
    orders: list[OrderPublic]
    recent_events: list[EventPublic]
    created_at: datetime
    updated_at: datetime
    last_seen_at: datetime | None


class EventPage(BaseModel):
    items: list[EventPublic]
    # Pass as ``offset`` to read the next (older) page; null on the last page.
    next_offset: int | None


class MatchStatus(StrEnum):
    pending = "pending"
    approved = "approved"
    rejected = "rejected"


class MatchSuggestion(SQLModel, table=True):
    """Two profiles that probabilistic matching thinks may be one person. Nothing is
    merged until someone approves; a rejected pair is never suggested again."""

    __tablename__ = "match_suggestion"
    __table_args__ = (UniqueConstraint("profile_a", "profile_b"),)

    id: int | None = Field(default=None, primary_key=True)
    # Canonical order (profile_a < profile_b), so a pair has one row.
    profile_a: str = Field(foreign_key="profile.id", index=True)
    profile_b: str = Field(foreign_key="profile.id", index=True)
    score: float = Field(index=True)
    # Field name to similarity (0..1), for the fields that agreed.
    fields: dict[str, float] = Field(default_factory=dict, sa_column=Column(JSON))
    status: str = Field(default=MatchStatus.pending.value, index=True)
    survivor_id: str | None = None  # set on approval
    created_at: datetime = Field(default_factory=utcnow)
    decided_at: datetime | None = None


class MatchProfileSummary(BaseModel):
    """What a reviewer needs to see of one side of a pair."""

    id: str
    traits: dict[str, Any]
    emails: list[str]
    phones: list[str]


class MatchSuggestionPublic(BaseModel):
    id: int
    score: float
    fields: dict[str, float]
    status: MatchStatus
    survivor_id: str | None
    profiles: list[MatchProfileSummary]
    created_at: datetime
    decided_at: datetime | None


class MatchRunPublic(BaseModel):
    profiles: int  # live (not merged) profiles compared
    candidate_pairs: int  # pairs that shared a blocking key
    suggested: int  # pairs at or above the threshold
    created: int  # new pending suggestions
    updated: int  # pending suggestions re-scored
    skipped_decided: int  # approved or rejected before: left alone

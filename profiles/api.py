"""Profile routes: thin wrappers over profiles.service."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from sqlmodel import Session

from core.auth import AdminOnly
from core.db import get_read_session, get_session
from events.models import MessageType
from profiles import cache, computed, service
from profiles.identity import parse_ref
from profiles.models import (
    ConsentCreate,
    ConsentPublic,
    DeletionReport,
    EventPage,
    EventPublic,
    IdentityExplanation,
    IdentityPublic,
    LedgerEntryPublic,
    OrderPublic,
    Profile,
    ProfilePublic,
    TraitsUpdate,
    UnmergeRequest,
    UnmergeResult,
)
from segments import service as segments

router = APIRouter(prefix="/v1/profiles", tags=["profiles"], dependencies=[AdminOnly])
SessionDep = Annotated[Session, Depends(get_session)]
ReadSessionDep = Annotated[Session, Depends(get_read_session)]


def to_public(session: Session, profile: Profile) -> ProfilePublic:
    identities = service.list_identities(session, profile)
    recent = service.list_events(session, profile, limit=10)
    orders = service.list_orders(session, profile)
    traits = computed.compute(session, profile, orders)
    return ProfilePublic(
        id=profile.id,
        traits=profile.traits,
        computed=traits,
        consents=[
            ConsentPublic.model_validate(c, from_attributes=True)
            for c in service.list_consents(session, profile)
        ],
        identities=[
            IdentityPublic.model_validate(i, from_attributes=True) for i in identities
        ],
        event_count=traits.event_count,
        orders=[OrderPublic.model_validate(o, from_attributes=True) for o in orders],
        recent_events=[
            EventPublic.model_validate(e, from_attributes=True) for e in recent
        ],
        created_at=profile.created_at,
        updated_at=profile.updated_at,
        last_seen_at=profile.last_seen_at,
    )


@router.get("/{ref}", response_model=ProfilePublic)
def read_profile(ref: str, session: ReadSessionDep) -> Response:
    """A profile by id or by any identity, e.g. ``email:ann@example.com``."""
    return Response(read_document(session, ref), media_type="application/json")


def read_document(session: Session, ref: str) -> str:
    """The profile's document as JSON, from the read model when it is current."""
    document = cache.lookup(ref)
    if document is not None:
        return document
    profile = service.get_by_ref_or_raise(session, ref)
    version = cache.version_of(profile.id)  # before reading what the document shows
    document = to_public(session, profile).model_dump_json()
    cache.keep(ref, profile.id, document, version)
    return document


@router.get("/{ref}/events", response_model=EventPage)
def read_events(
    ref: str,
    session: ReadSessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
    type: Annotated[MessageType | None, Query(description="the message type")] = None,
    name: Annotated[
        str | None, Query(description="event name, e.g. Product Viewed")
    ] = None,
) -> EventPage:
    profile = service.get_by_ref_or_raise(session, ref)
    events = service.list_events(
        session, profile, limit=limit, offset=offset, event_type=type, name=name
    )
    return EventPage(
        items=[EventPublic.model_validate(e, from_attributes=True) for e in events],
        next_offset=offset + limit if len(events) == limit else None,
    )


@router.patch("/{ref}/traits", response_model=ProfilePublic)
def update_traits(ref: str, update: TraitsUpdate, session: SessionDep) -> ProfilePublic:
    """``set``, ``set_once`` (only where the trait is absent) and ``unset``."""
    profile = service.get_by_ref_or_raise(session, ref)
    service.update_traits(session, profile, update)
    return to_public(session, profile)


@router.post("/{ref}/consents", response_model=ConsentPublic, status_code=201)
def record_consent(
    ref: str, consent: ConsentCreate, session: SessionDep
) -> ConsentPublic:
    """Record a consent decision for one purpose; the latest decision is in force.

    For a typed identity not seen yet (a chat opt-out before the visitor's first
    event is applied), the profile is created: a decision is never lost."""
    parsed = parse_ref(ref)
    if isinstance(parsed, str):
        profile = service.get_by_ref_or_raise(session, ref)
    else:
        found = service.get_by_identity(session, parsed)
        profile = found or service.resolve(
            session, [parsed], source=consent.source or "api"
        )
    row = service.record_consent(session, profile, consent)
    return ConsentPublic.model_validate(row, from_attributes=True)


@router.delete("/{ref}", response_model=DeletionReport)
def delete_profile(ref: str, session: SessionDep) -> DeletionReport:
    """Erase the person: this profile, the profiles merged into it, and their
    identities, events, orders, consents and match suggestions."""
    return service.delete(session, service.get_by_ref_or_raise(session, ref))


@router.get("/{ref}/identity", response_model=IdentityExplanation)
def explain_identity(ref: str, session: ReadSessionDep) -> IdentityExplanation:
    """Why these identifiers belong together: every link and merge with its rule,
    source and triggering event, and what the rules refused."""
    profile = service.get_by_ref_or_raise(session, ref)
    return IdentityExplanation(
        profile_id=profile.id,
        identities=[
            IdentityPublic.model_validate(i, from_attributes=True)
            for i in service.list_identities(session, profile)
        ],
        ledger=[
            LedgerEntryPublic.model_validate(e, from_attributes=True)
            for e in service.explain(session, profile)
        ],
    )


@router.post("/{ref}/unmerge", response_model=UnmergeResult)
def unmerge_profile(
    ref: str, request: UnmergeRequest, session: SessionDep
) -> UnmergeResult:
    """Undo a merge: the profile merged into this one comes back with its
    identifiers, events, orders, consents and traits, and both get their own
    buying stage and retention cell again."""
    survivor = service.get_by_ref_or_raise(session, ref)
    result = service.unmerge(session, survivor, request.other_profile_id)
    segments.refresh(
        session, [survivor.id, request.other_profile_id], reason="profiles unmerged"
    )
    return result

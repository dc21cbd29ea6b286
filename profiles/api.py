"""Profile routes: thin wrappers over profiles.service."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlmodel import Session

from core.auth import AdminOnly
from core.db import get_session
from profiles import service
from profiles.models import (
    EventPage,
    EventPublic,
    IdentityPublic,
    OrderPublic,
    Profile,
    ProfilePublic,
)

router = APIRouter(prefix="/v1/profiles", tags=["profiles"], dependencies=[AdminOnly])
SessionDep = Annotated[Session, Depends(get_session)]


def to_public(session: Session, profile: Profile) -> ProfilePublic:
    identities = service.list_identities(session, profile)
    recent = service.list_events(session, profile, limit=10)
    return ProfilePublic(
        id=profile.id,
        traits=profile.traits,
        identities=[
            IdentityPublic.model_validate(i, from_attributes=True) for i in identities
        ],
        event_count=service.count_events(session, profile),
        orders=[
            OrderPublic.model_validate(o, from_attributes=True)
            for o in service.list_orders(session, profile)
        ],
        recent_events=[
            EventPublic.model_validate(e, from_attributes=True) for e in recent
        ],
        created_at=profile.created_at,
        updated_at=profile.updated_at,
        last_seen_at=profile.last_seen_at,
    )


@router.get("/{ref}", response_model=ProfilePublic)
def read_profile(ref: str, session: SessionDep) -> ProfilePublic:
    """A profile by id or by any identity, e.g. ``email:ann@example.com``."""
    return to_public(session, service.get_by_ref_or_raise(session, ref))


@router.get("/{ref}/events", response_model=EventPage)
def read_events(
    ref: str,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    type: Annotated[str | None, Query(description="track, page, identify, ...")] = None,
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

"""Stage, retention cell and their history per profile; the acquisition funnel and
the retention grid for marketers. All need the admin token."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlmodel import Session

from core.auth import AdminOnly
from core.db import get_session
from profiles import service as profiles
from segments import service
from segments.models import (
    ChangePublic,
    Funnel,
    ProfileState,
    ProfileStateReport,
    RetentionGrid,
    StatePublic,
)

router = APIRouter(prefix="/v1", tags=["segments"], dependencies=[AdminOnly])
SessionDep = Annotated[Session, Depends(get_session)]
Days = Annotated[int, Query(ge=1, le=3650, description="the period, in days back")]


@router.get("/profiles/{ref}/state", response_model=ProfileStateReport)
def profile_state(ref: str, session: SessionDep) -> ProfileStateReport:
    """Buying stage and retention cell with their reasons, and every move so far."""
    profile = profiles.get_by_ref_or_raise(session, ref)
    if session.get(ProfileState, profile.id) is None:
        service.refresh(session, [profile.id])
    state = session.get(ProfileState, profile.id)
    assert state is not None
    return ProfileStateReport(
        profile_id=profile.id,
        state=StatePublic.model_validate(state, from_attributes=True),
        history=[
            ChangePublic.model_validate(c, from_attributes=True)
            for c in service.history(session, profile)
        ],
    )


@router.get("/funnel", response_model=Funnel)
def funnel(session: SessionDep, days: Days = 30) -> Funnel:
    """Profiles per buying stage now, and how many moved between stages."""
    return service.funnel(session, days=days)


@router.get("/retention", response_model=RetentionGrid)
def retention_grid(session: SessionDep, days: Days = 30) -> RetentionGrid:
    """Customers per retention cell now, and who moved where (loyal to red alert)."""
    return service.retention_grid(session, days=days)

"""The context route: a profile's devices, last location and current facts."""

from typing import Annotated

from fastapi import APIRouter, Depends
from sqlmodel import Session

from context import service
from context.models import ProfileContextPublic
from core.auth import AdminOnly
from core.db import get_session
from profiles import service as profiles

router = APIRouter(prefix="/v1/profiles", tags=["context"], dependencies=[AdminOnly])
SessionDep = Annotated[Session, Depends(get_session)]


@router.get("/{ref}/context", response_model=ProfileContextPublic)
def read_context(ref: str, session: SessionDep) -> ProfileContextPublic:
    """The devices the profile used (sessions per device, the main one), where it
    was last seen, and its facts now: local time, weather and traffic there."""
    profile = profiles.get_by_ref_or_raise(session, ref)
    return service.get_summary(session, profile.id)

"""Match suggestion routes: compute, review, approve, reject. Admin only."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlmodel import Session

from core.auth import AdminOnly
from core.db import get_session
from profiles import matching
from profiles.models import MatchRunPublic, MatchStatus, MatchSuggestionPublic

router = APIRouter(
    prefix="/v1/match-suggestions", tags=["profiles"], dependencies=[AdminOnly]
)
SessionDep = Annotated[Session, Depends(get_session)]


@router.post("/run", response_model=MatchRunPublic)
def run_matching(session: SessionDep) -> MatchRunPublic:
    """Compare the live profiles and store new pending suggestions."""
    return matching.run(session)


@router.get("", response_model=list[MatchSuggestionPublic])
def list_suggestions(
    session: SessionDep,
    status: MatchStatus = MatchStatus.pending,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[MatchSuggestionPublic]:
    """Highest score first, with the fields that agreed and both profiles."""
    suggestions = matching.list_suggestions(session, status=status, limit=limit)
    return [matching.to_public(session, s) for s in suggestions]


@router.post("/{suggestion_id}/approve", response_model=MatchSuggestionPublic)
def approve_suggestion(
    suggestion_id: int, session: SessionDep
) -> MatchSuggestionPublic:
    """Merge the two profiles; the older one survives."""
    return matching.to_public(session, matching.approve(session, suggestion_id))


@router.post("/{suggestion_id}/reject", response_model=MatchSuggestionPublic)
def reject_suggestion(suggestion_id: int, session: SessionDep) -> MatchSuggestionPublic:
    """Two different people: the pair is not suggested again."""
    return matching.to_public(session, matching.reject(session, suggestion_id))

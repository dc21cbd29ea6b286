"""Stage, retention cell and their history per profile; the acquisition funnel and
the retention grid for marketers. All need the admin token."""

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlmodel import Session

from core.auth import AdminOnly
from core.db import get_session
from profiles import service as profiles
from recommender.api import RecommenderDep
from segments import lookalikes, membership, predictions, service
from segments.definitions import InvalidSegmentsError
from segments.errors import SegmentsUnavailableError
from segments.lookalikes import Lookalike
from segments.models import (
    ChangePublic,
    Funnel,
    MembershipPublic,
    PredictionPublic,
    ProfileSegments,
    ProfileState,
    ProfileStateReport,
    RetentionGrid,
    SegmentChangePublic,
    SegmentMemberPublic,
    SegmentMembers,
    SegmentMovement,
    SegmentPublic,
    StatePublic,
)

router = APIRouter(prefix="/v1", tags=["segments"], dependencies=[AdminOnly])
SessionDep = Annotated[Session, Depends(get_session)]
Days = Annotated[int, Query(ge=1, le=3650, description="the period, in days back")]


def _segments_in_force() -> None:
    """Answers about segments need a good segment file, the last one in force."""
    try:
        membership.get_definitions()
    except InvalidSegmentsError as exc:
        raise SegmentsUnavailableError(
            "no segments are in force: the segment file has had mistakes since the "
            "api started; fix them (`cdp segments check`). " + "; ".join(exc.problems),
            loc=["segments"],
        ) from None


InForce = Depends(_segments_in_force)


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


@router.get("/segments", response_model=list[SegmentPublic], dependencies=[InForce])
def list_segments(session: SessionDep) -> list[SegmentPublic]:
    """Every segment defined in the shop's segment file, with its size now."""
    return [
        SegmentPublic(name=name, description=description, members=members)
        for name, description, members in membership.list_segments(session)
    ]


@router.get(
    "/segments/{name}/members", response_model=SegmentMembers, dependencies=[InForce]
)
def list_members(
    name: str,
    session: SessionDep,
    after: Annotated[
        str | None, Query(description="the next_cursor of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> SegmentMembers:
    """The members, a page at a time, in a stable order."""
    membership.get_or_raise(name)
    total, page = membership.list_members(session, name, after=after, limit=limit)
    return SegmentMembers(
        segment=name,
        total=total,
        items=[
            SegmentMemberPublic.model_validate(m, from_attributes=True) for m in page
        ],
        next_cursor=page[-1].profile_id if len(page) == limit else None,
    )


@router.get(
    "/segments/{name}/movements",
    response_model=list[SegmentMovement],
    dependencies=[InForce],
)
def list_movements(
    name: str, session: SessionDep, days: Days = 30
) -> list[SegmentMovement]:
    """Who entered and who left in the period, newest first, with why."""
    membership.get_or_raise(name)
    since = datetime.now(UTC) - timedelta(days=days)
    return [
        SegmentMovement.model_validate(c, from_attributes=True)
        for c in membership.movements(session, name, since=since)
    ]


@router.get(
    "/profiles/{ref}/segments", response_model=ProfileSegments, dependencies=[InForce]
)
def profile_segments(ref: str, session: SessionDep) -> ProfileSegments:
    """The profile's segments now, since when, and its entries and exits."""
    profile = profiles.get_by_ref_or_raise(session, ref)
    return ProfileSegments(
        profile_id=profile.id,
        segments=[
            MembershipPublic.model_validate(m, from_attributes=True)
            for m in membership.segments_of(session, profile)
        ],
        history=[
            SegmentChangePublic.model_validate(c, from_attributes=True)
            for c in membership.history_of(session, profile)
        ],
    )


@router.get(
    "/segments/{name}/lookalikes",
    response_model=list[Lookalike],
    dependencies=[InForce],
)
def list_lookalikes(
    name: str,
    session: SessionDep,
    recommender: RecommenderDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list[Lookalike]:
    """The profiles outside the segment that shop most like its members, best
    first, with the categories they share with it."""
    membership.get_or_raise(name)
    members = membership.list_member_ids(session, name)
    known = lookalikes.behaviour(session, recommender.index)
    return lookalikes.find(known, members, limit=limit)


@router.get("/profiles/{ref}/predictions", response_model=PredictionPublic)
def profile_predictions(ref: str, session: SessionDep) -> PredictionPublic:
    """Chance of an order in the next 30 days, lifetime value (spend over the next
    clv_days, 365 by default) and the best hour and weekday to get in touch, each
    with what it rests on, as `cdp segments predict` last computed them."""
    profile = profiles.get_by_ref_or_raise(session, ref)
    row = predictions.get_or_raise(session, profile.id)
    return PredictionPublic.model_validate(row, from_attributes=True)

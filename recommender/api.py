"""Recommendation and product search routes."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from sqlmodel import Session

from core.auth import ReaderIsAdmin
from core.db import get_session
from core.errors import UnauthorizedError, UnavailableError
from profiles import service as profiles
from recommender.models import Filters, RecommendationList
from recommender.service import Recommender, history_of

router = APIRouter(prefix="/v1", tags=["recommender"])
SessionDep = Annotated[Session, Depends(get_session)]


def get_recommender(request: Request) -> Recommender:
    recommender = getattr(request.app.state, "recommender", None)
    if recommender is None or not len(recommender.index):
        raise UnavailableError(
            "the product index is not built yet: import a catalog "
            "(`cdp import catalog`) and wait for the api to index it",
            loc=["index"],
        )
    return recommender


RecommenderDep = Annotated[Recommender, Depends(get_recommender)]
FiltersDep = Annotated[Filters, Depends()]


@router.get(
    "/recommendations",
    response_model=RecommendationList,
)
def recommendations(
    session: SessionDep,
    recommender: RecommenderDep,
    filters: FiltersDep,
    is_admin: ReaderIsAdmin,
    profile: Annotated[
        str | None, Query(description="profile id or identity, e.g. anonymous_id:abc")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 6,
) -> RecommendationList:
    """Products for this profile, nearest to what it viewed and bought most recently;
    without a profile or history, a spread across the catalog's categories."""
    history = []
    if profile and not is_admin and not profile.startswith("anonymous_id:"):
        # The shop's page knows only its visitor's cookie; an email or customer id
        # with the public write key would let anyone read a person's history.
        raise UnauthorizedError(
            "with a write key, profile must be the visitor's anonymous_id; other "
            "identities need the admin token",
            loc=["query", "profile"],
        )
    if profile:
        found = profiles.get_by_ref_or_raise(session, profile)
        history = history_of(session, found)
    return recommender.recommend(history, filters, limit=limit)


@router.get("/products/search", response_model=RecommendationList)
def search_products(
    recommender: RecommenderDep,
    filters: FiltersDep,
    q: Annotated[str, Query(min_length=1, max_length=500, description="free text")],
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> RecommendationList:
    return recommender.search(q, filters, limit=limit)

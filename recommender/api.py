"""Recommendation and product search routes."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from sqlmodel import Session

from core.auth import ReaderIsAdmin
from core.db import get_session
from core.errors import NotFoundError, UnauthorizedError, UnavailableError
from profiles import service as profiles
from recommender.models import (
    STAGE_OF_PLACEMENT,
    Filters,
    Placement,
    RecommendationList,
)
from recommender.service import Recommender, shopper_of
from segments.stages import Stage

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
    stage: Annotated[
        Stage | None,
        Query(description="serve this buying stage instead of the profile's own"),
    ] = None,
    placement: Annotated[
        Placement | None,
        Query(
            description="where the products are shown; sets the stage when there "
            "is no profile or the profile is only browsing (orientation)"
        ),
    ] = None,
    sku: Annotated[
        str | None,
        Query(description="the product on the page, which the strategy works from"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 6,
) -> RecommendationList:
    """Products for the profile's buying stage, each with the reason it is there.

    orientation: popular and new across categories; comparison: close alternatives
    to what is being compared, with what differs; decision: the product viewed most
    with its reviews, then complements for the cart; evaluation: accessories for
    what was bought, never the same item again."""
    if profile and not is_admin and not profile.startswith("anonymous_id:"):
        # The shop's page knows only its visitor's cookie; an email or customer id
        # with the public write key would let anyone read a person's history.
        raise UnauthorizedError(
            "with a write key, profile must be the visitor's anonymous_id; other "
            "identities need the admin token",
            loc=["query", "profile"],
        )
    if sku is not None and recommender.index.get(sku) is None:
        raise NotFoundError(f"no product with sku {sku!r}", loc=["query", "sku"])
    found = profiles.get_by_ref_or_raise(session, profile) if profile else None
    shopper = shopper_of(
        session, found, recommender.index, focus=sku,
        placement_stage=STAGE_OF_PLACEMENT.get(placement or ""),
    )  # fmt: skip
    return recommender.recommend(shopper, filters, limit=limit, stage=stage)


@router.get("/products/search", response_model=RecommendationList)
def search_products(
    recommender: RecommenderDep,
    filters: FiltersDep,
    q: Annotated[str, Query(min_length=1, max_length=500, description="free text")],
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> RecommendationList:
    return recommender.search(q, filters, limit=limit)

"""Recommendation and search schemas."""

from typing import Literal

from pydantic import BaseModel, Field

from catalog.models import ProductPublic

Strategy = Literal["search", "similar_to_history", "browse_categories"]


class Filters(BaseModel):
    category: str | None = Field(
        default=None,
        description="a category path or part of one, e.g. 'Women' or 'Jackets'",
    )
    color: str | None = None
    size: str | None = None
    min_price: float | None = Field(default=None, ge=0)
    max_price: float | None = Field(default=None, ge=0)
    in_stock: bool = True


class Recommendation(BaseModel):
    product: ProductPublic
    score: float
    reason: str


class RecommendationList(BaseModel):
    strategy: Strategy
    items: list[Recommendation]

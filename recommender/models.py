"""Recommendation and search schemas."""

from typing import Literal

from pydantic import BaseModel, Field

from catalog.models import ProductPublic
from segments.persuasion import Cue
from segments.stages import Stage

Strategy = Literal[
    "search",
    "orientation",
    "comparison",
    "decision",
    "evaluation",
]
# Where the products will be shown; each implies a stage for a profile that is only
# browsing (orientation) or for no profile at all.
Placement = Literal["home", "category", "product", "cart", "checkout", "thank_you"]
STAGE_OF_PLACEMENT: dict[str, Stage] = {
    "home": Stage.orientation,
    "category": Stage.orientation,
    "product": Stage.comparison,
    "cart": Stage.decision,
    "checkout": Stage.decision,
    "thank_you": Stage.evaluation,
}


class Filters(BaseModel):
    category: str | None = Field(
        default=None,
        description="a category path or part of one, e.g. 'Women' or 'Jackets'",
    )
    color: str | None = None
    size: str | None = None
    brand: str | None = Field(default=None, description="e.g. 'Luma'; any case")
    min_price: float | None = Field(default=None, ge=0)
    max_price: float | None = Field(default=None, ge=0)
    in_stock: bool = True


class Recommendation(BaseModel):
    product: ProductPublic
    score: float
    reason: str
    cues: list[Cue] = Field(
        default=[],
        description="persuasion cues the shop's own figures support: social_proof "
        "(it has reviews), scarcity (its stock count is low); send them with the "
        "exposure event when shown",
    )


class RecommendationList(BaseModel):
    strategy: Strategy
    stage: Stage | None = None
    stage_reason: str | None = Field(
        default=None, description="why the profile is in this stage, or who chose it"
    )
    items: list[Recommendation]

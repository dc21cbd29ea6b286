"""Ranking by buying stage. Each strategy answers the question a shopper in that
stage is asking, and says why each product is there.

- orientation: what is there? Popular and new products, spread across categories,
  tilted a little towards what the shopper already looked at.
- comparison: which one? Close alternatives to the products being compared, from
  the same category first, with what differs (price, material, colours).
- decision: is this right, what goes with it? The product viewed most, with its
  real review figures, then complements from other categories.
- evaluation: what now? Accessories and consumables for what was bought, from
  other categories, cheaper ones first; never the same item again.

Every strategy then lifts the categories the shop maps to the weather where the
shopper is (``shop/context.yml``: ``hot_day: {categories: [...], boost: 0.2}``),
and the reason says so.
"""

import logging
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from catalog.models import Product, ProductPublic
from context import rules as context_rules
from context.rules import Boost, Boosts
from core.yaml_files import YamlFileError, load_model
from recommender.index import ProductIndex, department
from recommender.models import Filters, Recommendation
from segments import persuasion
from segments.persuasion import Cue
from segments.stages import Stage, StageResult

logger = logging.getLogger(__name__)
DEFAULT_WEIGHTS = Path(__file__).with_name("strategies.yml")
# How a reason names the weather a boost follows.
WEATHER_WORDS = {
    "hot_day": "the hot day", "raining": "the rain", "cold_snap": "the cold snap",
    "freezing": "freezing weather", "cold": "cold weather", "mild": "mild weather",
    "warm": "warm weather", "hot": "hot weather",
}  # fmt: skip


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OrientationWeights(_Strict):
    popularity: float = Field(default=0.6, ge=0)
    new: float = Field(default=0.25, ge=0)
    rating: float = Field(default=0.1, ge=0)
    personal: float = Field(default=0.3, ge=0)


class DecisionWeights(_Strict):
    rating: float = Field(default=0.05, ge=0)
    cheaper: float = Field(default=0.05, ge=0)
    same_department: float = Field(default=0.05, ge=0)


class EvaluationWeights(_Strict):
    cheaper: float = Field(default=0.05, ge=0)
    cheaper_share: float = Field(default=0.6, gt=0, le=1)
    same_department: float = Field(default=0.05, ge=0)


class Weights(_Strict):
    half_life_hours: float = Field(default=24.0, gt=0)
    neighbours: int = Field(default=200, ge=10, le=5000)
    per_category: int = Field(default=2, ge=1)
    orientation: OrientationWeights = OrientationWeights()
    decision: DecisionWeights = DecisionWeights()
    evaluation: EvaluationWeights = EvaluationWeights()


class InvalidWeightsError(YamlFileError):
    code = "invalid_strategy_weights"


@lru_cache
def get_weights(path: Path | None = None) -> Weights:
    path = path or DEFAULT_WEIGHTS
    text = path.read_text(encoding="utf-8")
    return load_model(text, Weights, name=path.name, error=InvalidWeightsError)[0]


@dataclass(frozen=True)
class Interaction:
    product: Product
    at: datetime
    kind: str  # viewed, added, bought


@dataclass(frozen=True)
class Shopper:
    history: list[Interaction]  # newest first
    stage: StageResult
    cart: tuple[str, ...] = ()  # skus added and not removed or bought
    page: str | None = None  # the product on the page the products are shown on
    # Facts of the shopper's surroundings (context.service.snapshot): weather.
    context: Mapping[str, object] = field(default_factory=dict)


def main_category(product: Product) -> str:
    return product.categories[0] if product.categories else ""


def leaf(category: str) -> str:
    return category.rsplit("/", 1)[-1] if category else "our"


class Ranker:
    def __init__(
        self,
        index: ProductIndex,
        popularity: dict[str, float],
        weights: Weights | None = None,
        leaders: "Leaders | None" = None,
        boosts: Boosts | None = None,
    ) -> None:
        self.index = index
        self.popularity = popularity
        self.weights = weights or get_weights()
        # Precomputed by the recommender; computed here when not given.
        self.leaders = leaders
        self.boosts = boosts if boosts is not None else weather_boosts()
        # The boosts whose weather holds for the shopper being ranked for.
        self._lifts: list[tuple[str, Boost]] = []
        self._lifted: dict[str, tuple[float, str]] = {}

    def rank(
        self, stage: Stage, shopper: Shopper, filters: Filters, limit: int
    ) -> tuple[Stage, list[Recommendation]]:
        """The stage actually served (a stage with nothing to go on falls back to
        orientation) and its products."""
        self._lifts = self.boosts.active(dict(shopper.context))
        self._lifted = {}
        strategy = {
            Stage.comparison: self.comparison,
            Stage.decision: self.decision,
            Stage.evaluation: self.evaluation,
        }.get(stage)
        if strategy is not None:
            items = strategy(shopper, filters, limit)
            if items is not None:
                return stage, items
        return Stage.orientation, self.orientation(shopper, filters, limit)

    # orientation -----------------------------------------------------------------

    def orientation(
        self, shopper: Shopper, filters: Filters, limit: int
    ) -> list[Recommendation]:
        """The shop's best per category (popularity, novelty, reviews: the same for
        everyone, so computed once per index and popularity change), then a tilt
        towards what this shopper looked at among each category's leaders."""
        weights = self.weights.orientation
        seen = {i.product.sku for i in shopper.history}
        personal = self.profile_vector(shopper.history)
        leaders = self.leaders or orientation_leaders(
            self.index, self.popularity, self.weights
        )
        scored: list[list[tuple[float, Product, str]]] = []
        for ranked in leaders.values():
            queue = []
            for base, position, reason in ranked:
                product = self.index.products[position]
                if not self.index.alive[position] or product.sku in seen:
                    continue
                if not matches(product, filters):
                    continue
                score = base
                if personal is not None:
                    closeness = float(self.index.vectors[position] @ personal)
                    score += weights.personal * closeness
                lift, why = self.lift(product)
                queue.append((score + lift, product, reason + why))
                if len(queue) == LEADERS_PER_CATEGORY:
                    break
            if queue:
                scored.append(sorted(queue, key=lambda t: -t[0]))
            if len(scored) >= max(limit, 1) * 3 and not self._lifts:
                # Enough categories to spread the answer over; with the weather
                # lifting some, every category competes.
                break
        queues = sorted(scored, key=lambda items: -items[0][0])
        picked: list[Recommendation] = []
        while queues and len(picked) < limit:
            queue = queues.pop(0)
            score, product, reason = queue.pop(0)
            picked.append(_item(product, score, reason))
            if queue:
                queues.append(queue)
        return picked

    # comparison ------------------------------------------------------------------

    def comparison(
        self, shopper: Shopper, filters: Filters, limit: int
    ) -> list[Recommendation] | None:
        anchors = self._products([shopper.page] if shopper.page else [])
        anchors = anchors or self._products(shopper.stage.focus)
        anchors = anchors or self._products(
            [i.product.sku for i in shopper.history if i.kind == "viewed"][:3]
        )
        if not anchors:
            return None
        query = self._mean([a.sku for a in anchors])
        categories = {main_category(a) for a in anchors}
        excluded = {a.sku for a in anchors}
        same, other = [], []
        for product, similarity in self._neighbours(query, filters, excluded):
            bucket = same if main_category(product) in categories else other
            bucket.append((product, similarity + self.lift(product)[0]))
        items = []
        for product, score in (_best_first(same) + _best_first(other))[:limit]:
            anchor = self._closest(anchors, product)
            differences = describe_differences(anchor, product)
            reason = f"like the {anchor.name} you viewed"
            if differences:
                reason += ": " + ", ".join(differences)
            items.append(_item(product, score, reason + self.lift(product)[1]))
        return items

    # decision --------------------------------------------------------------------

    def decision(
        self, shopper: Shopper, filters: Filters, limit: int
    ) -> list[Recommendation] | None:
        in_cart = self._products(shopper.cart)
        viewed = Counter(
            i.product.sku for i in shopper.history if i.kind in ("viewed", "added")
        )
        most_viewed = self._products([sku for sku, _ in viewed.most_common(3)])
        page = self._products([shopper.page] if shopper.page else [])
        anchors = in_cart or page or self._products(shopper.stage.focus) or most_viewed
        if not anchors:
            return None
        items: list[Recommendation] = []
        cart_skus = {p.sku for p in in_cart}
        for product in most_viewed:
            # Reassurance for the product they keep coming back to, if not yet taken.
            if product.sku not in cart_skus and matches(product, filters):
                times = viewed[product.sku]
                reason = f"you looked at it {times} time{'s' if times > 1 else ''}"
                proof = social_proof(product)
                items.append(
                    _item(product, 1.0, reason + (f"; {proof}" if proof else ""))
                )
                break
        weights = self.weights.decision
        where = "in your cart" if in_cart else "you viewed"
        excluded = {a.sku for a in anchors} | {i.product.sku for i in items}
        ceiling = max(a.price for a in anchors)
        complements = []
        for product, similarity in self._neighbours(
            self._mean([a.sku for a in anchors]), filters, excluded
        ):
            if not self._completes(anchors, product):
                continue
            score = similarity + weights.rating * _rating(product)
            if product.price <= ceiling:
                score += weights.cheaper
            if self._same_department(anchors, product):
                score += weights.same_department
            complements.append((score + self.lift(product)[0], product))
        for score, product in _diversify(
            complements, limit - len(items), self.weights.per_category
        ):
            anchor = self._closest(anchors, product)
            reason = f"goes with the {anchor.name} {where}"
            proof = social_proof(product)
            reason += (f"; {proof}" if proof else "") + self.lift(product)[1]
            items.append(_item(product, score, reason))
        return items

    # evaluation ------------------------------------------------------------------

    def evaluation(
        self, shopper: Shopper, filters: Filters, limit: int
    ) -> list[Recommendation] | None:
        bought = self._products(
            list(shopper.stage.focus)
            + [i.product.sku for i in shopper.history if i.kind == "bought"]
        )
        if not bought:
            return None
        weights = self.weights.evaluation
        owned = {p.sku for p in bought}
        ceiling = max(p.price for p in bought)
        scored = []
        for product, similarity in self._neighbours(
            self._mean(list(owned)), filters, owned
        ):
            if not self._completes(bought, product):
                continue  # never a second jacket for someone who just bought one
            score = similarity
            if product.price <= weights.cheaper_share * ceiling:
                score += weights.cheaper
            if self._same_department(bought, product):
                score += weights.same_department
            scored.append((score + self.lift(product)[0], product))
        return [
            _item(
                product,
                score,
                f"goes with your order of the {self._closest(bought, product).name}"
                + self.lift(product)[1],
            )
            for score, product in _diversify(scored, limit, self.weights.per_category)
        ]

    # shared ----------------------------------------------------------------------

    def lift(self, product: Product) -> tuple[float, str]:
        """What the weather adds to the product's score, and the words the reason
        gains: "; suits the hot day". Nothing when no boost holds or matches."""
        if not self._lifts:
            return 0.0, ""
        found = self._lifted.get(product.sku)
        if found is None:
            held = [
                (fact, boost) for fact, boost in self._lifts
                if any(_in_category(product, path) for path in boost.categories)
            ]  # fmt: skip
            lift = sum(boost.boost for _fact, boost in held)
            words = " and ".join(WEATHER_WORDS[fact] for fact, _boost in held)
            found = self._lifted[product.sku] = (
                lift, f"; suits {words}" if held else ""
            )  # fmt: skip
        return found

    def profile_vector(self, history: list[Interaction]) -> np.ndarray | None:
        """Recency-weighted mean of what the shopper viewed, added and bought."""
        known = [i for i in history if i.product.sku in self.index.position]
        if not known:
            return None
        weights = np.array(
            [
                recency_weight(i.at, self.weights.half_life_hours)
                * (2.0 if i.kind == "bought" else 1.0)
                for i in known
            ],
            dtype=np.float32,
        )
        return self._mean([i.product.sku for i in known], weights)

    def _mean(self, skus: list[str], weights: np.ndarray | None = None) -> np.ndarray:
        vectors = np.stack(
            [self.index.vectors[self.index.position[sku]] for sku in skus]
        )
        if weights is None:
            weights = np.ones(len(skus), dtype=np.float32)
        vector = (weights[:, None] * vectors).sum(axis=0)
        return vector / (np.linalg.norm(vector) or 1.0)

    def _neighbours(
        self, query: np.ndarray, filters: Filters, excluded: set[str]
    ) -> Iterable[tuple[Product, float]]:
        for position, similarity in self.index.search(query, k=self.weights.neighbours):
            product = self.index.products[position]
            if product.sku not in excluded and matches(product, filters):
                yield product, similarity

    def _completes(self, anchors: list[Product], product: Product) -> bool:
        """From another category, and for the same people: a women's jacket is not
        completed by another jacket, nor by a men's hoodie; a bag may complete it."""
        if main_category(product) in {main_category(a) for a in anchors}:
            return False
        theirs = department(product)
        return not any(
            theirs in self.index.parallel.get(department(a), ()) for a in anchors
        )

    @staticmethod
    def _same_department(anchors: list[Product], product: Product) -> bool:
        return department(product) in {department(a) for a in anchors}

    def _products(self, skus: Iterable[str]) -> list[Product]:
        found: dict[str, Product] = {}
        for sku in skus:
            product = self.index.get(sku)
            if product is not None:
                found.setdefault(product.sku, product)
        return list(found.values())

    def _closest(self, anchors: list[Product], product: Product) -> Product:
        vector = self.index.vectors[self.index.position[product.sku]]
        return max(
            anchors,
            key=lambda a: float(
                self.index.vectors[self.index.position[a.sku]] @ vector
            ),
        )


# Per category, the products by the part of the orientation score that is the same
# for every shopper, best first: (score, position, reason).
Leaders = dict[str, list[tuple[float, int, str]]]
# How many of a category's leaders the personal tilt may reorder.
LEADERS_PER_CATEGORY = 20


def orientation_leaders(
    index: ProductIndex, popularity: dict[str, float], weights: Weights
) -> Leaders:
    """Categories ordered by their best product, products by score; one pass over
    the catalog, done when the index or popularity changes, not per request."""
    top = max(popularity.values(), default=0.0)
    ranked: dict[str, list[tuple[float, int, str]]] = {}
    for sku, position in index.position.items():
        product = index.products[position]
        popular = math.log1p(popularity.get(sku, 0.0)) / math.log1p(top or 1)
        new = _is_new(product, index.opened)
        score = (
            weights.orientation.popularity * popular
            + weights.orientation.new * new
            + weights.orientation.rating * _rating(product)
        )
        category = main_category(product)
        if popular > 0.5:
            reason = f"popular in {leaf(category)} this month"
        elif new:
            reason = f"new in {leaf(category)}"
        else:
            reason = f"from our {leaf(category)} range"
        ranked.setdefault(category, []).append((score, position, reason))
    for items in ranked.values():
        items.sort(key=lambda t: -t[0])
    return dict(sorted(ranked.items(), key=lambda pair: -pair[1][0][0]))


def weather_boosts() -> Boosts:
    """The shop's weather boosts; none, and an error logged, when the file has
    mistakes (recommendations go on without them)."""
    try:
        return context_rules.get_rules().boosts
    except context_rules.InvalidContextRulesError as exc:
        logger.error(
            "context rules have mistakes; no weather boosts",
            extra={"problems": exc.problems},
        )
        return Boosts()


def _best_first(pairs: list[tuple[Product, float]]) -> list[tuple[Product, float]]:
    return sorted(pairs, key=lambda pair: -pair[1])


def _diversify(
    scored: list[tuple[float, Product]], limit: int, per_category: int = 2
) -> list[tuple[float, Product]]:
    """Best first, at most ``per_category`` from one category while others wait."""
    ranked = sorted(scored, key=lambda pair: -pair[0])
    taken: Counter[str] = Counter()
    picked, waiting = [], []
    for pair in ranked:
        category = main_category(pair[1])
        if taken[category] < per_category:
            taken[category] += 1
            picked.append(pair)
        else:
            waiting.append(pair)
    return (picked + waiting)[:limit]


def describe_differences(anchor: Product, product: Product) -> list[str]:
    """What a shopper comparing the two would want to know, at most three things."""
    differences = []
    gap = product.price - anchor.price
    if gap <= -1:
        differences.append(f"{-gap:.0f} {product.currency} cheaper")
    elif gap >= 1:
        differences.append(f"{gap:.0f} {product.currency} more")
    material, theirs = _values(product, "material"), _values(anchor, "material")
    if material and material != theirs:
        differences.append("made of " + ", ".join(material[:2]))
    new_colors = [c for c in product.colors if c not in anchor.colors]
    if new_colors:
        differences.append("also in " + ", ".join(new_colors[:2]))
    if product.rating and anchor.rating and product.rating - anchor.rating >= 0.3:
        differences.append(f"rated {product.rating:.1f} against {anchor.rating:.1f}")
    return differences[:3]


def social_proof(product: Product) -> str:
    """Only what the reviews say; nothing when there are none."""
    if not product.review_count or product.rating is None:
        return ""
    plural = "s" if product.review_count != 1 else ""
    return f"rated {product.rating:.1f} of 5 in {product.review_count} review{plural}"


def true_cues(product: Product) -> list[Cue]:
    """The cues the product's own figures support: social proof from its reviews,
    scarcity from a low stock count the shop reported. None is ever made up."""
    cues = []
    if social_proof(product):
        cues.append(Cue.social_proof)
    if product.in_stock and 0 < product.qty <= persuasion.get_rules().low_stock:
        cues.append(Cue.scarcity)
    return cues


def matches(product: Product, filters: Filters) -> bool:
    if not product.active:
        return False
    if filters.in_stock and not product.in_stock:
        return False
    if filters.min_price is not None and product.price < filters.min_price:
        return False
    if filters.max_price is not None and product.price > filters.max_price:
        return False
    if filters.category and not _in_category(product, filters.category):
        return False
    if filters.brand and (product.brand or "").casefold() != filters.brand.casefold():
        return False
    if filters.color and not _has_variant(product, "color", filters.color, filters):
        return False
    return not (
        filters.size and not _has_variant(product, "size", filters.size, filters)
    )


def _has_variant(product: Product, key: str, wanted: str, filters: Filters) -> bool:
    """A variant in that size or colour, and in stock when stock is asked for."""
    wanted = wanted.lower()
    for variant in product.variants:
        value = variant.get(key)
        in_stock = not filters.in_stock or variant.get("in_stock", True)
        if value and value.lower() == wanted and in_stock:
            return True
    if product.variants:
        return False
    # A simple product: its attribute, if it has one.
    return wanted in [v.lower() for v in _values(product, key)]


def _in_category(product: Product, wanted: str) -> bool:
    """``wanted`` names one or more levels of a path, in order and in any number:
    "Women", "jackets", "Women/Jackets" and "women/jacket" all find
    "Women/Tops/Jackets"."""
    parts = [_words(p) for p in wanted.strip("/").split("/") if p.strip()]
    for path in product.categories:
        segments = [_words(s) for s in path.split("/")]
        position = 0
        for part in parts:
            while position < len(segments) and not part <= segments[position]:
                position += 1
            if position == len(segments):
                break
            position += 1
        else:
            return True
    return False


def _words(text: str) -> set[str]:
    """Lower-case words in singular form, so "tees" finds "tee"."""
    return {_singular(w) for w in re.findall(r"[a-z0-9]+", text.lower())}


def _singular(word: str) -> str:
    if word.endswith(("ches", "shes", "sses", "xes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def _values(product: Product, key: str) -> list[str]:
    value = product.attributes.get(key)
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _is_new(product: Product, opened: datetime | None) -> float:
    """Marked new by the shop, or added in the last 30 days to a catalog that is
    older than that (on the day of the first import, nothing is new)."""
    if _values(product, "new") == ["Yes"]:
        return 1.0
    created, now = _aware(product.created_at), datetime.now(UTC)
    if opened is None or (created - _aware(opened)).days < 1:
        return 0.0
    return 1.0 if (now - created).days < 30 else 0.0


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _rating(product: Product) -> float:
    """0 to 1, shrunk towards the middle when there are few reviews."""
    if not product.review_count or product.rating is None:
        return 0.0
    confidence = product.review_count / (product.review_count + 3)
    return confidence * (product.rating - 1) / 4


def recency_weight(at: datetime, half_life_hours: float) -> float:
    age_hours = max((datetime.now(UTC) - _aware(at)).total_seconds() / 3600, 0.0)
    return math.pow(0.5, age_hours / half_life_hours)


def _item(product: Product, score: float, reason: str) -> Recommendation:
    return Recommendation(
        product=ProductPublic.of(product), score=round(float(score), 4),
        reason=reason, cues=true_cues(product),
    )  # fmt: skip

"""The buying stage of a profile, with the reason it was given.

Rules are data (``stage_rules.yml``); this module turns a profile's events into
signals and the signals into a stage. It reads; it never writes.
"""

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.yaml_files import YamlFileError, load_model
from events.ecommerce import parse_fact, product_keys

DEFAULT_RULES = Path(__file__).with_name("stage_rules.yml")


class Stage(StrEnum):
    orientation = "orientation"
    comparison = "comparison"
    decision = "decision"
    evaluation = "evaluation"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EvaluationRule(_Strict):
    days: int = Field(default=30, ge=1, le=365)


class ComparisonRule(_Strict):
    product_views: int = Field(default=3, ge=2, le=100)
    repeat_views: int = Field(default=2, ge=2, le=100)


class StageRules(_Strict):
    window_days: int = Field(default=14, ge=1, le=365)
    evaluation: EvaluationRule = EvaluationRule()
    comparison: ComparisonRule = ComparisonRule()


class InvalidStageRulesError(YamlFileError):
    code = "invalid_stage_rules"


def parse_rules(text: str, *, name: str) -> StageRules:
    return load_model(text, StageRules, name=name, error=InvalidStageRulesError)[0]


@lru_cache
def get_rules(path: Path | None = None) -> StageRules:
    path = path or DEFAULT_RULES
    return parse_rules(path.read_text(encoding="utf-8"), name=path.name)


class Kind(StrEnum):
    list_view = "list_view"
    product_view = "product_view"
    search = "search"
    cart_add = "cart_add"
    cart_remove = "cart_remove"
    checkout = "checkout"
    order = "order"


_KIND_OF_EVENT = {
    "Product List Viewed": Kind.list_view,
    "Product List Filtered": Kind.list_view,
    "Products Searched": Kind.search,
    "Product Viewed": Kind.product_view,
    "Product Clicked": Kind.product_view,
    "Product Added": Kind.cart_add,
    "Product Removed": Kind.cart_remove,
    "Checkout Started": Kind.checkout,
    "Order Completed": Kind.order,
}


@dataclass(frozen=True)
class Signal:
    at: datetime
    kind: Kind
    skus: tuple[str, ...] = ()
    category: str | None = None


class EventLike:
    """What a signal is read from: a stored Event has these attributes."""

    name: str | None
    properties: dict
    timestamp: datetime


def signals_of(events: Iterable[EventLike]) -> list[Signal]:
    """Signals from events in any order, oldest first; events that say nothing about
    shopping, or whose properties do not parse, are skipped."""
    signals = []
    for event in events:
        kind = _KIND_OF_EVENT.get(event.name or "")
        if kind is None:
            continue
        try:
            skus = tuple(product_keys(parse_fact(event.name, event.properties)))
        except ValidationError:
            continue
        category = event.properties.get("category")
        signals.append(
            Signal(
                at=_aware(event.timestamp),
                kind=kind,
                skus=skus,
                category=str(category) if category else None,
            )
        )
    signals.sort(key=lambda s: s.at)
    return signals


@dataclass(frozen=True)
class StageResult:
    stage: Stage
    reason: str
    # The products the stage is about: compared, in the cart, or bought.
    focus: tuple[str, ...] = ()


def classify(
    signals: list[Signal],
    rules: StageRules | None = None,
    *,
    now: datetime | None = None,
    category_of: dict[str, str] | None = None,
) -> StageResult:
    """The stage the newest evidence supports; ``category_of`` maps a sku to its
    category so that views of different products can be told to be one comparison."""
    rules = rules or get_rules()
    now = now or datetime.now(UTC)
    category_of = category_of or {}
    recent = [s for s in signals if s.at >= now - timedelta(days=rules.window_days)]
    orders = [
        s
        for s in signals
        if s.kind is Kind.order and s.at >= now - timedelta(days=rules.evaluation.days)
    ]
    since_order = [s for s in recent if not orders or s.at > orders[-1].at]

    cart = open_cart(since_order)
    if cart:
        names = ", ".join(cart[:3])
        return StageResult(Stage.decision, f"in the cart: {names}", tuple(cart))
    checkouts = [s for s in since_order if s.kind is Kind.checkout]
    if checkouts:
        return StageResult(
            Stage.decision,
            f"checkout started {_ago(checkouts[-1].at, now)} and not completed",
            checkouts[-1].skus,
        )
    compared = _comparison(since_order, rules.comparison, category_of)
    if compared is not None:
        return compared
    if orders:
        bought = orders[-1].skus
        return StageResult(
            Stage.evaluation,
            f"ordered {_ago(orders[-1].at, now)}"
            + (f": {', '.join(bought[:3])}" if bought else ""),
            bought,
        )
    views = [s for s in recent if s.kind is Kind.product_view]
    if not recent:
        return StageResult(
            Stage.orientation, f"no shopping in the last {rules.window_days} days"
        )
    return StageResult(
        Stage.orientation,
        f"browsing: {len(views)} product view(s), "
        f"{sum(s.kind is Kind.list_view for s in recent)} category page(s), "
        f"{sum(s.kind is Kind.search for s in recent)} search(es)",
        tuple(dict.fromkeys(sku for s in reversed(views) for sku in s.skus)),
    )


def open_cart(signals: list[Signal]) -> list[str]:
    """Skus added and not removed, newest first; pass the signals since the last
    order, since an order empties the cart."""
    quantity: Counter[str] = Counter()
    for signal in signals:
        for sku in signal.skus:
            if signal.kind is Kind.cart_add:
                quantity[sku] += 1
            elif signal.kind is Kind.cart_remove:
                quantity[sku] = max(quantity[sku] - 1, 0)
    newest_first = [
        sku for s in reversed(signals) if s.kind is Kind.cart_add for sku in s.skus
    ]
    return [sku for sku in dict.fromkeys(newest_first) if quantity[sku] > 0]


def _comparison(
    signals: list[Signal], rule: ComparisonRule, category_of: dict[str, str]
) -> StageResult | None:
    views = [(sku, s) for s in signals if s.kind is Kind.product_view for sku in s.skus]
    counts = Counter(sku for sku, _ in views)
    repeated = [sku for sku, n in counts.most_common() if n >= rule.repeat_views]
    if repeated:
        sku = repeated[0]
        return StageResult(
            Stage.comparison,
            f"viewed {sku} {counts[sku]} times",
            tuple(repeated),
        )
    by_category: dict[str, list[str]] = {}
    for sku, signal in reversed(views):  # newest first
        category = category_of.get(sku) or signal.category
        if category:
            skus = by_category.setdefault(category, [])
            if sku not in skus:
                skus.append(sku)
    for category, skus in by_category.items():
        if len(skus) >= rule.product_views:
            return StageResult(
                Stage.comparison,
                f"viewed {len(skus)} products in {category}",
                tuple(skus),
            )
    return None


def _ago(at: datetime, now: datetime) -> str:
    hours = (now - at).total_seconds() / 3600
    if hours < 1:
        return "within the hour"
    if hours < 48:
        return f"{hours:.0f} hours ago"
    return f"{hours / 24:.0f} days ago"


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)

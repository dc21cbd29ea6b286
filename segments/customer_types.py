"""The customer type of a profile (explorer, goal-oriented, impulse buyer,
deal-seeker, loyal regular), with a reason that quotes its figures.

Rules are data (``customer_type_rules.yml``): this module measures a few figures
from a profile's events and completed orders and tries the rules in order. It
reads; it never writes.
"""

import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from string import Formatter
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from core.yaml_files import YamlFileError, load_model
from events.ecommerce import OrderFact, parse_fact
from segments.stages import EventLike, Kind, Signal

DEFAULT_RULES = Path(__file__).with_name("customer_type_rules.yml")


class Figure(StrEnum):
    """What a rule may test and quote; customer_type_rules.yml says what each is."""

    product_views = "product_views"
    categories = "categories"
    sessions = "sessions"
    views_per_session = "views_per_session"
    searches = "searches"
    sale_views = "sale_views"
    sale_view_share = "sale_view_share"
    orders = "orders"
    orders_with_discount = "orders_with_discount"
    discount_share = "discount_share"
    days_since_last_order = "days_since_last_order"
    minutes_to_buy = "minutes_to_buy"


# Every figure of a profile; None where it is unknown (a share of no orders).
Behaviour = dict[Figure, float | None]
_COUNTS = {Figure.product_views, Figure.categories, Figure.sessions, Figure.searches,
           Figure.sale_views, Figure.orders, Figure.orders_with_discount}  # fmt: skip


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Bound(_Strict):
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "Bound":
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.max < self.min:
            raise ValueError("max is below min")
        return self

    def holds(self, value: float | None) -> bool:
        if value is None:
            return False
        return not (
            (self.min is not None and value < self.min)
            or (self.max is not None and value > self.max)
        )


class TypeRule(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    when: dict[Figure, Bound] = Field(min_length=1)
    reason: str = Field(min_length=1)

    @field_validator("reason")
    @classmethod
    def _quotes_known_figures(cls, reason: str) -> str:
        try:
            quoted = [f for _, f, _, _ in Formatter().parse(reason) if f is not None]
        except ValueError as exc:
            raise ValueError(f"not a reason template ({exc})") from None
        unknown = [f for f in quoted if f not in Figure.__members__]
        if unknown:
            accepted = ", ".join(Figure)
            raise ValueError(f"unknown figure {{{unknown[0]}}}; accepted: {accepted}")
        try:
            render(reason, {f: 1 if f in _COUNTS else 1.0 for f in Figure})
        except ValueError as exc:
            raise ValueError(f"a figure's format does not fit it ({exc})") from None
        return reason

    def matches(self, behaviour: Behaviour) -> bool:
        return all(bound.holds(behaviour[f]) for f, bound in self.when.items())


class CustomerTypeRules(_Strict):
    window_days: int = Field(default=90, ge=1, le=3650)
    session_gap_minutes: int = Field(default=30, ge=1, le=24 * 60)
    min_activity: int = Field(default=3, ge=1)
    sale_words: list[str] = ["sale", "clearance", "outlet"]
    types: list[TypeRule] = Field(min_length=1)


class InvalidCustomerTypeRulesError(YamlFileError):
    code = "invalid_customer_type_rules"


def parse_rules(text: str, *, name: str) -> CustomerTypeRules:
    return load_model(
        text, CustomerTypeRules, name=name, error=InvalidCustomerTypeRulesError
    )[0]


@lru_cache
def get_rules(path: Path | None = None) -> CustomerTypeRules:
    path = path or DEFAULT_RULES
    return parse_rules(path.read_text(encoding="utf-8"), name=path.name)


class OrderLike:
    """What the figures read from an order: a stored Order has these attributes."""

    order_id: str
    status: str
    placed_at: datetime
    products: list[dict[str, Any]]


def discounted_orders(events: Iterable[EventLike]) -> set[str]:
    """Ids of orders whose Order Completed event carried a discount or a coupon."""
    found = set()
    for event in events:
        if event.name != "Order Completed":
            continue
        try:
            fact = parse_fact(event.name, event.properties)
        except ValidationError:
            continue
        if not isinstance(fact, OrderFact) or not fact.order_id:
            continue
        if (fact.discount or 0) > 0 or fact.coupon:
            found.add(fact.order_id)
    return found


def behaviour_of(
    signals: list[Signal],
    orders: Sequence[OrderLike],
    rules: CustomerTypeRules | None = None,
    *,
    discounted: set[str],
    categories_of: dict[str, list[str]],
    now: datetime | None = None,
) -> Behaviour:
    """Every figure from a profile's signals (oldest first) and orders; the order
    ids in ``discounted`` had a discount, ``categories_of`` maps skus to paths."""
    rules = rules or get_rules()
    now = now or datetime.now(UTC)
    recent = [s for s in signals if s.at >= now - timedelta(days=rules.window_days)]
    views = [s for s in recent if s.kind is Kind.product_view]
    sessions = _sessions(recent, timedelta(minutes=rules.session_gap_minutes))
    on_sale = sum(_on_sale(s, categories_of, rules.sale_words) for s in views)
    completed = [o for o in orders if o.status == "completed"]
    with_discount = sum(o.order_id in discounted for o in completed)
    last = max((_aware(o.placed_at) for o in completed), default=None)
    return {
        Figure.product_views: len(views),
        Figure.categories: len(_categories(views, categories_of)),
        Figure.sessions: sessions,
        Figure.views_per_session: len(views) / sessions if sessions else 0.0,
        Figure.searches: sum(s.kind is Kind.search for s in recent),
        Figure.sale_views: on_sale,
        Figure.sale_view_share: on_sale / len(views) if views else 0.0,
        Figure.orders: len(completed),
        Figure.orders_with_discount: with_discount,
        Figure.discount_share: with_discount / len(completed) if completed else None,
        Figure.days_since_last_order: (
            (now - last).total_seconds() / 86400 if last else None
        ),
        Figure.minutes_to_buy: _minutes_to_buy(signals, completed),
    }


@dataclass(frozen=True)
class CustomerTypeResult:
    customer_type: str | None
    reason: str


def classify(
    behaviour: Behaviour, rules: CustomerTypeRules | None = None
) -> CustomerTypeResult:
    """The first type whose conditions hold, or none, with the reason either way."""
    rules = rules or get_rules()
    activity = sum(
        int(behaviour[f] or 0)
        for f in (Figure.product_views, Figure.searches, Figure.orders)
    )
    if activity < rules.min_activity:
        return CustomerTypeResult(
            None,
            f"too little to go on: {summary(behaviour)} "
            f"({rules.min_activity} views, searches and orders needed)",
        )
    for rule in rules.types:
        if rule.matches(behaviour):
            return CustomerTypeResult(rule.name, render(rule.reason, behaviour))
    return CustomerTypeResult(None, f"no type fits: {summary(behaviour)}")


def summary(behaviour: Behaviour) -> str:
    def count(figure: Figure, one: str, many: str) -> str:
        n = int(behaviour[figure] or 0)
        return f"{n} {one if n == 1 else many}"

    return (
        f"{count(Figure.product_views, 'product view', 'product views')} in "
        f"{count(Figure.categories, 'category', 'categories')} over "
        f"{count(Figure.sessions, 'session', 'sessions')}, "
        f"{count(Figure.searches, 'search', 'searches')}, "
        f"{count(Figure.orders, 'order', 'orders')}"
    )


class _Figures(Formatter):
    def format_field(self, value: Any, format_spec: str) -> str:
        return "unknown" if value is None else super().format_field(value, format_spec)


def render(reason: str, behaviour: Behaviour) -> str:
    """The reason with its figures filled in; an unknown one reads "unknown"."""
    return _Figures().vformat(" ".join(reason.split()), (), {
        f.value: v for f, v in behaviour.items()
    })  # fmt: skip


def _sessions(signals: list[Signal], gap: timedelta) -> int:
    sessions, previous = 0, None
    for signal in signals:
        if previous is None or signal.at - previous > gap:
            sessions += 1
        previous = signal.at
    return sessions


def _categories(views: list[Signal], categories_of: dict[str, list[str]]) -> set[str]:
    """The main category of each viewed product: the catalog's first, else the one
    the event named."""
    found = set()
    for view in views:
        for sku in view.skus or ("",):
            main = (categories_of.get(sku) or [view.category])[0]
            if main:
                found.add(main)
    return found


def _on_sale(
    view: Signal, categories_of: dict[str, list[str]], words: list[str]
) -> bool:
    paths = [p for sku in view.skus for p in categories_of.get(sku, [])]
    paths += [view.category] if view.category else []
    wanted = {w.lower() for w in words}
    return any(wanted & set(re.findall(r"[a-z0-9]+", p.lower())) for p in paths)


def _minutes_to_buy(
    signals: list[Signal], completed: Sequence[OrderLike]
) -> float | None:
    first_view: dict[str, datetime] = {}
    for signal in signals:
        if signal.kind is Kind.product_view:
            for sku in signal.skus:
                first_view.setdefault(sku, signal.at)
    minutes = []
    for order in completed:
        placed = _aware(order.placed_at)
        seen = [
            first_view[key]
            for key in (p.get("sku") or p.get("product_id") for p in order.products)
            if key in first_view and first_view[key] <= placed
        ]
        if seen:
            minutes.append((placed - min(seen)).total_seconds() / 60)
    return statistics.median(minutes) if minutes else None


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)

"""What starts a hybrid campaign for a profile: behaviour read from its events,
its orders, its stage and retention moves, and the catalog's changes.

A trigger is written as a mapping with one key:

- ``cart_abandoned: {minutes: 60}``: a cart with products, no order since, and no
  activity of the person for that long.
- ``product_viewed: {times: 3, within_days: 7}``: one product viewed that often
  without buying it.
- ``stage_changed: {to: decision}`` and ``retention_changed: {to: red_alert}``:
  the profile moved into that stage or retention cell.
- ``days_since_last_order: {days: 60}``: that long since the last order.
- ``event: {name: Signed Up}``: the event happened.
- ``back_in_stock: {viewed_within_days: 30}`` and
  ``price_dropped: {viewed_within_days: 30, min_percent: 10}``: a product the
  person viewed or put in the cart is available again, or cheaper.

Evaluating a trigger gives its *occurrences* (one journey each: the key makes a
second evaluation of the same behaviour find the journey it started) and, for
triggers that become true with time alone, *when* to look again. Behaviour older
than ``LATE_LIMIT`` starts nothing, so a new campaign does not write to people
about last year's carts.
"""

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from segments.stages import Kind, Signal, Stage, open_cart

LATE_LIMIT = timedelta(days=2)
Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Occurrence:
    # One journey per campaign, profile and key.
    key: str
    # When the behaviour became a trigger (the cart went quiet, the third view).
    at: datetime
    # The products it is about: what a template shows as products with
    # ``products: {source: trigger}``.
    skus: tuple[str, ...] = ()
    # Said to the marketer in the journey's record.
    detail: str = ""


@dataclass
class TriggerFacts:
    """What per-profile triggers read, loaded in bulk by ``campaigns.journeys``."""

    now: datetime
    # Shopping signals (views, cart changes, orders), oldest first.
    signals: list[Signal] = field(default_factory=list)
    # (name, time, properties) of the events named by event triggers, newest first.
    events: list[tuple[str, datetime, dict[str, Any]]] = field(default_factory=list)
    last_seen: datetime | None = None
    last_order: datetime | None = None
    # (kind, to_value, time, id) of stage and retention moves, newest first.
    moves: list[tuple[str, str | None, datetime, int]] = field(default_factory=list)


@dataclass(frozen=True)
class Fired:
    occurrences: tuple[Occurrence, ...] = ()
    # When the trigger could become true with no new event; None: only an event
    # can change the answer.
    recheck_at: datetime | None = None


def _when_due(due: datetime, now: datetime, occurrence: Occurrence) -> Fired:
    """A trigger that becomes true at ``due``: look again then, fire once it has
    come, and start nothing once it is more than ``LATE_LIMIT`` past."""
    if due > now:
        return Fired(recheck_at=due)
    if now - due > LATE_LIMIT:
        return Fired()
    return Fired((occurrence,))


class CartAbandoned(_Strict):
    minutes: int = Field(ge=5, le=60 * 24 * 14)

    def fire(self, facts: TriggerFacts) -> Fired:
        signals = facts.signals
        orders = [s.at for s in signals if s.kind is Kind.order]
        since_order = [s for s in signals if not orders or s.at > orders[-1]]
        cart = open_cart(since_order)
        changes = [
            s.at for s in since_order if s.kind in (Kind.cart_add, Kind.cart_remove)
        ]
        if not cart or not changes:
            return Fired()
        last_change = changes[-1]
        quiet_since = max(last_change, facts.last_seen or last_change)
        due = quiet_since + timedelta(minutes=self.minutes)
        quiet = int((facts.now - quiet_since).total_seconds() // 60)
        return _when_due(
            due, facts.now,
            Occurrence(
                key=f"cart:{last_change.isoformat()}", at=due, skus=tuple(cart),
                detail=f"a cart of {len(cart)} product(s), quiet for {quiet} min",
            ),
        )  # fmt: skip

    @property
    def window(self) -> timedelta:
        # An order empties the cart: read far enough back to see the cart's start.
        return timedelta(days=30)


class ProductViewed(_Strict):
    times: int = Field(default=3, ge=1, le=100)
    within_days: float = Field(default=7.0, gt=0, le=90)

    def fire(self, facts: TriggerFacts) -> Fired:
        since = facts.now - timedelta(days=self.within_days)
        views = [
            (sku, s.at) for s in facts.signals
            if s.kind is Kind.product_view and s.at >= since for sku in s.skus
        ]  # fmt: skip
        counts = Counter(sku for sku, _ in views)
        occurrences = []
        for sku, count in counts.items():
            if count < self.times:
                continue
            times = sorted(at for s, at in views if s == sku)
            nth = times[self.times - 1]
            bought = any(
                s.kind is Kind.order and s.at >= times[0] and sku in s.skus
                for s in facts.signals
            )
            if bought or facts.now - nth > LATE_LIMIT:
                continue
            occurrences.append(
                Occurrence(
                    key=f"viewed:{sku}:{times[0].date().isoformat()}", at=nth,
                    skus=(sku,), detail=f"viewed {sku} {count} times, not bought",
                )
            )  # fmt: skip
        return Fired(tuple(occurrences))

    @property
    def window(self) -> timedelta:
        return timedelta(days=self.within_days)


class _MoveTrigger(_Strict):
    to: list[Name] = Field(min_length=1)
    kind: ClassVar[str] = "stage"

    @model_validator(mode="before")
    @classmethod
    def _one_value_is_a_list(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("to"), str):
            return {**data, "to": [data["to"]]}
        return data

    def fire(self, facts: TriggerFacts) -> Fired:
        found = [
            Occurrence(key=f"{kind}:{move_id}", at=at, detail=f"{kind} became {to}")
            for kind, to, at, move_id in facts.moves
            if kind == self.kind and to in self.to and facts.now - at <= LATE_LIMIT
        ]
        return Fired(tuple(found[:1]))  # the latest move only

    @property
    def window(self) -> timedelta:
        return LATE_LIMIT


class StageChanged(_MoveTrigger):
    to: list[Stage] = Field(min_length=1)  # type: ignore[assignment]


class RetentionChanged(_MoveTrigger):
    kind: ClassVar[str] = "retention"


class DaysSinceLastOrder(_Strict):
    days: int = Field(ge=1, le=3650)

    def fire(self, facts: TriggerFacts) -> Fired:
        if facts.last_order is None:
            return Fired()
        due = facts.last_order + timedelta(days=self.days)
        return _when_due(
            due, facts.now,
            Occurrence(
                key=f"last_order:{facts.last_order.isoformat()}", at=due,
                detail=f"{self.days} days since the last order",
            ),
        )  # fmt: skip

    @property
    def window(self) -> timedelta:
        return timedelta(0)


class EventTrigger(_Strict):
    name: str = Field(min_length=1, max_length=200)

    def fire(self, facts: TriggerFacts) -> Fired:
        for name, at, _properties in facts.events:
            if name == self.name and facts.now - at <= LATE_LIMIT:
                return Fired((
                    Occurrence(key=f"event:{at.isoformat()}", at=at,
                               detail=f"{name} at {at:%Y-%m-%d %H:%M}"),
                ))  # fmt: skip
        return Fired()

    @property
    def window(self) -> timedelta:
        return LATE_LIMIT


class InAudience(_Strict):
    """Fires for every profile in the campaign's audience whose rules hold: a smart
    campaign that mails, messages or posts to its audience (once per profile
    within ``reentry``). The profiles already in the audience when it starts are
    swept in batches; those who enter later, on their next event."""

    def fire(self, facts: TriggerFacts) -> Fired:
        return Fired(
            (Occurrence(key="audience", at=facts.now, detail="in the audience"),)
        )

    @property
    def window(self) -> timedelta:
        return timedelta(0)


class BackInStock(_Strict):
    # Who is told: people who viewed the product or put it in the cart this
    # recently, and have not bought it since.
    viewed_within_days: float = Field(default=30.0, gt=0, le=365)


class PriceDropped(_Strict):
    viewed_within_days: float = Field(default=30.0, gt=0, le=365)
    # A drop smaller than this (percent of the old price) starts nothing.
    min_percent: float = Field(default=5.0, gt=0, lt=100)


PROFILE_TRIGGERS: dict[str, type[_Strict]] = {
    "cart_abandoned": CartAbandoned, "product_viewed": ProductViewed,
    "stage_changed": StageChanged, "retention_changed": RetentionChanged,
    "days_since_last_order": DaysSinceLastOrder, "event": EventTrigger,
    "in_audience": InAudience,
}  # fmt: skip
CATALOG_TRIGGERS: dict[str, type[_Strict]] = {
    "back_in_stock": BackInStock, "price_dropped": PriceDropped,
}  # fmt: skip
KINDS = tuple(PROFILE_TRIGGERS) + tuple(CATALOG_TRIGGERS)


class Trigger(_Strict):
    """Exactly one of the kinds above."""

    cart_abandoned: CartAbandoned | None = None
    product_viewed: ProductViewed | None = None
    stage_changed: StageChanged | None = None
    retention_changed: RetentionChanged | None = None
    days_since_last_order: DaysSinceLastOrder | None = None
    event: EventTrigger | None = None
    in_audience: InAudience | None = None
    back_in_stock: BackInStock | None = None
    price_dropped: PriceDropped | None = None

    @model_validator(mode="before")
    @classmethod
    def _known(cls, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = [k for k in data if k not in KINDS]
            if unknown:
                raise ValueError(
                    f"unknown trigger {unknown[0]!r}; a trigger is one of: "
                    + ", ".join(KINDS)
                )
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> "Trigger":
        given = [k for k in KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"a trigger is exactly one of: {', '.join(KINDS)}; "
                f"got {', '.join(given) or 'none'}"
            )
        return self

    @property
    def kind(self) -> str:
        return next(k for k in KINDS if getattr(self, k) is not None)

    @property
    def rule(self) -> Any:
        return getattr(self, self.kind)

    @property
    def on_catalog(self) -> bool:
        return self.kind in CATALOG_TRIGGERS

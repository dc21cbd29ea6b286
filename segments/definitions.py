"""Segments as marketers write them: conditions in YAML, checked line by line, and
tested against what is known of one profile (its ``Facts``).

A segment is a name, a description and one condition. A condition is written as a
mapping whose first key says what it tests:

- ``all`` / ``any``: a list of conditions; ``not``: one condition.
- ``trait: city`` with ``equals``, ``one_of``, ``contains``, ``exists`` or
  ``min``/``max``.
- ``computed: order_count`` (or revenue, average_order_value, days_since_last_order,
  days_since_last_seen, days_since_created) with ``min``/``max``.
- ``event: Product Viewed`` (or a list of names) with ``where`` on its properties,
  ``within_days``, ``count`` (default: at least once) and ``sum`` of a property.
- ``stage``, ``retention``, ``customer_type``, ``persuasion_type``: one value or a list.
- ``prediction: propensity_30d`` (or clv) with ``min``/``max``.
- ``consent: email_marketing``: the purpose is granted now.
- ``context``: facts of the profile's surroundings, every one given must hold:
  ``{country: NL}``, ``{device: [mobile, tablet]}``, ``{weather_band: hot}``,
  ``{hot_day: true}``, ``{local_hour: {min: 18, max: 23}}`` (see ``ContextTests``).

Evaluation also says *when* the answer could change with no new event (the oldest
counted event leaves its window, a last order grows old), so memberships expire on
schedule without recomputing everyone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Annotated, Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from context.models import (
    TIME_FACTS,
    TRAFFIC_FACTS,
    WEATHER_FACTS,
    daypart,
)
from context.rules import BANDS
from core.yaml_files import YamlFileError, load_model
from segments.stages import Stage

KINDS = (
    "all", "any", "not", "trait", "computed", "event", "stage", "retention",
    "customer_type", "persuasion_type", "prediction", "consent", "context",
)  # fmt: skip
COMPUTED = (
    "order_count", "revenue", "average_order_value", "days_since_last_order",
    "days_since_last_seen", "days_since_created",
)  # fmt: skip
PREDICTIONS = ("propensity_30d", "clv")
Scalar = str | int | float | bool
Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
DAY = timedelta(days=1)
_TICK = timedelta(seconds=1)


class InvalidSegmentsError(YamlFileError):
    code = "invalid_segments"


@dataclass
class Facts:
    """What one profile's conditions are tested against. ``changes`` collects the
    times at which an answer would change without any new event."""

    now: datetime
    traits: dict[str, Any] = field(default_factory=dict)
    computed: dict[str, float | None] = field(default_factory=dict)
    # Event name -> (time, properties), newest first.
    events: dict[str, list[tuple[datetime, dict[str, Any]]]] = field(
        default_factory=dict
    )
    state: dict[str, str | None] = field(default_factory=dict)
    predictions: dict[str, float | None] = field(default_factory=dict)
    consents: frozenset[str] = frozenset()
    # The context snapshot (see context.service.snapshot), and when its weather
    # and traffic are next asked for again.
    context: dict[str, Any] = field(default_factory=dict)
    context_changes: dict[str, datetime] = field(default_factory=dict)
    changes: list[datetime] = field(default_factory=list)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Bounds(_Strict):
    min: float | None = None
    max: float | None = None

    def holds(self, value: float | None) -> bool:
        if value is None:
            return False
        if self.min is not None and value < self.min:
            return False
        return self.max is None or value <= self.max

    def _need_a_bound(self) -> None:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")


class AllOf(_Strict):
    all: list[Condition] = Field(min_length=1)

    @cached_property
    def _steady_first(self) -> tuple[list[Condition], list[Condition]]:
        return _split_by_time(self.all)

    def test(self, facts: Facts) -> bool:
        steady, timed = self._steady_first
        # A part that only an event can change, false now, keeps the whole false
        # until an event comes: the timed parts' change times do not matter then.
        if not all(c.test(facts) for c in steady):
            return False
        # Every timed part runs (no short cut) so each one's change time is known.
        results = [c.test(facts) for c in timed]
        return all(results)


class AnyOf(_Strict):
    any: list[Condition] = Field(min_length=1)

    @cached_property
    def _steady_first(self) -> tuple[list[Condition], list[Condition]]:
        return _split_by_time(self.any)

    def test(self, facts: Facts) -> bool:
        steady, timed = self._steady_first
        if any(c.test(facts) for c in steady):
            return True
        results = [c.test(facts) for c in timed]
        return any(results)


class NotCondition(_Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    not_: Condition = Field(alias="not")

    def test(self, facts: Facts) -> bool:
        return not self.not_.test(facts)


class TraitCondition(_Bounds):
    trait: str = Field(min_length=1, max_length=128)
    equals: Scalar | None = None
    one_of: list[Scalar] | None = Field(default=None, min_length=1)
    contains: str | None = None
    exists: bool | None = None

    @model_validator(mode="after")
    def _one_test(self) -> TraitCondition:
        given = [
            name for name in ("equals", "one_of", "contains", "exists")
            if getattr(self, name) is not None
        ]  # fmt: skip
        if self.min is not None or self.max is not None:
            given.append("min/max")
        if len(given) != 1:
            raise ValueError(
                "give exactly one of equals, one_of, contains, exists or min/max; "
                f"got {', '.join(given) or 'none'}"
            )
        return self

    def test(self, facts: Facts) -> bool:
        value = facts.traits.get(self.trait)
        if self.exists is not None:
            return (value is not None) is self.exists
        if value is None:
            return False
        if self.equals is not None:
            return _same(value, self.equals)
        if self.one_of is not None:
            return any(_same(value, option) for option in self.one_of)
        if self.contains is not None:
            return _contains(value, self.contains)
        return self.holds(_number(value))


class ComputedCondition(_Bounds):
    computed: Literal[COMPUTED]  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _bounded(self) -> ComputedCondition:
        self._need_a_bound()
        return self

    def test(self, facts: Facts) -> bool:
        value = facts.computed.get(self.computed)
        if self.computed.startswith("days_since_") and value is not None:
            _note_day_thresholds(facts, value, self)
        return self.holds(value)


class PropertyTest(_Strict):
    contains: str | None = None
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _something(self) -> PropertyTest:
        if self.contains is None and self.min is None and self.max is None:
            raise ValueError("give contains, min or max")
        return self

    def holds(self, value: Any) -> bool:
        if self.contains is not None and not _contains(value, self.contains):
            return False
        number = _number(value)
        if self.min is not None and (number is None or number < self.min):
            return False
        return self.max is None or (number is not None and number <= self.max)


class Sum(_Bounds):
    property: str = Field(min_length=1)

    @model_validator(mode="after")
    def _bounded(self) -> Sum:
        self._need_a_bound()
        return self


class EventCondition(_Strict):
    event: str | list[str]
    where: dict[str, Scalar | list[Scalar] | PropertyTest] = {}
    within_days: float | None = Field(default=None, gt=0, le=3650)
    count: _Bounds = _Bounds(min=1)
    sum: Sum | None = None

    @field_validator("event")
    @classmethod
    def _names(cls, value: str | list[str]) -> str | list[str]:
        names = [value] if isinstance(value, str) else value
        if not names or any(not n.strip() for n in names):
            raise ValueError("name one event or a list of events")
        return value

    @cached_property
    def names(self) -> tuple[str, ...]:
        return (self.event,) if isinstance(self.event, str) else tuple(self.event)

    @cached_property
    def window(self) -> timedelta | None:
        return self.within_days * DAY if self.within_days else None

    def test(self, facts: Facts) -> bool:
        window = self.window
        since = facts.now - window if window is not None else None
        matched: list[tuple[datetime, dict[str, Any]]] = []
        for name in self.names:
            for at, properties in facts.events.get(name, ()):
                if since is not None and at < since:
                    break  # newest first: the rest are older still
                if not self.where or self._matches(properties):
                    matched.append((at, properties))
        if window is not None and matched:
            # The oldest counted event leaves the window then: the count drops.
            facts.changes.append(min(at for at, _p in matched) + window)
        if not self.count.holds(len(matched)):
            return False
        if self.sum is None:
            return True
        total = sum(_number(p.get(self.sum.property)) or 0.0 for _at, p in matched)
        return self.sum.holds(total)

    @cached_property
    def _tests(self) -> tuple[tuple[str, Callable[[Any], bool]], ...]:
        return tuple((key, _predicate(wanted)) for key, wanted in self.where.items())

    def _matches(self, properties: dict[str, Any]) -> bool:
        tests = self._tests
        if all(test(properties.get(key)) for key, test in tests):
            return True
        # An order or a cart matches when one of its products does.
        products = properties.get("products")
        if not isinstance(products, list):
            return False
        return any(
            isinstance(p, dict)
            and all(test(p.get(key, properties.get(key))) for key, test in tests)
            for p in products
        )


class _LabelCondition(_Strict):
    """One of the labels the platform gives a profile, by value or list of values."""

    label: ClassVar[str]

    def test(self, facts: Facts) -> bool:
        wanted = getattr(self, self.label)
        values = [wanted] if isinstance(wanted, str) else wanted
        return facts.state.get(self.label) in values


class StageCondition(_LabelCondition):
    label: ClassVar[str] = "stage"
    stage: Stage | list[Stage]


class RetentionCondition(_LabelCondition):
    label: ClassVar[str] = "retention"
    retention: Name | list[Name]


class CustomerTypeCondition(_LabelCondition):
    label: ClassVar[str] = "customer_type"
    customer_type: Name | list[Name]


class PersuasionTypeCondition(_LabelCondition):
    label: ClassVar[str] = "persuasion_type"
    persuasion_type: Name | list[Name]


class PredictionCondition(_Bounds):
    prediction: Literal[PREDICTIONS]  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _bounded(self) -> PredictionCondition:
        self._need_a_bound()
        return self

    def test(self, facts: Facts) -> bool:
        return self.holds(facts.predictions.get(self.prediction))


class ConsentCondition(_Strict):
    consent: Name

    def test(self, facts: Facts) -> bool:
        return self.consent in facts.consents


Text = Annotated[str, Field(min_length=1, max_length=128)]
DeviceName = Literal["mobile", "tablet", "desktop", "bot", "other"]
Daypart = Literal["night", "morning", "afternoon", "evening"]
Band = Literal[BANDS]  # type: ignore[valid-type]
TrafficLevel = Literal["low", "normal", "high"]
HOUR = timedelta(hours=1)


class HourRange(_Strict):
    """Local hours from ``min`` to ``max``, both included; ``{min: 22, max: 5}``
    runs past midnight."""

    min: int = Field(default=0, ge=0, le=23)
    max: int = Field(default=23, ge=0, le=23)

    def holds(self, hour: Any) -> bool:
        if not isinstance(hour, int):
            return False
        if self.min <= self.max:
            return self.min <= hour <= self.max
        return hour >= self.min or hour <= self.max


class ContextTests(_Strict):
    """What a context condition may test; names and values are those of
    ``context.service.snapshot``. Text is compared without regard to case."""

    country: Text | list[Text] | None = None
    region: Text | list[Text] | None = None
    city: Text | list[Text] | None = None
    timezone: Text | list[Text] | None = None
    device: DeviceName | list[DeviceName] | None = None
    main_device: DeviceName | list[DeviceName] | None = None
    os: Text | list[Text] | None = None
    browser: Text | list[Text] | None = None
    local_hour: HourRange | None = None
    daypart: Daypart | list[Daypart] | None = None
    temperature: _Bounds | None = None
    weather_band: Band | list[Band] | None = None
    raining: bool | None = None
    hot_day: bool | None = None
    cold_snap: bool | None = None
    traffic: TrafficLevel | list[TrafficLevel] | None = None

    @model_validator(mode="after")
    def _something(self) -> ContextTests:
        if not self.given():
            raise ValueError(
                "give at least one of: " + ", ".join(ContextTests.model_fields)
            )
        if self.temperature is not None:
            self.temperature._need_a_bound()
        return self

    def given(self) -> dict[str, Any]:
        return {k: v for k, v in self if v is not None}


class ContextCondition(_Strict):
    context: ContextTests

    @cached_property
    def facts(self) -> frozenset[str]:
        return frozenset(self.context.given())

    @cached_property
    def _tests(self) -> tuple[tuple[str, Callable[[Any], bool]], ...]:
        """Place and device first: while one of them fails, only an event can
        change the answer, and no change time is noted."""
        tests = [
            (key, _context_predicate(wanted))
            for key, wanted in self.context.given().items()
        ]
        return tuple(sorted(tests, key=lambda pair: pair[0] in _TIMED_CONTEXT))

    def test(self, facts: Facts) -> bool:
        steady = [(k, t) for k, t in self._tests if k not in _TIMED_CONTEXT]
        if not all(test(facts.context.get(key)) for key, test in steady):
            return False
        self._note_changes(facts)
        return all(test(facts.context.get(key)) for key, test in self._tests)

    def _note_changes(self, facts: Facts) -> None:
        """Local time moves on, and weather and traffic are asked for again: note
        when this condition's answer may change with no event."""
        # Weather needs a place; traffic a level to change from. Without them only
        # an event (bringing a place) can change the answer.
        located = facts.context.get("country") is not None
        for group, keys, known in (
            ("weather", WEATHER_FACTS, located),
            ("traffic", TRAFFIC_FACTS, facts.context.get("traffic") is not None),
        ):
            if known and self.facts & set(keys) and group in facts.context_changes:
                facts.changes.append(facts.context_changes[group])
        for key, test in self._tests:
            if key in TIME_FACTS:
                flip = _next_flip(facts, test, key)
                if flip is not None:
                    facts.changes.append(flip)


def _context_predicate(wanted: Any) -> Callable[[Any], bool]:
    if isinstance(wanted, HourRange | _Bounds):
        return wanted.holds
    if isinstance(wanted, bool):
        return lambda value: value is wanted
    options = [wanted] if isinstance(wanted, str) else wanted
    folded = {o.casefold() for o in options}
    return lambda value: isinstance(value, str) and value.casefold() in folded


def _next_flip(facts: Facts, test: Callable[[Any], bool], key: str) -> datetime | None:
    """The first start of a local hour, within a day, at which the answer about
    ``key`` (local_hour or daypart) differs from now's."""
    try:
        local = facts.now.astimezone(ZoneInfo(str(facts.context.get("timezone"))))
    except (ZoneInfoNotFoundError, ValueError):
        return None
    into_hour = timedelta(minutes=local.minute, seconds=local.second)
    next_hour = facts.now - into_hour - timedelta(microseconds=local.microsecond) + HOUR

    def value(hour: int) -> Any:
        return hour if key == "local_hour" else daypart(hour)

    now_holds = test(value(local.hour))
    for step in range(24):
        if test(value((local.hour + 1 + step) % 24)) != now_holds:
            return next_hour + step * HOUR
    return None


def _kind(value: Any) -> str | None:
    if isinstance(value, dict):
        return next((key for key in value if key in KINDS), None)
    return _TAG_OF.get(type(value))


Condition = Annotated[
    Annotated[AllOf, Tag("all")]
    | Annotated[AnyOf, Tag("any")]
    | Annotated[NotCondition, Tag("not")]
    | Annotated[TraitCondition, Tag("trait")]
    | Annotated[ComputedCondition, Tag("computed")]
    | Annotated[EventCondition, Tag("event")]
    | Annotated[StageCondition, Tag("stage")]
    | Annotated[RetentionCondition, Tag("retention")]
    | Annotated[CustomerTypeCondition, Tag("customer_type")]
    | Annotated[PersuasionTypeCondition, Tag("persuasion_type")]
    | Annotated[PredictionCondition, Tag("prediction")]
    | Annotated[ConsentCondition, Tag("consent")]
    | Annotated[ContextCondition, Tag("context")],
    Discriminator(
        _kind,
        custom_error_type="unknown_condition",
        custom_error_message="a condition starts with one of: " + ", ".join(KINDS),
    ),
]
_TAG_OF: dict[type, str] = {
    AllOf: "all", AnyOf: "any", NotCondition: "not", TraitCondition: "trait",
    ComputedCondition: "computed", EventCondition: "event", StageCondition: "stage",
    RetentionCondition: "retention", CustomerTypeCondition: "customer_type",
    PersuasionTypeCondition: "persuasion_type", PredictionCondition: "prediction",
    ConsentCondition: "consent", ContextCondition: "context",
}  # fmt: skip
AllOf.model_rebuild()
AnyOf.model_rebuild()
NotCondition.model_rebuild()


class Segment(_Strict):
    name: Name
    description: str = Field(default="", max_length=500)
    when: Condition

    def test(self, facts: Facts) -> bool:
        return self.when.test(facts)


class SegmentFile(_Strict):
    segments: list[Segment] = Field(min_length=1, max_length=500)


@dataclass(frozen=True)
class Definitions:
    """The validated segments, and what evaluating them needs to read."""

    segments: tuple[Segment, ...]
    event_names: frozenset[str]
    # How far back events are read; None when some condition counts all time.
    window: timedelta | None
    # The context facts some condition tests (none: no snapshot is taken).
    context_facts: frozenset[str] = frozenset()

    def by_name(self) -> dict[str, Segment]:
        return {s.name: s for s in self.segments}


def parse(text: str, *, name: str) -> Definitions:
    parsed, lines = load_model(text, SegmentFile, name=name, error=InvalidSegmentsError)
    seen: dict[str, int] = {}
    problems = []
    for index, segment in enumerate(parsed.segments):
        line = lines.get(("segments", index, "name"), 1)
        if segment.name in seen:
            problems.append(
                (line, f"segment {segment.name!r} is defined twice "
                       f"(first on line {seen[segment.name]})")
            )  # fmt: skip
        seen.setdefault(segment.name, line)
    if problems:
        raise InvalidSegmentsError(name, problems)
    return definitions_of(parsed.segments)


def definitions_of(segments: Iterable[Segment]) -> Definitions:
    """The segments with what evaluating them reads: the events named, how far
    back, and the context facts tested."""
    segments = tuple(segments)
    conditions = [c for s in segments for c in walk(s.when)]
    events = [c for c in conditions if isinstance(c, EventCondition)]
    windows = [c.within_days for c in events]
    window = None if None in windows else max(windows, default=0.0) * DAY
    return Definitions(
        segments=segments,
        event_names=frozenset(n for c in events for n in c.names),
        window=window,
        context_facts=frozenset(
            f for c in conditions if isinstance(c, ContextCondition) for f in c.facts
        ),
    )


def changes_with_time(condition: Any) -> bool:
    """Whether the answer can change with no new event: an event counted within a
    window, a number of days since something, local time, weather or traffic."""
    if isinstance(condition, EventCondition):
        return condition.within_days is not None
    if isinstance(condition, ComputedCondition):
        return condition.computed.startswith("days_since_")
    if isinstance(condition, ContextCondition):
        return bool(condition.facts & _TIMED_CONTEXT)
    return any(changes_with_time(c) for c in walk(condition) if c is not condition)


# Context facts that change with no event: the local time, weather and traffic.
# Place and device change only with an event.
_TIMED_CONTEXT = frozenset([*TIME_FACTS, *WEATHER_FACTS, *TRAFFIC_FACTS])


def _split_by_time(parts: list[Any]) -> tuple[list[Any], list[Any]]:
    steady = [c for c in parts if not changes_with_time(c)]
    return steady, [c for c in parts if changes_with_time(c)]


def walk(condition: Any) -> Iterable[Any]:
    """The condition and every condition inside it."""
    yield condition
    for child in (
        getattr(condition, "all", None) or getattr(condition, "any", None) or []
    ):
        yield from walk(child)
    if isinstance(condition, NotCondition):
        yield from walk(condition.not_)


def _note_day_thresholds(facts: Facts, days: float, bounds: _Bounds) -> None:
    """A 'days since' figure grows by itself: note when it will cross a bound."""
    if bounds.min is not None and days < bounds.min:
        facts.changes.append(facts.now + (bounds.min - days) * DAY)
    if bounds.max is not None and days <= bounds.max:
        facts.changes.append(facts.now + (bounds.max - days) * DAY + _TICK)


def _predicate(wanted: Scalar | list[Scalar] | PropertyTest) -> Callable[[Any], bool]:
    """A property test made once per condition, with its text already folded."""
    if isinstance(wanted, PropertyTest):
        if wanted.min is None and wanted.max is None and wanted.contains is not None:
            part = wanted.contains.casefold()
            return lambda value: value is not None and _contains_folded(value, part)
        return lambda value: value is not None and wanted.holds(value)
    if isinstance(wanted, list):
        return lambda value: value is not None and any(_same(value, o) for o in wanted)
    if isinstance(wanted, str):
        folded = wanted.casefold()
        return lambda value: isinstance(value, str) and value.casefold() == folded
    return lambda value: value is not None and _same(value, wanted)


def _same(value: Any, wanted: Scalar) -> bool:
    if isinstance(wanted, str) and isinstance(value, str):
        return value.casefold() == wanted.casefold()
    if isinstance(wanted, bool) or isinstance(value, bool):
        return value is wanted
    number = _number(value)
    return number is not None and not isinstance(wanted, str) and number == wanted


def _contains(value: Any, part: str) -> bool:
    return _contains_folded(value, part.casefold())


def _contains_folded(value: Any, part: str) -> bool:
    if isinstance(value, str):
        return part in value.casefold()
    if isinstance(value, list):
        return any(_contains_folded(item, part) for item in value)
    return False


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None

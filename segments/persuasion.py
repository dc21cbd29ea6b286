"""The persuasion type of a profile: which of Cialdini's principles it answers to,
learned from what it did after seeing content that carried each one.

The contract with the shop (and with our own channels):

- An *exposure* is a track event whose properties carry ``content_id`` (what was
  shown, a string) and ``cues`` (a list of principle names, see ``Cue``). Any event
  name will do: Promotion Viewed, Product List Viewed for recommendations shown, a
  campaign message sent. Cue names we do not know are ignored here; where we create
  content, ``parse_cues`` rejects them.
- A *response* is a later event named in ``response_events`` (Product Clicked,
  Promotion Clicked, Product Added, Order Completed) with the same ``content_id``,
  within ``response_hours`` of the exposure. It answers the newest exposure of that
  content not yet answered, so one click is never counted twice.
- A cue must be true: "only 3 left" when the shop's count is 3, "rated 4.6 in 12
  reviews" when those are its reviews. The recommender marks only such cues.

Per profile and cue, the exposures and responses are a Beta-Bernoulli estimate
whose prior is the population's rate (every other live profile's tallies, weighted
as ``prior_strength`` exposures). The population totals are stored and recomputed
on schedule; the tallies are stored when a profile is refreshed. Rules and numbers
are in ``persuasion_rules.yml``.
"""

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from scipy.stats import beta
from sqlalchemy import func
from sqlmodel import Session, col, select

from core.errors import InvalidInputError
from core.yaml_files import YamlFileError, load_model
from profiles.models import Profile
from segments.models import CueEvidence, PersuasionPopulation, PersuasionTally

DEFAULT_RULES = Path(__file__).with_name("persuasion_rules.yml")
_CACHE_KEY = "persuasion_population"


class Cue(StrEnum):
    social_proof = "social_proof"
    scarcity = "scarcity"
    authority = "authority"
    reciprocity = "reciprocity"
    commitment = "commitment"
    liking = "liking"


class PersuasionRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    window_days: int = Field(default=180, ge=1, le=3650)
    response_hours: float = Field(default=48, gt=0, le=24 * 90)
    response_events: list[str] = Field(
        default=["Product Clicked", "Promotion Clicked", "Product Added",
                 "Order Completed"],
        min_length=1,
    )  # fmt: skip
    prior_strength: float = Field(default=20, gt=0, le=10_000)
    min_population_exposures: int = Field(default=50, ge=1)
    credibility: float = Field(default=0.9, ge=0.5, lt=1)
    low_stock: int = Field(default=5, ge=0)


class InvalidPersuasionRulesError(YamlFileError):
    code = "invalid_persuasion_rules"


class UnknownCueError(InvalidInputError):
    code = "unknown_cue"


def parse_rules(text: str, *, name: str) -> PersuasionRules:
    return load_model(
        text, PersuasionRules, name=name, error=InvalidPersuasionRulesError
    )[0]


@lru_cache
def get_rules(path: Path | None = None) -> PersuasionRules:
    path = path or DEFAULT_RULES
    return parse_rules(path.read_text(encoding="utf-8"), name=path.name)


def parse_cues(
    names: Iterable[str], *, loc: Iterable[str | int] = ("cues",)
) -> list[Cue]:
    """The cues of content we are about to create; an unknown name is an error,
    since content carrying a cue nobody counts would teach nothing."""
    cues = []
    for index, name in enumerate(names):
        if name not in Cue.__members__:
            accepted = ", ".join(Cue)
            raise UnknownCueError(
                f"unknown cue {name!r}; accepted: {accepted}", loc=[*loc, index]
            )
        cues.append(Cue(name))
    return list(dict.fromkeys(cues))


class EventLike:
    """What exposures and responses are read from: a stored Event has these."""

    name: str | None
    properties: dict[str, Any]
    timestamp: datetime


@dataclass
class Tally:
    exposures: int = 0
    responses: int = 0


@dataclass
class _Exposure:
    at: datetime
    cues: tuple[Cue, ...]
    answered: bool = False


def tally(
    events: Iterable[EventLike],
    rules: PersuasionRules | None = None,
    *,
    now: datetime | None = None,
) -> dict[Cue, Tally]:
    """Exposures and responses per cue, from a profile's events in any order."""
    rules = rules or get_rules()
    since = (now or datetime.now(UTC)) - timedelta(days=rules.window_days)
    window = timedelta(hours=rules.response_hours)
    responses = set(rules.response_events)
    # Oldest first; at the same instant the exposure comes before its response.
    ordered = sorted(
        events, key=lambda e: (_aware(e.timestamp), (e.name or "") in responses)
    )
    shown: dict[str, list[_Exposure]] = {}
    for event in ordered:
        content, at = _content_id(event.properties), _aware(event.timestamp)
        if content is None:
            continue
        if (event.name or "") in responses:
            _answer(shown.get(content, []), at, window)
            continue
        cues = _known_cues(event.properties.get("cues"))
        if cues and at >= since:
            shown.setdefault(content, []).append(_Exposure(at, cues))
    tallies: dict[Cue, Tally] = {}
    for exposure in (e for found in shown.values() for e in found):
        for cue in exposure.cues:
            counted = tallies.setdefault(cue, Tally())
            counted.exposures += 1
            counted.responses += exposure.answered
    return tallies


def _answer(exposures: list[_Exposure], at: datetime, window: timedelta) -> None:
    for exposure in reversed(exposures):  # newest first
        if at - exposure.at > window:
            return
        if not exposure.answered:
            exposure.answered = True
            return


def _content_id(properties: dict[str, Any]) -> str | None:
    value = properties.get("content_id")
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        return None
    return str(value)


def _known_cues(value: Any) -> tuple[Cue, ...]:
    if not isinstance(value, list):
        return ()
    known = (Cue(v) for v in value if isinstance(v, str) and v in Cue.__members__)
    return tuple(dict.fromkeys(known))


@dataclass(frozen=True)
class PersuasionResult:
    persuasion_type: Cue | None
    reason: str
    evidence: list[CueEvidence]


def assess(
    own: dict[Cue, Tally],
    population: dict[Cue, Tally],
    rules: PersuasionRules | None = None,
) -> PersuasionResult:
    """The cue this profile answers to more than others do, credibly; ``population``
    is every live profile's totals, this one's included (it is taken out)."""
    rules = rules or get_rules()
    evidence = [
        _evidence(cue, own[cue], population.get(cue, Tally()), rules)
        for cue in Cue
        if cue in own and own[cue].exposures
    ]
    if not evidence:
        return PersuasionResult(
            None,
            f"not enough evidence: no content with cues shown in the last "
            f"{rules.window_days} days",
            [],
        )
    credible = [
        e for e in evidence
        if e.probability_above is not None and e.probability_above > rules.credibility
    ]  # fmt: skip
    if credible:
        best = max(credible, key=lambda e: e.posterior_mean or 0.0)
        return PersuasionResult(Cue(best.cue), describe(best), evidence)
    assessed = [e for e in evidence if e.probability_above is not None]
    if not assessed:
        cues = ", ".join(e.cue for e in evidence)
        return PersuasionResult(
            None,
            f"not enough evidence: fewer than {rules.min_population_exposures} "
            f"exposures across other profiles for {cues}",
            evidence,
        )
    best = max(assessed, key=lambda e: e.probability_above or 0.0)
    return PersuasionResult(
        None,
        f"not enough evidence: {describe(best)}; {rules.credibility:.0%} needed",
        evidence,
    )


def _evidence(
    cue: Cue, own: Tally, population: Tally, rules: PersuasionRules
) -> CueEvidence:
    others = Tally(
        max(population.exposures - own.exposures, 0),
        max(population.responses - own.responses, 0),
    )
    found = CueEvidence(cue=cue.value, exposures=own.exposures, responses=own.responses)
    if others.exposures < rules.min_population_exposures:
        return found
    # Kept half an exposure off 0 and 1, so that a prior exists and "above" means
    # something when nobody (or everybody) answered.
    half = 0.5 / others.exposures
    rate = min(max(others.responses / others.exposures, half), 1 - half)
    a = rate * rules.prior_strength + own.responses
    b = (1 - rate) * rules.prior_strength + own.exposures - own.responses
    found.population_rate = round(rate, 4)
    found.posterior_mean = round(a / (a + b), 4)
    found.probability_above = round(float(beta.sf(rate, a, b)), 4)
    return found


def describe(evidence: CueEvidence) -> str:
    return (
        f"{evidence.cue}: {evidence.responses} of {evidence.exposures} exposures "
        f"answered; estimated {evidence.posterior_mean:.0%} against "
        f"{evidence.population_rate:.0%} for other profiles, "
        f"{_percent(evidence.probability_above)} probability of more"
    )


def _percent(share: float | None) -> str:
    # A posterior is never certain: 0.997 reads "over 99%", not "100%".
    share = share or 0.0
    return "over 99%" if share > 0.99 else f"{share:.0%}"


# Storage: the tallies per profile and the population totals ----------------------


def save_tallies(session: Session, profile_id: str, tallies: dict[Cue, Tally]) -> None:
    """Store a profile's tallies; a cue it no longer has is removed."""
    stored = {
        row.cue: row
        for row in session.exec(
            select(PersuasionTally).where(PersuasionTally.profile_id == profile_id)
        )
    }
    for name, row in stored.items():
        gone = name not in Cue.__members__ or Cue(name) not in tallies
        if gone or not tallies[Cue(name)].exposures:
            session.delete(row)
    for cue, counted in tallies.items():
        if not counted.exposures:
            continue
        row = stored.get(cue.value) or PersuasionTally(
            profile_id=profile_id, cue=cue.value
        )
        if (row.exposures, row.responses) != (counted.exposures, counted.responses):
            row.exposures, row.responses = counted.exposures, counted.responses
            session.add(row)


def get_population(session: Session) -> dict[Cue, Tally]:
    """The stored totals (read once per session); summed on the spot until the
    first scheduled refresh has stored any."""
    if _CACHE_KEY in session.info:
        return dict(session.info[_CACHE_KEY])
    stored = {
        Cue(row.cue): Tally(row.exposures, row.responses)
        for row in session.exec(select(PersuasionPopulation))
        if row.cue in Cue.__members__
    }
    population = stored or _summed_recently(session)
    session.info[_CACHE_KEY] = population
    return dict(population)


# Per database: (when summed, totals).
_summed: dict[str, tuple[float, dict[Cue, Tally]]] = {}
# Before the first scheduled refresh stores totals, they are summed on the spot:
# a query over every profile, so at most once per this many seconds per process.
SUM_SECONDS = 300.0


def _summed_recently(session: Session) -> dict[Cue, Tally]:
    database = str(session.get_bind().url)
    when, totals = _summed.get(database, (0.0, {}))
    if not when or time.monotonic() - when > SUM_SECONDS:
        totals = {cue: t for cue, (t, _) in _sum_tallies(session).items()}
        _summed[database] = (time.monotonic(), totals)
    return totals


def refresh_population(session: Session, *, now: datetime | None = None) -> int:
    """Sum every live profile's tallies per cue and store them; the caller commits.
    Returns the number of cues with exposures."""
    totals = _sum_tallies(session)
    stored = {row.cue: row for row in session.exec(select(PersuasionPopulation))}
    for name, row in stored.items():
        if name not in Cue.__members__ or Cue(name) not in totals:
            session.delete(row)
    for cue, (counted, profiles) in totals.items():
        row = stored.get(cue.value) or PersuasionPopulation(cue=cue.value)
        row.exposures, row.responses = counted.exposures, counted.responses
        row.profiles, row.computed_at = profiles, now or datetime.now(UTC)
        session.add(row)
    session.info[_CACHE_KEY] = {cue: t for cue, (t, _) in totals.items()}
    return len(totals)


def _sum_tallies(session: Session) -> dict[Cue, tuple[Tally, int]]:
    rows = session.exec(
        select(PersuasionTally.cue, func.sum(PersuasionTally.exposures),
               func.sum(PersuasionTally.responses), func.count())
        .join(Profile, col(Profile.id) == col(PersuasionTally.profile_id))
        .where(col(Profile.merged_into).is_(None))
        .group_by(PersuasionTally.cue)
    ).all()  # fmt: skip
    return {
        Cue(cue): (Tally(int(exposures), int(responses)), int(profiles))
        for cue, exposures, responses, profiles in rows
        if cue in Cue.__members__ and exposures
    }


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)

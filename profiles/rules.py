"""Identity rules as data: loaded from YAML, checked with the line of every problem."""

import re
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from core.yaml_files import YamlFileError, line_of, load_model
from profiles.models import IdentityType

DEFAULT_RULES = Path(__file__).resolve().parent / "identity_rules.yml"
DEFAULT_PRIORITY = 100


class InvalidRulesError(YamlFileError):
    code = "invalid_identity_rules"


def _compiles(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(
            f"{pattern!r} is not a valid regular expression: {exc}"
        ) from None
    return pattern


Regex = Annotated[str, AfterValidator(_compiles)]


class TypeRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    priority: int = Field(default=DEFAULT_PRIORITY, ge=1)
    unique: bool = False
    max_per_profile: int | None = Field(default=None, ge=1)
    # Sources trusted to join an event to the profile that owns this identifier;
    # None trusts every source. From others it is attached only if nobody has it.
    join_sources: list[str] | None = None


class Blocked(BaseModel):
    model_config = ConfigDict(extra="forbid")

    values: list[str] = []
    patterns: list[Regex] = []


class Strategy(StrEnum):
    """Which value a profile keeps when sources disagree about a trait."""

    most_recent = "most_recent"
    first_seen = "first_seen"
    most_frequent = "most_frequent"
    source_priority = "source_priority"


class TraitRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    strategy: Strategy
    # For source_priority: the sources in order of trust, e.g. [crm, shop, website].
    sources: list[str] = []

    @model_validator(mode="after")
    def _sources_given(self) -> "TraitRule":
        if self.strategy is Strategy.source_priority and not self.sources:
            raise ValueError(
                "source_priority needs the list of sources, most trusted first"
            )
        return self


class TraitRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default: Strategy = Strategy.most_recent
    rules: dict[str, TraitRule] = {}

    def rule(self, trait: str) -> TraitRule:
        return self.rules.get(trait) or TraitRule(strategy=self.default)


class IdentityRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    types: dict[IdentityType, TypeRule] = {}
    blocked: Blocked = Blocked()
    traits: TraitRules = TraitRules()

    def rule(self, identity_type: IdentityType) -> TypeRule:
        return self.types.get(identity_type) or TypeRule()

    def may_join(self, identity_type: IdentityType, source: str) -> bool:
        trusted = self.rule(identity_type).join_sources
        return trusted is None or source in trusted

    def is_blocked(self, value: str) -> bool:
        lowered = value.strip().lower()
        if not lowered or lowered in self._blocked_values:
            return True
        return any(p.search(lowered) for p in self._blocked_patterns)

    @property
    def _blocked_values(self) -> set[str]:
        return {v.strip().lower() for v in self.blocked.values}

    @property
    def _blocked_patterns(self) -> list[re.Pattern[str]]:
        return _compiled(tuple(self.blocked.patterns))


@lru_cache
def _compiled(patterns: tuple[str, ...]) -> list[re.Pattern[str]]:
    return [re.compile(p, re.IGNORECASE) for p in patterns]


def parse(text: str, *, name: str) -> IdentityRules:
    rules, lines = load_model(text, IdentityRules, name=name, error=InvalidRulesError)
    seen: dict[int, str] = {}
    problems = []
    for identity_type, rule in rules.types.items():
        if rule.priority in seen:
            line = line_of(lines, ("types", identity_type.value, "priority"))
            problems.append(
                (line, f"priority {rule.priority} is given to both "
                 f"{seen[rule.priority]} and {identity_type.value}; each needs its own")
            )  # fmt: skip
        seen[rule.priority] = identity_type.value
    if problems:
        raise InvalidRulesError(name, problems)
    return rules


def load(path: Path | None = None) -> IdentityRules:
    path = path or DEFAULT_RULES
    return parse(path.read_text(encoding="utf-8"), name=path.name)


@lru_cache
def get_rules() -> IdentityRules:
    from core.settings import get_settings

    return load(get_settings().identity.rules_path)

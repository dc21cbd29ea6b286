"""Trait survivorship: when two sources, or two merged profiles, disagree about a
trait, the identity rules say which value the profile keeps."""

import json
from dataclasses import dataclass
from typing import Any

from profiles.rules import Strategy, TraitRule


@dataclass(frozen=True)
class Candidate:
    value: Any
    at: str  # ISO time of the event that set it; "" when unknown
    source: str
    count: int = 1


def value_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def wins(rule: TraitRule, new: Candidate, current: Candidate | None) -> bool:
    """Whether ``new`` replaces ``current`` under ``rule``; ties go to the later."""
    if current is None:
        return True
    later = new.at >= current.at
    match rule.strategy:
        case Strategy.most_recent:
            return later
        case Strategy.first_seen:
            return new.at < current.at or not current.at
        case Strategy.most_frequent:
            return new.count > current.count or (new.count == current.count and later)
        case Strategy.source_priority:
            rank_new, rank_current = (
                _rank(rule, new.source),
                _rank(rule, current.source),
            )
            return rank_new < rank_current or (rank_new == rank_current and later)
    return later


def _rank(rule: TraitRule, source: str) -> int:
    return rule.sources.index(source) if source in rule.sources else len(rule.sources)

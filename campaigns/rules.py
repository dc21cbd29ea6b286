"""Conditions of campaigns (a hybrid campaign's ``rules`` and ``check`` steps, a
variant's ``when``) tested for one profile now: the segment language, evaluated
the way segments are, on the facts it needs."""

from datetime import datetime
from typing import Any

from sqlmodel import Session

from profiles import service as profiles
from profiles.models import Profile
from segments import definitions as segment_definitions
from segments import membership
from segments.definitions import Definitions, Segment

# Condition -> what evaluating it reads. The condition is kept with its entry, so
# its id cannot be reused by another object while the entry exists.
_definitions: dict[int, tuple[Any, Definitions]] = {}


def holds(session: Session, condition: Any, profile: Profile, now: datetime) -> bool:
    definitions = definitions_of(condition)
    rows = profiles.list_profile_facts(session, [profile.id])
    facts = membership.load_facts(session, rows, definitions, now=now)
    return profile.id in facts and definitions.segments[0].test(facts[profile.id])


def definitions_of(condition: Any) -> Definitions:
    found = _definitions.get(id(condition))
    if found is not None and found[0] is condition:
        return found[1]
    definitions = segment_definitions.definitions_of(
        [Segment(name="rules", when=condition)]
    )
    _definitions[id(condition)] = (condition, definitions)
    return definitions

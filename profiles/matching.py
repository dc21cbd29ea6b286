"""Probabilistic matching that only suggests (issue #4).

Deterministic resolution (profiles.service.resolve) merges profiles that share an
identifier. People also come back with a new e-mail address, a typo in their name or
no identifier at all; this module finds such pairs among live profiles and stores
them as suggestions for a person to approve or reject. Nothing here merges on its own.

The steps, with the recordlinkage library:

1. A comparison frame, one row per live profile: names, date of birth, street,
   postcode and city from traits; e-mail and phone from identities.
2. Blocking: only profiles that share a key are compared (surname sound-alike with
   first initial, date of birth, postcode, e-mail local part, e-mail domain, phone,
   first name with city, surname sound-alike with city). A key value shared by more
   than ``MAX_BLOCK`` profiles (``gmail.com``, ``info``) is skipped, so the pairs
   grow with the data rather than with its square (21,000 Febrl records: 293,000
   pairs, compared and scored in about 7 s).
3. Comparison: Jaro-Winkler for names, street, city and e-mail, edit distance for
   dates of birth (one typed digit is a near miss), exact for postcode and phone.
4. Score: a transparent weighted sum in the manner of Fellegi-Sunter match weights.
   Each field adds its weight when it agrees, part of it when it nearly agrees,
   subtracts a penalty when both sides have it and it differs, and counts nothing
   when either side lacks it. Hand-set weights rather than a fitted ECM model
   because the queue must behave the same for a shop with five profiles as for one
   with fifty thousand (ECM estimates are unstable on few pairs), and because a
   reviewer can read why a pair scored what it did. bench/identity_eval.py measures
   these weights and the threshold on labelled data.
"""

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import recordlinkage
from recordlinkage.preprocessing import phonetic
from sqlalchemy import update
from sqlmodel import Session, col, select

from profiles import service
from profiles.errors import (
    MatchSuggestionDecidedError,
    MatchSuggestionNotFoundError,
    ProfileMergedError,
)
from profiles.models import (
    Identity,
    IdentityType,
    MatchProfileSummary,
    MatchRunPublic,
    MatchStatus,
    MatchSuggestion,
    MatchSuggestionPublic,
    Profile,
    utcnow,
)

logger = logging.getLogger(__name__)

# Chosen on labelled data by bench/identity_eval.py (see its docstring).
SUGGESTION_THRESHOLD = 4.0
MAX_BLOCK = 200

# Where each compared trait may live in a profile's traits: our own names first,
# then Segment's reserved traits, then the Febrl/CRM column names.
TRAIT_NAMES: dict[str, tuple[str, ...]] = {
    "first_name": ("first_name", "firstName", "given_name"),
    "last_name": ("last_name", "lastName", "surname"),
    "date_of_birth": ("date_of_birth", "birthday", "dob"),
    "street": ("street", "address_1", "address_line_1"),
    "street_number": ("street_number",),
    "postcode": ("postcode", "postal_code", "postalCode", "zip"),
    "city": ("city", "suburb", "town"),
}
SHOWN_TRAITS = ("name", *(n for names in TRAIT_NAMES.values() for n in names))


@dataclass(frozen=True)
class FieldRule:
    """How one compared field moves the score: ``agree`` at or above ``high``
    similarity, ``partial`` at or above ``low``, minus ``disagree`` below that."""

    agree: float
    disagree: float
    high: float = 1.0
    low: float | None = None  # no partial agreement unless set
    partial: float = 0.0

    @property
    def floor(self) -> float:
        """The lowest similarity that counts as agreeing, in part or in full."""
        return self.high if self.low is None else self.low


RULES: dict[str, FieldRule] = {
    "first_name": FieldRule(3.0, 1.5, high=0.92, low=0.8, partial=1.5),
    "last_name": FieldRule(4.0, 2.0, high=0.92, low=0.85, partial=2.0),
    "date_of_birth": FieldRule(5.0, 2.5, low=0.87, partial=2.5),
    "street": FieldRule(3.0, 1.0, high=0.9, low=0.8, partial=1.5),
    "postcode": FieldRule(2.0, 0.5),
    "city": FieldRule(1.0, 0.5, high=0.92),
    "email": FieldRule(4.0, 0.5, high=0.92, low=0.85, partial=1.5),
    "phone": FieldRule(5.0, 1.0),
}


@dataclass
class Match:
    profile_a: str
    profile_b: str
    score: float
    fields: dict[str, float] = field(default_factory=dict)


@dataclass
class MatchRun:
    profiles: int
    candidate_pairs: int
    matches: list[Match]


def build_frame(
    profiles: Iterable[Profile], identities: Iterable[Identity]
) -> pd.DataFrame:
    """One row per profile, indexed by profile id, with normalised values (None
    where a profile lacks one)."""
    contacts: dict[str, dict[str, str]] = defaultdict(dict)
    for identity in identities:
        if identity.type in (IdentityType.email, IdentityType.phone):
            # The first identity of a type stands for the profile (ordered by id).
            contacts[identity.profile_id].setdefault(identity.type, identity.value)
    rows = [_row(p.traits, contacts.get(p.id, {})) for p in profiles]
    frame = pd.DataFrame(rows, index=[p.id for p in profiles], dtype=object)
    if frame.empty:
        return frame
    frame["last_sound"] = phonetic(frame["last_name"].fillna(""), "soundex")
    frame["last_sound"] = frame["last_sound"].replace("", None)
    frame["name_key"] = frame["last_sound"] + frame["first_name"].str[:1]
    frame["email_local"] = frame["email"].str.split("@").str[0]
    frame["email_domain"] = frame["email"].str.split("@").str[-1]
    frame["first_city"] = frame["first_name"] + "|" + frame["city"]
    frame["last_city"] = frame["last_sound"] + "|" + frame["city"]
    return frame


def _row(traits: dict[str, Any], contacts: dict[str, str]) -> dict[str, Any]:
    found = {key: _first(traits, names) for key, names in TRAIT_NAMES.items()}
    address = traits.get("address")
    if isinstance(address, dict):
        found["street"] = found["street"] or _text(address.get("street"))
        found["postcode"] = found["postcode"] or _text(address.get("postalCode"))
        found["city"] = found["city"] or _text(address.get("city"))
    name = _text(traits.get("name"))
    if name and not (found["first_name"] or found["last_name"]):
        first, _, last = name.rpartition(" ")
        found["first_name"], found["last_name"] = first or None, last
    number, street = found.pop("street_number"), found["street"]
    return {
        **found,
        "street": f"{number} {street}" if number and street else street,
        "postcode": (found["postcode"] or "").replace(" ", "") or None,
        "date_of_birth": _date_digits(found["date_of_birth"]),
        "email": contacts.get(IdentityType.email),
        "phone": _phone_digits(contacts.get(IdentityType.phone)),
    }


def _first(traits: dict[str, Any], names: Sequence[str]) -> str | None:
    for name in names:
        if value := _text(traits.get(name)):
            return value
    return None


def _text(value: Any) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    return " ".join(value.lower().split()) or None


def _date_digits(value: str | None) -> str | None:
    """YYYYMMDD from 1971-06-24, 19710624 or an ISO date-time."""
    digits = "".join(c for c in (value or "")[:10] if c.isdigit())
    return digits if len(digits) == 8 else None


def _phone_digits(value: str | None) -> str | None:
    # The last nine digits: +44 7700 900123 and 07700 900123 are the same phone.
    digits = "".join(c for c in value or "" if c.isdigit())
    return digits[-9:] if len(digits) >= 6 else None


BLOCKING_KEYS = (
    "name_key", "date_of_birth", "postcode", "email_local", "email_domain", "phone",
    "first_city", "last_city",
)  # fmt: skip


def candidate_pairs(frame: pd.DataFrame) -> pd.MultiIndex:
    """Pairs of profiles sharing at least one blocking key, in canonical order."""
    pairs: set[tuple[str, str]] = set()
    for key in BLOCKING_KEYS:
        values = frame[key].dropna()
        counts = values.map(values.value_counts())
        block = frame.loc[counts[(counts > 1) & (counts <= MAX_BLOCK)].index, [key]]
        if len(block) < 2:
            continue
        indexer = recordlinkage.Index()
        indexer.block(key)
        pairs.update((min(a, b), max(a, b)) for a, b in indexer.index(block))
    return pd.MultiIndex.from_tuples(sorted(pairs), names=["profile_a", "profile_b"])


def compare(frame: pd.DataFrame, pairs: pd.MultiIndex) -> pd.DataFrame:
    """Similarity 0..1 of each field for each pair; NaN where a side lacks it."""
    comparer = recordlinkage.Compare()
    for name in ("first_name", "last_name", "street", "city", "email"):
        comparer.string(
            name, name, method="jarowinkler", missing_value=np.nan, label=name
        )
    # Given name and surname typed into each other's box.
    for left, right in (("first_name", "last_name"), ("last_name", "first_name")):
        comparer.string(
            left, right, method="jarowinkler", missing_value=np.nan, label=left + "~"
        )
    comparer.string(
        "date_of_birth", "date_of_birth", method="damerau_levenshtein",
        missing_value=np.nan, label="date_of_birth",
    )  # fmt: skip
    for name in ("postcode", "phone"):
        comparer.exact(name, name, missing_value=np.nan, label=name)
    similarities = comparer.compute(pairs, frame)
    return _unswap_names(similarities)


def _unswap_names(similarities: pd.DataFrame) -> pd.DataFrame:
    straight = similarities[["first_name", "last_name"]].fillna(0).sum(axis=1)
    swapped = similarities[["first_name~", "last_name~"]].fillna(0).sum(axis=1)
    use = swapped > straight
    for name in ("first_name", "last_name"):
        similarities.loc[use, name] = similarities.loc[use, name + "~"]
    return similarities.drop(columns=["first_name~", "last_name~"])


def score(similarities: pd.DataFrame) -> pd.Series:
    """The weighted sum per pair (see RULES)."""
    total = pd.Series(0.0, index=similarities.index)
    for name, rule in RULES.items():
        s = similarities[name].astype(float)
        total += np.select(
            [s.isna(), s >= rule.high, s >= rule.floor],
            [0.0, rule.agree, rule.partial],
            default=-rule.disagree,
        )
    return total


def find_matches(
    frame: pd.DataFrame, *, threshold: float = SUGGESTION_THRESHOLD
) -> MatchRun:
    """Pairs of profiles scoring at or above ``threshold``, best first."""
    if len(frame) < 2:
        return MatchRun(len(frame), 0, [])
    pairs = candidate_pairs(frame)
    if len(pairs) == 0:
        return MatchRun(len(frame), 0, [])
    similarities = compare(frame, pairs)
    totals = score(similarities)
    kept = totals[totals >= threshold].sort_values(ascending=False)
    matches = [
        Match(a, b, round(float(total), 2), _agreeing(similarities.loc[(a, b)]))
        for (a, b), total in kept.items()
    ]
    return MatchRun(len(frame), len(pairs), matches)


def _agreeing(similarity: pd.Series) -> dict[str, float]:
    return {
        name: round(float(similarity[name]), 2)
        for name, rule in RULES.items()
        if pd.notna(similarity[name]) and similarity[name] >= rule.floor
    }


def load_frame(session: Session) -> pd.DataFrame:
    live = list(session.exec(select(Profile).where(col(Profile.merged_into).is_(None))))
    contact_types = [IdentityType.email.value, IdentityType.phone.value]
    identities = session.exec(
        select(Identity)
        .where(col(Identity.type).in_(contact_types))
        .order_by(col(Identity.id))
    )
    return build_frame(live, identities)


def run(session: Session, *, threshold: float = SUGGESTION_THRESHOLD) -> MatchRunPublic:
    """Compare the live profiles and store what scores at or above the threshold as
    pending suggestions. Decided pairs are left as they are; pending ones that name
    a profile merged away since are dropped."""
    found = find_matches(load_frame(session), threshold=threshold)
    _drop_stale(session)

    existing = {
        (s.profile_a, s.profile_b): s for s in session.exec(select(MatchSuggestion))
    }
    created = updated = skipped = 0
    for match in found.matches:
        suggestion = existing.get((match.profile_a, match.profile_b))
        if suggestion is None:
            suggestion = MatchSuggestion(
                profile_a=match.profile_a, profile_b=match.profile_b, score=0.0
            )
            created += 1
        elif suggestion.status != MatchStatus.pending:
            skipped += 1
            continue
        else:
            updated += 1
        suggestion.score, suggestion.fields = match.score, match.fields
        session.add(suggestion)
    session.commit()

    logger.info(
        "match suggestions computed",
        extra={"profiles": found.profiles, "pairs": found.candidate_pairs,
               "created": created, "updated": updated},
    )  # fmt: skip
    return MatchRunPublic(
        profiles=found.profiles, candidate_pairs=found.candidate_pairs,
        suggested=len(found.matches), created=created, updated=updated,
        skipped_decided=skipped,
    )  # fmt: skip


def _drop_stale(session: Session) -> None:
    merged = select(Profile.id).where(col(Profile.merged_into).is_not(None))
    pending = select(MatchSuggestion).where(
        MatchSuggestion.status == MatchStatus.pending,
        col(MatchSuggestion.profile_a).in_(merged)
        | col(MatchSuggestion.profile_b).in_(merged),
    )
    for suggestion in session.exec(pending):
        session.delete(suggestion)
    session.flush()


def list_suggestions(
    session: Session, *, status: MatchStatus = MatchStatus.pending, limit: int = 50
) -> list[MatchSuggestion]:
    """Highest score first."""
    statement = (
        select(MatchSuggestion)
        .where(MatchSuggestion.status == status)
        .order_by(col(MatchSuggestion.score).desc(), col(MatchSuggestion.id))
        .limit(limit)
    )
    return list(session.exec(statement))


def get_or_raise(session: Session, suggestion_id: int) -> MatchSuggestion:
    suggestion = session.get(MatchSuggestion, suggestion_id)
    if suggestion is None:
        raise MatchSuggestionNotFoundError(
            f"no match suggestion {suggestion_id}", loc=["path", "suggestion_id"]
        )
    return suggestion


def approve(session: Session, suggestion_id: int) -> MatchSuggestion:
    """Merge the pair (the older profile survives, as in resolve) and record it."""
    suggestion = get_or_raise(session, suggestion_id)
    if suggestion.status != MatchStatus.pending:
        raise _decided(suggestion)
    pair = [
        _lock_live_or_raise(session, profile_id)
        for profile_id in (suggestion.profile_a, suggestion.profile_b)
    ]
    survivor, other = sorted(pair, key=lambda p: (p.created_at, p.id))

    _decide(session, suggestion, MatchStatus.approved)
    service.merge(session, survivor, other)
    suggestion.survivor_id = survivor.id
    session.add(suggestion)
    session.commit()
    return suggestion


def _lock_live_or_raise(session: Session, profile_id: str) -> Profile:
    """The profile, row-locked (PostgreSQL) so that the worker cannot merge it away
    while we merge it; a 409 if that happened already."""
    profile = session.get(Profile, profile_id, with_for_update=True)
    if profile is None or profile.merged_into:
        raise ProfileMergedError(
            f"profile {profile_id} was merged into another after this suggestion "
            "was made; run matching again for a fresh suggestion",
            loc=["path", "suggestion_id"],
        )
    return profile


def reject(session: Session, suggestion_id: int) -> MatchSuggestion:
    """Record that the pair is two people; it is not suggested again."""
    suggestion = get_or_raise(session, suggestion_id)
    if suggestion.status != MatchStatus.pending:
        raise _decided(suggestion)
    _decide(session, suggestion, MatchStatus.rejected)
    session.commit()
    return suggestion


def _decide(session: Session, suggestion: MatchSuggestion, status: MatchStatus) -> None:
    """Move a pending suggestion to ``status``; a conditional update, so that of two
    concurrent decisions exactly one wins and the other is a 409."""
    now = utcnow()
    result = session.execute(
        update(MatchSuggestion)
        .where(col(MatchSuggestion.id) == suggestion.id,
               col(MatchSuggestion.status) == MatchStatus.pending.value)
        .values(status=status.value, decided_at=now)
    )  # fmt: skip
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        session.refresh(suggestion)
        raise _decided(suggestion)
    session.refresh(suggestion)


def _decided(suggestion: MatchSuggestion) -> MatchSuggestionDecidedError:
    return MatchSuggestionDecidedError(
        f"match suggestion {suggestion.id} is already {suggestion.status}; "
        "only a pending suggestion can be approved or rejected",
        loc=["path", "suggestion_id"],
    )


def to_public(session: Session, suggestion: MatchSuggestion) -> MatchSuggestionPublic:
    return MatchSuggestionPublic(
        id=suggestion.id or 0,
        score=suggestion.score,
        fields=suggestion.fields,
        status=MatchStatus(suggestion.status),
        survivor_id=suggestion.survivor_id,
        profiles=[
            _summary(session, profile_id)
            for profile_id in (suggestion.profile_a, suggestion.profile_b)
        ],
        created_at=suggestion.created_at,
        decided_at=suggestion.decided_at,
    )


def _summary(session: Session, profile_id: str) -> MatchProfileSummary:
    """The profile as it stands now (after a merge, the profile it went into)."""
    profile = service.get(session, profile_id)
    if profile is None:
        return MatchProfileSummary(id=profile_id, traits={}, emails=[], phones=[])
    identities = service.list_identities(session, profile)
    return MatchProfileSummary(
        id=profile.id,
        traits={k: v for k, v in profile.traits.items() if k in SHOWN_TRAITS},
        emails=[i.value for i in identities if i.type == IdentityType.email],
        phones=[i.value for i in identities if i.type == IdentityType.phone],
    )

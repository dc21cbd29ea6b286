"""Trait survivorship from the rules file: CRM over web forms for names, the first
channel stays first, the size seen most often wins, and merges follow the same rules."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session

from profiles import rules as identity_rules
from profiles import service
from profiles.models import IdentityType

CUSTOMER = IdentityType.customer_id
DAY = timedelta(days=1)
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def profile_with(session: Session, customer: str):  # type: ignore[no-untyped-def]
    return service.resolve(session, [(CUSTOMER, customer)], source="web")


def test_crm_name_survives_a_later_web_form(session: Session) -> None:
    profile = profile_with(session, "c-1")
    service.set_traits(
        session, profile, {"first_name": "Annemarie"}, at=T0, source="crm"
    )

    service.set_traits(
        session, profile, {"first_name": "annie"}, at=T0 + DAY, source="website"
    )

    assert profile.traits["first_name"] == "Annemarie"


def test_first_seen_channel_keeps_the_first_even_when_it_arrives_late(
    session: Session,
) -> None:
    profile = profile_with(session, "c-1")
    service.set_traits(session, profile, {"first_seen_channel": "email"}, at=T0 + DAY)

    service.set_traits(session, profile, {"first_seen_channel": "instagram"}, at=T0)

    assert profile.traits["first_seen_channel"] == "instagram"


def test_most_frequent_size_wins_over_the_latest(session: Session) -> None:
    profile = profile_with(session, "c-1")
    for day, size in enumerate(["M", "M", "L", "M", "XL"]):
        service.set_traits(
            session, profile, {"preferred_size": size}, at=T0 + day * DAY
        )

    assert profile.traits["preferred_size"] == "M"


def test_merge_keeps_the_crm_name_whichever_profile_survives(session: Session) -> None:
    older = profile_with(session, "c-1")
    service.set_traits(session, older, {"first_name": "annie", "city": "Halle"},
                       at=T0 + 2 * DAY, source="website")  # fmt: skip
    session.commit()
    newer = service.resolve(
        session, [(IdentityType.email, "ann@example.com")], source="crm"
    )
    service.set_traits(session, newer, {"first_name": "Annemarie", "city": "Leipzig"},
                       at=T0, source="crm")  # fmt: skip
    session.commit()

    service.merge(session, older, newer)

    assert older.traits["first_name"] == "Annemarie"  # source priority
    assert older.traits["city"] == "Halle"  # most recent


def test_source_priority_without_sources_is_refused_with_its_line() -> None:
    text = "traits:\n  rules:\n    first_name: {strategy: source_priority}\n"

    with pytest.raises(identity_rules.InvalidRulesError) as caught:
        identity_rules.parse(text, name="rules.yml")

    assert "rules.yml, line 3" in caught.value.problems[0]
    assert "most trusted first" in caught.value.problems[0]

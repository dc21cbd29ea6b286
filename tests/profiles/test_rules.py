"""Identity rules: junk never glues people together, unique types keep two people
apart, limits stop magnets, and the ledger says why."""

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from events.worker import Worker
from profiles import rules as identity_rules
from profiles import service
from profiles.models import IdentityType
from tests.conftest import bearer
from tests.events.test_worker import drain, envelope, publish

EMAIL = IdentityType.email
ANON = IdentityType.anonymous_id
CUSTOMER = IdentityType.customer_id


def test_a_junk_email_does_not_merge_two_people(session: Session) -> None:
    first = service.resolve(session, [(CUSTOMER, "c-1"), (EMAIL, "NULL")], source="crm")
    second = service.resolve(
        session, [(CUSTOMER, "c-2"), (EMAIL, "null")], source="crm"
    )
    session.commit()

    assert first.id != second.id
    assert service.get_by_identity(session, (EMAIL, "null")) is None


def test_a_shared_device_does_not_merge_two_customers(session: Session) -> None:
    ann = service.resolve(
        session, [(CUSTOMER, "ann"), (ANON, "family-laptop")], source="web"
    )
    session.commit()

    bob = service.resolve(
        session, [(CUSTOMER, "bob"), (ANON, "family-laptop")], source="web"
    )
    session.commit()

    assert bob.id != ann.id
    assert (
        service.get_by_ref_or_raise(session, "anonymous_id:family-laptop").id == ann.id
    )
    assert {i.value for i in service.list_identities(session, bob)} == {"bob"}


def test_anonymous_browsing_still_joins_the_customer_who_logs_in(
    session: Session,
) -> None:
    browsing = service.resolve(session, [(ANON, "cookie-1")], source="web")
    session.commit()

    known = service.resolve(
        session, [(CUSTOMER, "ann"), (ANON, "cookie-1")], source="web"
    )

    assert known.id == browsing.id


def test_a_profile_takes_no_more_emails_than_the_rules_allow(session: Session) -> None:
    for n in range(7):
        service.resolve(
            session, [(CUSTOMER, "c-1"), (EMAIL, f"a{n}@example.com")], source="crm"
        )
    session.commit()

    profile = service.get_by_ref_or_raise(session, "customer_id:c-1")
    emails = [
        i.value for i in service.list_identities(session, profile) if i.type == "email"
    ]
    assert len(emails) == 5
    refused = [
        e for e in service.explain(session, profile) if e.action == "refused_limit"
    ]
    assert [e.identity_value for e in refused] == ["a5@example.com", "a6@example.com"]


def test_identity_explanation_shows_each_link_and_merge_with_its_evidence(
    client: TestClient, engine: Engine
) -> None:
    browsing = envelope("m-1", anonymousId="cookie-1")
    customer = envelope("m-2", anonymousId=None, userId="ann", source="shop")
    login = envelope("m-3", anonymousId="cookie-1", userId="ann")
    drain(Worker(engine, publish(browsing, customer, login)))

    body = client.get("/v1/profiles/customer_id:ann/identity", headers=bearer()).json()

    entries = [
        (e["action"], e["identity_type"], e["message_id"]) for e in body["ledger"]
    ]
    assert ("linked", "anonymous_id", "m-1") in entries
    assert ("linked", "customer_id", "m-2") in entries
    merged = [e for e in body["ledger"] if e["action"] == "merged"]
    assert len(merged) == 1
    assert merged[0]["message_id"] == "m-3"
    assert "both profiles have" in merged[0]["rule"]
    assert {i["value"] for i in body["identities"]} == {"cookie-1", "ann"}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("types:\n  email: {priorty: 2}\n", "line 2: unknown key 'priorty'"),
        ("types:\n  shoe_size: {priority: 2}\n", "line 2"),
        ("blocked:\n  patterns:\n    - '(['\n", "line 3"),
        (
            "types:\n  email: {priority: 2}\n  phone: {priority: 2}\n",
            "line 3: priority 2 is given to both email and phone",
        ),
    ],
)
def test_invalid_rules_are_rejected_with_the_line_and_the_reason(
    text: str, problem: str
) -> None:
    with pytest.raises(identity_rules.InvalidRulesError) as caught:
        identity_rules.parse(text, name="rules.yml")

    assert any(problem in p for p in caught.value.problems), caught.value.problems


def test_shipped_rules_load(tmp_path: Path) -> None:
    rules = identity_rules.load()

    assert rules.rule(CUSTOMER).unique
    assert rules.is_blocked("noreply@shop.example")
    assert not rules.is_blocked("ann@example.com")


def test_one_phone_number_however_written_finds_one_profile(session: Session) -> None:
    first = service.resolve(
        session, [(IdentityType.phone, "(415) 555-0132")], source="crm"
    )
    session.commit()

    second = service.resolve(
        session, [(IdentityType.phone, "+1 415 555 0132")], source="web"
    )
    whatsapp = service.resolve(
        session, [(IdentityType.whatsapp_id, "14155550132")], source="wa"
    )

    assert second.id == first.id
    assert {i.value for i in service.list_identities(session, first)} == {
        "+14155550132"
    }
    assert whatsapp.id != first.id  # a WhatsApp id is its own type, linked by rules
    assert service.get_by_ref_or_raise(session, "phone:+1-415-555-0132").id == first.id


def test_a_phone_ref_that_is_no_number_is_refused_naming_it(session: Session) -> None:
    with pytest.raises(Exception, match="'12' is not a usable phone"):
        service.get_by_ref_or_raise(session, "phone:12")


def test_segment_external_ids_become_identities(
    engine: Engine, settings_env: str
) -> None:
    external = {"externalIds": [{"id": "8841", "type": "shopify_customer_id"}]}
    drain(Worker(engine, publish(envelope("m-1", context=external))))

    with Session(engine) as session:
        profile = service.get_by_ref_or_raise(
            session, "external_id:shopify_customer_id:8841"
        )
        assert profile.id == service.get_by_ref_or_raise(session, "anonymous_id:v-1").id


def test_an_email_from_an_untrusted_source_does_not_pull_a_visitor_into_a_profile(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = "types:\n  email: {priority: 2, join_sources: [crm]}\n"
    monkeypatch.setattr(
        service, "get_rules", lambda: identity_rules.parse(text, name="r")
    )
    ann = service.resolve(session, [(EMAIL, "ann@example.com")], source="crm")
    session.commit()

    visitor = service.resolve(
        session, [(ANON, "attacker"), (EMAIL, "ann@example.com")], source="website"
    )
    session.commit()

    assert visitor.id != ann.id
    assert service.get_by_ref_or_raise(session, "email:ann@example.com").id == ann.id
    refused = [
        e for e in service.explain(session, visitor) if e.action == "refused_source"
    ]
    assert refused[0].identity_value == "ann@example.com"
    crm_again = service.resolve(session, [(EMAIL, "ann@example.com")], source="crm")
    assert crm_again.id == ann.id

from datetime import UTC, datetime

import pytest
from sqlmodel import Session

from profiles import service
from profiles.errors import InvalidIdentityError, ProfileNotFoundError
from profiles.models import Event, IdentityType

EMAIL = IdentityType.email
ANON = IdentityType.anonymous_id
CUSTOMER = IdentityType.customer_id


def make_event(message_id: str, **overrides: object) -> Event:
    fields: dict = {
        "message_id": message_id, "profile_id": "", "type": "track",
        "name": "Product Viewed", "timestamp": datetime.now(UTC),
    }  # fmt: skip
    return Event(**{**fields, **overrides})


def test_resolve_same_identity_twice_gives_one_profile(session: Session) -> None:
    first = service.resolve(session, [(ANON, "a-1")], source="web")
    second = service.resolve(session, [(ANON, "a-1")], source="web")

    assert first.id == second.id


def test_resolve_email_is_found_whatever_its_case(session: Session) -> None:
    created = service.resolve(session, [(EMAIL, " Ann@Example.COM ")], source="crm")
    session.commit()

    found = service.get_by_ref_or_raise(session, "email:ann@example.com")

    assert found.id == created.id


def test_resolve_identities_of_two_profiles_merges_them_with_their_events(
    session: Session,
) -> None:
    browsing = service.resolve(session, [(ANON, "a-1")], source="web")
    service.add_event(session, browsing, make_event("m-1"))
    customer = service.resolve(session, [(CUSTOMER, "c-9")], source="shop")
    service.add_event(session, customer, make_event("m-2", name="Order Completed"))
    session.commit()

    merged = service.resolve(session, [(CUSTOMER, "c-9"), (ANON, "a-1")], source="web")
    session.commit()

    assert merged.id == browsing.id  # the older profile survives
    names = {e.name for e in service.list_events(session, merged)}
    assert names == {"Product Viewed", "Order Completed"}
    assert service.get_by_ref_or_raise(session, customer.id).id == merged.id
    assert {i.type for i in service.list_identities(session, merged)} == {
        "anonymous_id",
        "customer_id",
    }


def test_add_event_with_a_stored_message_id_is_not_stored_again(
    session: Session,
) -> None:
    profile = service.resolve(session, [(ANON, "a-1")], source="web")

    assert service.add_event(session, profile, make_event("m-1")) is True
    session.commit()
    assert service.add_event(session, profile, make_event("m-1")) is False
    assert service.count_events(session, profile) == 1


def test_list_events_is_newest_first_by_event_time(session: Session) -> None:
    profile = service.resolve(session, [(ANON, "a-1")], source="web")
    late = datetime(2026, 1, 1, tzinfo=UTC)
    service.add_event(session, profile, make_event("new", timestamp=datetime.now(UTC)))
    service.add_event(session, profile, make_event("old-but-late", timestamp=late))
    session.commit()

    ids = [e.message_id for e in service.list_events(session, profile)]

    assert ids == ["new", "old-but-late"]


@pytest.mark.parametrize(
    ("ref", "error", "message"),
    [
        ("shoe_size:42", InvalidIdentityError, "accepted: email, phone"),
        ("email:", InvalidIdentityError, "empty value"),
        ("email:nobody@example.com", ProfileNotFoundError, "no profile"),
        ("0000", ProfileNotFoundError, "no profile"),
    ],
)
def test_get_by_ref_bad_or_unknown_reference_names_the_problem(
    session: Session, ref: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        service.get_by_ref_or_raise(session, ref)

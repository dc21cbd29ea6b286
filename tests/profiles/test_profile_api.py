"""The 360-degree profile API: computed traits, trait operations, consents, erasure."""

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from events.worker import Worker
from profiles.models import Event, Identity, Profile
from tests.conftest import bearer
from tests.events.test_worker import drain, envelope, publish


def order(message_id: str, at: str, total: float, category: str) -> dict:
    products = [{"sku": "WJ06", "category": category, "price": total, "quantity": 1}]
    return envelope(
        message_id, event="Order Completed", userId="c-1", timestamp=at,
        properties={"order_id": message_id, "total": total, "products": products},
    )  # fmt: skip


def test_computed_traits_add_up_the_orders_and_events(
    client: TestClient, engine: Engine
) -> None:
    viewed = envelope("v-1", userId="c-1", timestamp="2026-10-01T09:00:00+00:00",
                      properties={"sku": "MH01", "category": "Men/Tops"})  # fmt: skip
    redis_client = publish(
        viewed,
        order("o-1", "2026-10-02T10:00:00+00:00", 60.0, "Women/Tops/Jackets"),
        order("o-2", "2026-11-02T10:00:00+00:00", 40.0, "Women/Tops/Jackets"),
    )
    drain(Worker(engine, redis_client))

    body = client.get("/v1/profiles/customer_id:c-1", headers=bearer()).json()

    computed = body["computed"]
    assert (computed["order_count"], computed["revenue"]) == (2, 100.0)
    assert computed["average_order_value"] == 50.0
    assert computed["currency"] == "USD"
    assert computed["first_seen_at"].startswith("2026-10-01T09:00:00")
    assert computed["last_order_at"].startswith("2026-11-02T10:00:00")
    assert computed["favourite_categories"] == ["Women/Tops/Jackets", "Men/Tops"]
    assert computed["channels_used"] == ["website"]


def test_trait_operations_set_set_once_and_unset(
    client: TestClient, engine: Engine
) -> None:
    drain(Worker(engine, publish(envelope("m-1", type="identify", userId="c-1",
          event=None, traits={"first_name": "Ann", "city": "Leipzig"}))))  # fmt: skip
    ops = {
        "set": {"shoe_size": "39"},
        "set_once": {"first_name": "Anna", "first_seen_channel": "web"},
        "unset": ["city"],
    }

    response = client.patch(
        "/v1/profiles/customer_id:c-1/traits", json=ops, headers=bearer()
    )

    assert response.status_code == 200, response.text
    assert response.json()["traits"] == {
        "first_name": "Ann", "shoe_size": "39", "first_seen_channel": "web",
    }  # fmt: skip


def test_unset_trait_is_not_brought_back_by_a_late_event(
    client: TestClient, engine: Engine
) -> None:
    drain(Worker(engine, publish(envelope("m-1", type="identify", userId="c-1",
          event=None, traits={"city": "Leipzig"}))))  # fmt: skip
    client.patch("/v1/profiles/customer_id:c-1/traits", json={"unset": ["city"]},
                 headers=bearer())  # fmt: skip
    late = envelope(
        "m-0", type="identify", userId="c-1", event=None,
        timestamp="2026-01-01T00:00:00+00:00", traits={"city": "Leipzig"},
    )  # fmt: skip

    drain(Worker(engine, publish(late)))

    body = client.get("/v1/profiles/customer_id:c-1", headers=bearer()).json()
    assert "city" not in body["traits"]


def test_latest_consent_per_purpose_is_in_force(
    client: TestClient, engine: Engine
) -> None:
    drain(Worker(engine, publish(envelope("m-1", userId="c-1"))))
    url = "/v1/profiles/customer_id:c-1/consents"
    grant = {"purpose": "email_marketing", "status": "granted", "source": "checkout",
             "version": "2026-01"}  # fmt: skip
    client.post(url, json=grant, headers=bearer())
    client.post(
        url,
        json={"purpose": "whatsapp_marketing", "status": "granted"},
        headers=bearer(),
    )
    withdrawal = {"purpose": "email_marketing", "status": "withdrawn", "source": "chat"}
    withdraw = client.post(url, json=withdrawal, headers=bearer())

    consents = client.get("/v1/profiles/customer_id:c-1", headers=bearer()).json()[
        "consents"
    ]

    assert withdraw.status_code == 201
    assert [(c["purpose"], c["status"]) for c in consents] == [
        ("email_marketing", "withdrawn"), ("whatsapp_marketing", "granted"),
    ]  # fmt: skip


def test_consent_with_an_unknown_lawful_basis_is_a_422_listing_the_accepted(
    client: TestClient, engine: Engine
) -> None:
    drain(Worker(engine, publish(envelope("m-1", userId="c-1"))))

    response = client.post(
        "/v1/profiles/customer_id:c-1/consents",
        json={
            "purpose": "email_marketing",
            "status": "granted",
            "lawful_basis": "because",
        },
        headers=bearer(),
    )

    assert response.status_code == 422
    assert "legitimate_interests" in response.json()["detail"][0]["msg"]


def test_erasure_removes_the_person_and_the_profiles_merged_into_them(
    client: TestClient, engine: Engine
) -> None:
    browsing = envelope("m-1", anonymousId="cookie-1")
    other_person = envelope("m-2", anonymousId="cookie-2")
    login = envelope("m-3", anonymousId="cookie-1", userId="c-1", type="identify",
                     event=None, traits={"email": "ann@example.com"})  # fmt: skip
    drain(Worker(engine, publish(browsing, other_person, login)))

    response = client.delete("/v1/profiles/email:ann@example.com", headers=bearer())

    assert response.status_code == 200, response.text
    assert response.json()["events"] == 2
    assert response.json()["identities"] == 3
    for ref in ("email:ann@example.com", "anonymous_id:cookie-1", "customer_id:c-1"):
        assert client.get(f"/v1/profiles/{ref}", headers=bearer()).status_code == 404
    with Session(engine) as session:
        assert session.exec(select(Event.message_id)).all() == ["m-2"]
        assert len(session.exec(select(Identity)).all()) == 1
        assert len(session.exec(select(Profile)).all()) == 1


def test_a_profile_read_does_not_wait_for_a_writer_and_sees_only_what_was_committed(
    client: TestClient, engine: Engine
) -> None:
    drain(
        Worker(engine, publish(order("o-1", "2026-10-02T10:00:00+00:00", 60.0, "Bags")))
    )
    with Session(engine) as writer:  # a worker batch, half done
        profile = writer.exec(select(Profile)).one()
        profile.traits = {**profile.traits, "first_name": "Ann"}
        writer.add(profile)
        writer.flush()  # on SQLite the writer now holds the database's write turn

        response = client.get("/v1/profiles/customer_id:c-1", headers=bearer())

        assert response.status_code == 200
        assert "first_name" not in response.json()["traits"]
        writer.commit()
    assert (
        client.get(
            "/v1/profiles/customer_id:c-1/identity", headers=bearer()
        ).status_code
        == 200
    )

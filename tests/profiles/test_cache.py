"""The profile read model: cached documents never outlive the change that made
them stale."""

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from events.worker import Worker
from profiles import cache
from tests.conftest import bearer
from tests.events.test_worker import drain, envelope, publish


def read(client: TestClient, ref: str = "anonymous_id:v-1") -> dict:
    response = client.get(f"/v1/profiles/{ref}", headers=bearer())
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_read_is_served_from_the_cache_until_an_event_changes_the_profile(
    client: TestClient, engine: Engine
) -> None:
    drain(Worker(engine, publish(envelope("m-1"))))
    first = read(client)
    cached = cache.lookup("anonymous_id:v-1")

    drain(Worker(engine, publish(envelope("m-2", event="Product Added"))))
    second = read(client)

    assert cached is not None
    assert first["event_count"] == 1
    assert second["event_count"] == 2


def test_api_writes_drop_the_cached_document(
    client: TestClient, engine: Engine
) -> None:
    drain(Worker(engine, publish(envelope("m-1"))))
    read(client)

    client.patch(
        "/v1/profiles/anonymous_id:v-1/traits",
        json={"set": {"city": "Leipzig"}},
        headers=bearer(),
    )
    client.post(
        "/v1/profiles/anonymous_id:v-1/consents",
        json={"purpose": "email_marketing", "status": "granted"},
        headers=bearer(),
    )
    after = read(client)

    assert after["traits"]["city"] == "Leipzig"
    assert [c["purpose"] for c in after["consents"]] == ["email_marketing"]


def test_a_document_built_before_a_change_committed_is_not_kept(
    settings_env: str,
) -> None:
    version = cache.version_of("p-1")
    cache.drop(["p-1"])  # a write commits while the reader builds its document

    cache.keep("email:ann@example.com", "p-1", '{"stale": true}', version)

    assert cache.lookup("email:ann@example.com") is None
    cache.keep(
        "email:ann@example.com", "p-1", '{"fresh": true}', cache.version_of("p-1")
    )
    assert cache.lookup("email:ann@example.com") == '{"fresh": true}'


def test_a_merge_drops_every_reference_that_led_to_either_profile(
    client: TestClient, engine: Engine
) -> None:
    ann = envelope("a-1", anonymousId="phone", userId=None)
    bob = envelope("b-1", anonymousId=None, userId="bob")
    drain(Worker(engine, publish(ann, bob)))
    before = read(client, "anonymous_id:phone")
    read(client, "customer_id:bob")

    link = envelope("x-1", anonymousId="phone", userId="bob", type="identify",
                    event=None, traits={})  # fmt: skip
    drain(Worker(engine, publish(link)))
    by_phone = read(client, "anonymous_id:phone")
    by_old_id = read(client, before["id"])

    assert by_phone["id"] == read(client, "customer_id:bob")["id"]
    assert by_phone["event_count"] == 3
    assert by_old_id["id"] == by_phone["id"]


def test_after_an_unmerge_a_reference_leads_to_the_profile_that_now_has_it(
    client: TestClient, engine: Engine
) -> None:
    ann = envelope("a-1", anonymousId="phone", userId=None)
    bob = envelope("b-1", anonymousId=None, userId="bob")
    link = envelope("x-1", anonymousId="phone", userId="bob", type="identify",
                    event=None, traits={})  # fmt: skip
    drain(Worker(engine, publish(ann, bob)))
    ref_of = {
        read(client, ref)["id"]: ref
        for ref in ("anonymous_id:phone", "customer_id:bob")
    }
    drain(Worker(engine, publish(link)))
    survivor = read(client, "anonymous_id:phone")["id"]
    [other] = set(ref_of) - {survivor}
    assert read(client, ref_of[other])["id"] == survivor  # cached: ref -> survivor

    response = client.post(
        f"/v1/profiles/{survivor}/unmerge",
        json={"other_profile_id": other},
        headers=bearer(),
    )
    read(client, survivor)  # the survivor's document is built again, by its id
    moved_back = read(client, ref_of[other])

    assert response.status_code == 200, response.text
    assert moved_back["id"] == other

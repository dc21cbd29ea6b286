"""Refused and unapplicable messages are kept, listed and replayed; none is lost."""

import redis
from fastapi.testclient import TestClient

from core.settings import get_settings
from events import failed
from tests.conftest import basic, bearer


def redis_client() -> redis.Redis:
    return redis.Redis.from_url(get_settings().redis_url, decode_responses=True)


def test_rejected_message_is_listed_with_its_reason(client: TestClient) -> None:
    client.post("/v1/track", json={"event": "Product Viewed"}, headers=basic())

    response = client.get("/v1/failed-events", headers=bearer())

    assert response.status_code == 200, response.text
    [item] = response.json()["items"]
    assert item["stage"] == "ingest"
    assert item["source"] == "website"
    assert "userId or anonymousId" in item["reason"]
    assert item["payload"]["event"] == "Product Viewed"


def test_rejected_batch_items_are_kept_and_the_good_ones_queued(
    client: TestClient,
) -> None:
    batch = [
        {"type": "track", "anonymousId": "v"},
        {"type": "page", "anonymousId": "v"},
    ]

    client.post("/v1/batch", json={"batch": batch}, headers=basic())

    items = client.get("/v1/failed-events", headers=bearer()).json()["items"]
    assert [i["payload"] for i in items] == [{"type": "track", "anonymousId": "v"}]


def test_replay_of_a_still_invalid_message_keeps_it_and_says_why(
    client: TestClient,
) -> None:
    client.post("/v1/track", json={"event": "x"}, headers=basic())
    [item] = client.get("/v1/failed-events", headers=bearer()).json()["items"]

    response = client.post(f"/v1/failed-events/{item['id']}/replay", headers=bearer())

    assert response.json()["replayed"] is False
    assert "userId or anonymousId" in response.json()["errors"][0]["msg"]
    assert len(client.get("/v1/failed-events", headers=bearer()).json()["items"]) == 1


def test_replay_of_an_unapplied_event_queues_it_again(
    client: TestClient, settings_env: str
) -> None:
    envelope = {"type": "track", "messageId": "m-1", "anonymousId": "v", "event": "x"}
    entry = failed.record(
        redis_client(),
        settings_env,
        envelope,
        stage="apply",
        reason="db down",
        source="web",
    )

    response = client.post(f"/v1/failed-events/{entry}/replay", headers=bearer())

    assert response.json() == {"id": entry, "replayed": True, "errors": []}
    [(_id, fields)] = redis_client().xrange(settings_env)
    assert '"messageId": "m-1"' in fields["payload"]
    assert client.get("/v1/failed-events", headers=bearer()).json()["items"] == []


def test_unknown_failed_event_is_a_404_and_a_bad_id_a_422(client: TestClient) -> None:
    missing = client.post("/v1/failed-events/1-1/replay", headers=bearer())
    malformed = client.get("/v1/failed-events/abc", headers=bearer())

    assert missing.status_code == 404
    assert missing.json()["detail"][0]["type"] == "failed_event_not_found"
    assert malformed.status_code == 422


def test_failed_events_need_the_admin_token(client: TestClient) -> None:
    assert client.get("/v1/failed-events", headers=basic()).status_code == 401


def test_a_lone_surrogate_in_a_refused_message_does_not_break_the_list(
    client: TestClient,
) -> None:
    body = '{"anonymousId": "v", "event": "\\ud800", "properties": "x"}'
    client.post(
        "/v1/track",
        content=body,
        headers={**basic(), "Content-Type": "application/json"},
    )

    response = client.get("/v1/failed-events", headers=bearer())

    assert response.status_code == 200, response.text
    assert response.json()["items"][0]["payload"]["event"] == "?"

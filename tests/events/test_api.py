import json
from datetime import UTC, datetime, timedelta

import redis
from fastapi.testclient import TestClient

from core.settings import get_settings
from tests.conftest import basic


def stream_payloads(stream: str) -> list[dict]:
    client = redis.Redis.from_url(get_settings().redis_url, decode_responses=True)
    return [json.loads(fields["payload"]) for _id, fields in client.xrange(stream)]


def test_track_with_write_key_is_queued(client: TestClient, settings_env: str) -> None:
    body = {
        "anonymousId": "v-1",
        "event": "Product Viewed",
        "properties": {"sku": "WJ06"},
    }

    response = client.post("/v1/track", json=body, headers=basic())

    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 1
    [queued] = stream_payloads(settings_env)
    assert queued["event"] == "Product Viewed"
    assert queued["source"] == "website"


def test_track_without_write_key_is_refused(client: TestClient) -> None:
    response = client.post("/v1/track", json={"anonymousId": "v", "event": "x"})

    assert response.status_code == 401
    assert response.json()["detail"][0]["type"] == "unauthorized"
    assert "write key" in response.json()["detail"][0]["msg"]


def test_track_with_unknown_write_key_is_refused(client: TestClient) -> None:
    response = client.post(
        "/v1/track", json={"anonymousId": "v", "event": "x"}, headers=basic("guess")
    )

    assert response.status_code == 401
    assert response.json()["detail"][0]["msg"] == "unknown write key"


def test_malformed_json_is_a_422_naming_json(client: TestClient) -> None:
    headers = {**basic(), "Content-Type": "application/json"}

    response = client.post("/v1/track", content=b'{"anonymousId": ', headers=headers)

    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"
    assert "not valid JSON" in response.json()["detail"][0]["msg"]


def test_message_without_any_id_is_a_422_saying_which_fields(
    client: TestClient,
) -> None:
    response = client.post(
        "/v1/track", json={"event": "Product Viewed"}, headers=basic()
    )

    assert response.status_code == 422
    assert "userId or anonymousId" in response.json()["detail"][0]["msg"]


def test_wrong_type_is_a_422_with_the_field(client: TestClient) -> None:
    body = {"anonymousId": "v", "event": "x", "properties": "not an object"}

    response = client.post("/v1/track", json=body, headers=basic())

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "properties"]


def test_batch_keeps_good_messages_and_reports_the_bad_one(
    client: TestClient, settings_env: str
) -> None:
    batch = [
        {"type": "page", "anonymousId": "v-1", "name": "Home"},
        {"type": "track", "anonymousId": "v-1"},
        {"type": "identify", "userId": "c-1", "traits": {"email": "a@example.com"}},
    ]

    response = client.post("/v1/batch", json={"batch": batch}, headers=basic())

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] == 2
    assert [r["index"] for r in body["rejected"]] == [1]
    assert "event name" in body["rejected"][0]["errors"][0]["msg"]
    assert [p["type"] for p in stream_payloads(settings_env)] == ["page", "identify"]


def test_event_time_is_corrected_for_a_device_clock_one_hour_ahead(
    client: TestClient, settings_env: str
) -> None:
    device_now = datetime.now(UTC) + timedelta(hours=1)
    body = {
        "anonymousId": "v-1",
        "event": "Product Viewed",
        "timestamp": (device_now - timedelta(seconds=30)).isoformat(),
        "sentAt": device_now.isoformat(),
    }

    client.post("/v1/track", json=body, headers=basic())

    [queued] = stream_payloads(settings_env)
    corrected = datetime.fromisoformat(queued["timestamp"])
    received = datetime.fromisoformat(queued["receivedAt"])
    assert received - corrected == timedelta(seconds=30)
    assert queued["originalTimestamp"].startswith(body["timestamp"][:19])


def test_batch_item_that_is_not_an_object_is_rejected_alone(
    client: TestClient, settings_env: str
) -> None:
    batch = [1, {"type": "track", "userId": 42, "event": "Order Completed"}]

    response = client.post("/v1/batch", json={"batch": batch}, headers=basic())

    assert response.status_code == 200, response.text
    assert (
        response.json()["rejected"][0]["errors"][0]["msg"]
        == "a message must be a JSON object"
    )
    [queued] = stream_payloads(settings_env)
    assert queued["userId"] == "42"


def test_a_clock_far_in_the_future_is_not_believed(
    client: TestClient, settings_env: str
) -> None:
    body = {"userId": "c-1", "event": "x", "timestamp": "2099-01-01T00:00:00Z"}

    client.post("/v1/track", json=body, headers=basic())

    [queued] = stream_payloads(settings_env)
    assert queued["timestamp"] == queued["receivedAt"]
    assert queued["originalTimestamp"].startswith("2099-01-01")

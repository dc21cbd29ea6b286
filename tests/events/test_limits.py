from fastapi.testclient import TestClient

from tests.conftest import basic


def test_message_over_32_kb_is_a_413_naming_the_limit(client: TestClient) -> None:
    body = {"anonymousId": "v", "event": "x", "properties": {"blob": "x" * 33_000}}

    response = client.post("/v1/track", json=body, headers=basic())

    assert response.status_code == 413
    [detail] = response.json()["detail"]
    assert detail["type"] == "message_too_large"
    assert "32768 bytes (32 KB)" in detail["msg"]


def test_batch_over_500_kb_is_a_413(client: TestClient) -> None:
    item = {
        "type": "track",
        "anonymousId": "v",
        "event": "x",
        "properties": {"b": "x" * 30_000},
    }

    response = client.post("/v1/batch", json={"batch": [item] * 18}, headers=basic())

    assert response.status_code == 413
    assert response.json()["detail"][0]["type"] == "batch_too_large"


def test_batch_item_over_32_kb_is_rejected_alone(client: TestClient) -> None:
    big = {
        "type": "track",
        "anonymousId": "v",
        "event": "x",
        "properties": {"b": "x" * 33_000},
    }
    small = {"type": "track", "anonymousId": "v", "event": "x"}

    response = client.post("/v1/batch", json={"batch": [big, small]}, headers=basic())

    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 1
    assert response.json()["rejected"][0]["errors"][0]["type"] == "message_too_large"


def test_ecommerce_property_of_the_wrong_type_is_a_422_naming_it(
    client: TestClient,
) -> None:
    body = {
        "anonymousId": "v",
        "event": "Order Completed",
        "properties": {"order_id": "o-1", "total": "a lot", "products": []},
    }

    response = client.post("/v1/track", json=body, headers=basic())

    assert response.status_code == 422
    [detail] = response.json()["detail"]
    assert detail["loc"] == ["body", "properties", "total"]
    assert "number" in detail["msg"]

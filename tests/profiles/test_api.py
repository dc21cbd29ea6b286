from fastapi.testclient import TestClient

from tests.conftest import bearer


def test_profile_api_needs_the_admin_token(client: TestClient) -> None:
    response = client.get("/v1/profiles/anonymous_id:v-1")

    assert response.status_code == 401
    assert "admin token" in response.json()["detail"][0]["msg"]


def test_unknown_identity_type_is_a_422_listing_the_accepted_types(
    client: TestClient,
) -> None:
    response = client.get("/v1/profiles/shoe_size:42", headers=bearer())

    assert response.status_code == 422
    [detail] = response.json()["detail"]
    assert detail["type"] == "invalid_identity"
    assert detail["loc"] == ["path", "ref"]
    assert "anonymous_id" in detail["msg"]


def test_unknown_profile_is_a_404(client: TestClient) -> None:
    response = client.get("/v1/profiles/email:nobody@example.com", headers=bearer())

    assert response.status_code == 404
    assert response.json()["detail"][0]["type"] == "profile_not_found"


def test_events_paging_rejects_a_negative_offset(client: TestClient) -> None:
    response = client.get("/v1/profiles/x/events?offset=-1", headers=bearer())

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "offset"]


def test_an_unknown_event_type_filter_is_a_422_naming_the_types(
    client: TestClient,
) -> None:
    response = client.get("/v1/profiles/x/events?type=bogus", headers=bearer())

    assert response.status_code == 422
    [detail] = response.json()["detail"]
    assert detail["loc"] == ["query", "type"]
    assert "'track'" in detail["msg"]
    assert "'identify'" in detail["msg"]

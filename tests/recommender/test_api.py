from fastapi.testclient import TestClient

from tests.conftest import basic, bearer


def test_write_key_cannot_read_a_persons_recommendations_by_email(
    client: TestClient,
) -> None:
    response = client.get(
        "/v1/recommendations",
        params={"profile": "email:ann@example.com"},
        headers=basic(),
    )

    assert response.status_code == 401
    assert response.json()["detail"][0]["loc"] == ["query", "profile"]


def test_admin_may_read_recommendations_by_email(client: TestClient) -> None:
    response = client.get(
        "/v1/recommendations",
        params={"profile": "email:ann@example.com"},
        headers=bearer(),
    )

    assert response.status_code == 404  # no such person yet; not refused


def test_huge_offset_is_a_422_not_a_500(client: TestClient) -> None:
    response = client.get("/v1/products", params={"offset": 2**63})

    assert response.status_code == 422

from fastapi.testclient import TestClient
from sqlalchemy import Engine

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


def test_a_tracked_shopper_gets_products_for_their_stage_with_reasons(
    client: TestClient, engine: Engine
) -> None:
    from datetime import UTC, datetime, timedelta

    from events.worker import Worker
    from tests.events.test_worker import drain, envelope, publish

    now = datetime.now(UTC)
    viewed = [
        envelope(f"v-{n}", anonymousId="shopper-1", properties={"sku": sku},
                 timestamp=(now - timedelta(minutes=10 - n)).isoformat())
        for n, sku in enumerate(["WJ06", "WJ04", "WJ01"])
    ]  # fmt: skip
    drain(Worker(engine, publish(*viewed)))

    response = client.get(
        "/v1/recommendations",
        params={"profile": "anonymous_id:shopper-1", "limit": 4},
        headers=basic(),
    )

    body = response.json()
    assert response.status_code == 200, body
    assert (body["strategy"], body["stage"]) == ("comparison", "comparison")
    assert body["stage_reason"] == "viewed 3 products in Women/Tops/Jackets"
    assert len(body["items"]) == 4
    assert all(i["reason"].startswith("like the ") for i in body["items"])


def test_a_product_page_without_a_profile_gets_alternatives_to_that_product(
    client: TestClient,
) -> None:
    response = client.get(
        "/v1/recommendations",
        params={"placement": "product", "sku": "24-MB01", "limit": 3},
        headers=basic(),
    )

    body = response.json()
    assert (body["strategy"], body["stage"]) == ("comparison", "comparison")
    assert all(
        i["product"]["categories"][0] == "Gear/Bags"
        and i["reason"].startswith("like the Joust Duffle Bag you viewed")
        for i in body["items"]
    )


def test_an_unknown_sku_is_a_404_naming_it(client: TestClient) -> None:
    response = client.get(
        "/v1/recommendations", params={"sku": "NOPE-1"}, headers=basic()
    )

    assert response.status_code == 404
    assert response.json()["detail"][0]["loc"] == ["query", "sku"]


def test_search_by_brand_finds_only_that_brand_in_any_case(client: TestClient) -> None:
    def search(brand: str) -> list[dict]:
        response = client.get(
            "/v1/products/search", params={"q": "running shorts", "brand": brand}
        )
        assert response.status_code == 200, response.text
        return [item["product"] for item in response.json()["items"]]

    luma = search("LUMA")
    assert luma
    assert {p["brand"] for p in luma} == {"Luma"}
    assert search("Adidas") == []

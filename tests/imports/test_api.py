import redis
from fastapi.testclient import TestClient

from core.settings import get_settings
from tests.conftest import DEMO_CATALOG, bearer
from tests.imports.conftest import CDNOW


def upload_cdnow(client: TestClient, **data: str) -> dict:
    files = {"file": ("CDNOW_master.txt", CDNOW.read_bytes())}
    response = client.post(
        "/v1/imports/orders", files=files, data=data, headers=bearer()
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_import_orders_upload_is_queued_and_reported(
    client: TestClient, settings_env: str
) -> None:
    report = upload_cdnow(client, mapping="cdnow-orders")

    assert report["file"] == "CDNOW_master.txt"
    assert (report["rows"], report["queued"], report["rejected"]) == (299, 299, 0)
    queued = redis.Redis.from_url(get_settings().redis_url).xlen(settings_env)
    assert queued == 299


def test_import_without_admin_token_is_refused(client: TestClient) -> None:
    files = {"file": ("orders.txt", CDNOW.read_bytes())}

    response = client.post(
        "/v1/imports/orders", files=files, data={"mapping": "cdnow-orders"}
    )

    assert response.status_code == 401, response.text
    assert response.json()["detail"][0]["type"] == "unauthorized"


def test_import_with_uploaded_invalid_mapping_names_its_line(
    client: TestClient,
) -> None:
    mapping = b"kind: orders\nsource: shop\nfile:\n  format: tsv\n"
    files = {
        "file": ("orders.txt", CDNOW.read_bytes()),
        "mapping_file": ("mine.yml", mapping),
    }

    response = client.post("/v1/imports/orders", files=files, headers=bearer())

    assert response.status_code == 422, response.text
    [detail] = response.json()["detail"]
    assert detail["type"] == "invalid_mapping"
    assert detail["msg"].startswith("mine.yml, line 4: file.format: Input should be")


def test_import_with_a_path_for_a_mapping_name_is_refused(
    client: TestClient,
) -> None:
    files = {"file": ("orders.txt", CDNOW.read_bytes())}

    response = client.post(
        "/v1/imports/orders",
        files=files,
        data={"mapping": "../../etc/passwd"},
        headers=bearer(),
    )

    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["type"] == "unknown_mapping"
    assert "shipped: cdnow-orders" in response.json()["detail"][0]["msg"]


def test_import_without_a_mapping_names_the_shipped_ones(client: TestClient) -> None:
    files = {"file": ("orders.txt", CDNOW.read_bytes())}

    response = client.post("/v1/imports/contacts", files=files, headers=bearer())

    assert response.status_code == 422, response.text
    assert "name a mapping in 'mapping' (cdnow-orders, " in response.text


def test_import_unknown_kind_lists_the_kinds(client: TestClient) -> None:
    files = {"file": ("orders.txt", CDNOW.read_bytes())}

    response = client.post(
        "/v1/imports/refunds", files=files, data={"mapping": "x"}, headers=bearer()
    )

    assert response.status_code == 422, response.text
    assert "'orders', 'contacts' or 'store-purchases'" in response.text


def test_import_catalog_upload_twice_changes_nothing_the_second_time(
    client: TestClient,
) -> None:
    files = {"file": ("products.csv", DEMO_CATALOG.read_bytes())}

    first = client.post("/v1/imports/catalog", files=files, headers=bearer())
    second = client.post("/v1/imports/catalog", files=files, headers=bearer())

    assert first.status_code == 200, first.text
    assert (first.json()["created"], second.json()["unchanged"]) == (147, 147)
    assert client.get("/v1/products/WJ06").json()["name"] == "Juno Jacket"


def test_catalog_rows_without_a_brand_get_the_one_the_upload_names(
    client: TestClient,
) -> None:
    rows = DEMO_CATALOG.read_text(encoding="utf-8")

    response = client.post(
        "/v1/imports/catalog",
        files={"file": ("products.csv", rows.encode())},
        data={"brand": "Luma"},
        headers=bearer(),
    )

    assert response.status_code == 200, response.text
    assert client.get("/v1/products/WJ06").json()["brand"] == "Luma"

"""Magento's simple-product layout, review figures, and the shop's stock changes."""

from pathlib import Path

from fastapi.testclient import TestClient
from sqlmodel import Session

from catalog import service
from catalog.demo import DEMO_GEAR, DEMO_REVIEWS
from catalog.importers import read_magento_simple
from tests.conftest import DEMO_CATALOG, basic, bearer


def test_gear_rows_become_products_with_category_paths_and_attribute_lists() -> None:
    bags = {r.sku: r for r in read_magento_simple(DEMO_GEAR[0])}

    duffle = bags["24-MB01"]
    assert (duffle.name, duffle.price, duffle.qty) == ("Joust Duffle Bag", 34.0, 100)
    assert duffle.categories == ["Gear/Bags"]
    assert duffle.attributes["material"] == ["Nylon", "Polyester"]
    assert bags["24-MB04"].categories == ["Gear/Bags", "Collections/Erin Recommends"]
    assert bags["24-MB04"].attributes["erin_recommends"] == "Yes"
    assert "<p>" not in duffle.description


def test_a_bad_gear_row_is_reported_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "gear.csv"
    path.write_text(
        "category,name,sku,price,qty,description\n"
        'Gear,"Good Bag",G-1,10,5,nice\n'
        "Gear,Bad Bag,G-2,ten,5,nope\n"
    )

    results = [str(r) for r in read_magento_simple(path) if not hasattr(r, "sku")]

    assert results == ["line 3: sku 'G-2': price 'ten' is not a number"]


def test_reviews_give_counts_and_averages_and_name_unknown_skus(
    session: Session, tmp_path: Path
) -> None:
    service.import_file(session, DEMO_GEAR[0], fmt="magento-simple")
    path = tmp_path / "reviews.csv"
    path.write_text(
        "sku,rating_value\n24-MB01,5\n24-MB01,4\n24-MB02,2\nNOPE,5\n24-MB02,nine\n"
    )

    report = service.import_reviews(session, path)
    again = service.import_reviews(session, path)

    duffle = service.get_or_raise(session, "24-MB01")
    assert (duffle.review_count, duffle.rating) == (2, 4.5)
    assert report.updated == 2
    assert sorted(report.rejected) == [
        "line 6: rating 'nine' is not a number",
        "sku 'NOPE': no such product in the catalog",
    ]
    assert (again.updated, again.unchanged) == (0, 2)


def test_the_demo_reviews_reach_the_demo_products(session: Session) -> None:
    service.import_file(session, DEMO_CATALOG, fmt="magento")
    for path in DEMO_GEAR:
        service.import_file(session, path, fmt="magento-simple")

    report = service.import_reviews(session, DEMO_REVIEWS)

    assert report.updated == 125


def test_stock_of_a_variant_sets_the_products_stock(
    client: TestClient, session: Session
) -> None:
    service.import_file(session, DEMO_CATALOG, fmt="magento")
    url = "/v1/products/WJ06/stock"
    product = service.get_or_raise(session, "WJ06")
    variants = [v["sku"] for v in product.variants]
    session.rollback()  # the api writes next; this session must not hold a lock

    refused = client.put(url, json={"qty": 0}, headers=basic())
    for sku in variants:
        response = client.put(
            url, json={"qty": 0, "variant_sku": sku}, headers=bearer()
        )
    unknown = client.put(url, json={"qty": 1, "variant_sku": "X"}, headers=bearer())
    negative = client.put(url, json={"qty": -1}, headers=bearer())

    assert refused.status_code == 401
    assert response.status_code == 200
    assert response.json()["in_stock"] is False
    assert unknown.status_code == 404
    assert unknown.json()["detail"][0]["loc"] == ["body", "variant_sku"]
    assert negative.status_code == 422


def test_a_removed_product_is_gone_from_the_shop(
    client: TestClient, session: Session
) -> None:
    service.import_file(session, DEMO_CATALOG, fmt="magento")

    removed = client.delete("/v1/products/WJ06", headers=bearer())

    assert removed.status_code == 204
    assert client.get("/v1/products/WJ06").status_code == 404

from sqlmodel import Session

from catalog import service
from catalog.importers import read_magento
from catalog.models import ProductCreate
from tests.conftest import DEMO_CATALOG


def test_import_same_file_twice_changes_nothing(session: Session) -> None:
    first = service.import_file(session, DEMO_CATALOG, fmt="magento")
    second = service.import_file(session, DEMO_CATALOG, fmt="magento")

    assert (first.created, first.updated) == (147, 0)
    assert (second.created, second.updated, second.unchanged) == (0, 0, 147)


def test_import_changed_price_updates_only_that_product(session: Session) -> None:
    service.import_file(session, DEMO_CATALOG, fmt="magento")
    records = list(read_magento(DEMO_CATALOG))
    for record in records:
        if record.sku == "WJ06":
            record.price = 59.0

    report = service.import_products(session, records)

    assert (report.updated, report.unchanged) == (1, 146)
    assert service.get_or_raise(session, "WJ06").price == 59.0


def test_get_many_finds_the_parent_of_a_variant_sku(session: Session) -> None:
    service.import_file(session, DEMO_CATALOG, fmt="magento")

    found = service.get_many(session, ["WJ06-M-Blue", "WJ06", "NOPE"])

    assert found["WJ06-M-Blue"].sku == "WJ06"
    assert found["WJ06"].name == "Juno Jacket"
    assert "NOPE" not in found


def test_a_default_brand_leaves_the_brand_a_row_names(session: Session) -> None:
    own, other = (
        ProductCreate(sku=sku, name=sku, url_key=sku, price=10.0, attributes=attributes)
        for sku, attributes in (("OWN", {}), ("OTHER", {"manufacturer": "Riverline"}))
    )

    service.import_products(
        session, [service.with_brand(own, "Luma"), service.with_brand(other, "Luma")]
    )

    assert service.get_or_raise(session, "OWN").brand == "Luma"
    assert service.get_or_raise(session, "OTHER").brand == "Riverline"

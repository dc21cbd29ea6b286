from pathlib import Path

import pytest

from catalog.importers import RowError, read_catalog, read_magento
from catalog.models import ProductCreate
from tests.conftest import DEMO_CATALOG


def test_read_magento_demo_catalog_folds_variants_into_visible_products() -> None:
    records = list(read_magento(DEMO_CATALOG))

    products = {r.sku: r for r in records if isinstance(r, ProductCreate)}
    assert [r for r in records if isinstance(r, RowError)] == []
    assert len(products) == 147
    juno = products["WJ06"]
    assert juno.name == "Juno Jacket"
    assert juno.price == 77.0
    assert "Women/Tops/Jackets" in juno.categories
    assert {v["size"] for v in juno.variants} == {"XS", "S", "M", "L", "XL"}
    assert "<" not in juno.description
    assert "&bull;" not in juno.description
    assert "Default Category" not in " ".join(juno.categories)


def test_read_magento_entities_in_names_are_decoded() -> None:
    names = {r.name for r in read_magento(DEMO_CATALOG) if isinstance(r, ProductCreate)}

    assert "Mars HeatTech™ Pullover" in names
    assert not any(name != name.strip() for name in names)


def test_read_magento_bad_row_is_reported_with_its_line_and_the_rest_imported(
    tmp_path: Path,
) -> None:
    source = tmp_path / "export.csv"
    source.write_text(
        "sku,name,price,visibility,categories,url_key\n"
        'A1,Good tee,20,"Catalog, Search",Default Category/Men/Tops/Tees,good-tee\n'
        'A2,Bad tee,twenty,"Catalog, Search",Default Category/Men/Tops/Tees,bad-tee\n'
        ',No sku,10,"Catalog, Search",,\n'
    )

    records = list(read_magento(source))

    good = [r for r in records if isinstance(r, ProductCreate)]
    errors = [str(r) for r in records if isinstance(r, RowError)]
    assert [p.sku for p in good] == ["A1"]
    assert "line 4: sku is empty" in errors
    assert "line 3: sku 'A2': price 'twenty' is not a number" in errors


def test_read_catalog_unknown_format_names_the_accepted_ones() -> None:
    with pytest.raises(ValueError, match="accepted: magento"):
        read_catalog(DEMO_CATALOG, "shopify")

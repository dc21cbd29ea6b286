"""The NLU vocabulary is built from the catalog and follows it."""

import json
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session
from typer.testing import CliRunner

from assistant import vocabulary as vocabulary_module
from assistant.errors import EmptyCatalogError
from assistant.nlu.catalog_terms import VOCABULARY_PATH
from assistant.vocabulary import (
    VocabularyPublisher,
    build_vocabulary,
    dumps,
    export_vocabulary,
)
from catalog import service
from catalog.models import Product, ProductCreate


def make_product(**overrides: Any) -> ProductCreate:
    fields: dict[str, Any] = {
        "sku": "WJ99",
        "name": "Nova Trail Jacket",
        "url_key": "nova-trail-jacket",
        "categories": ["Women/Tops/Jackets", "Collections/Eco Friendly"],
        "price": 80.0,
        "attributes": {"material": ["Nylon", "CoolTech™"]},
        "variants": [
            {"sku": "WJ99-S-Teal", "size": "S", "color": "Teal", "qty": 5},
            {"sku": "WJ99-XL-Blue", "size": "XL", "color": "Blue", "qty": 5},
        ],
    }
    return ProductCreate(**{**fields, **overrides})


def test_committed_vocabulary_is_the_demo_catalogs(
    demo_products: list[Product],
) -> None:
    expected = dumps(build_vocabulary(demo_products))

    assert VOCABULARY_PATH.read_text(encoding="utf-8") == expected, (
        "assistant/nlu/vocabulary.json is stale: import the demo catalog and run "
        "`cdp assistant vocabulary`"
    )


def test_export_writes_the_catalogs_own_terms(session: Session, tmp_path: Path) -> None:
    service.import_products(session, [make_product()])
    path = tmp_path / "vocabulary.json"

    vocabulary = export_vocabulary(session, path)

    entities = json.loads(path.read_text())["entities"]
    assert entities == vocabulary["entities"]
    assert set(entities["category"]) == {"top", "jacket"}
    assert {"jacket", "jackets", "windbreaker"} <= set(entities["category"]["jacket"])
    assert entities["gender"]["women"][:3] == ["female", "females", "girls"]
    assert set(entities["color"]) == {"teal", "blue"}
    assert "navy" in entities["color"]["blue"]
    assert set(entities["size"]) == {"S", "XL"}
    assert set(entities["material"]) == {"nylon", "cooltech"}
    assert entities["product"]["Nova Trail Jacket"] == [
        "nova jacket",
        "nova trail jacket",
    ]


def test_export_adds_no_synonyms_for_what_the_catalog_lacks(
    session: Session, tmp_path: Path
) -> None:
    service.import_products(session, [make_product()])

    vocabulary = export_vocabulary(session, tmp_path / "vocabulary.json")

    # Occasions are the shopper's language ("backpacking"), the same in every shop.
    every_term = json.dumps(
        {k: v for k, v in vocabulary["entities"].items() if k != "occasion"}
    )
    assert "wristwatch" not in every_term
    assert "backpack" not in every_term
    assert "collection" not in every_term  # marketing categories are no kind


def test_export_drops_a_term_two_products_share(
    session: Session, tmp_path: Path
) -> None:
    twins = [
        make_product(sku="MT1", name="Ryker Tee (Crew-neck)", url_key="r1"),
        make_product(sku="MT2", name="Ryker Tee (V-neck)", url_key="r2"),
    ]
    service.import_products(session, twins)

    vocabulary = export_vocabulary(session, tmp_path / "vocabulary.json")

    assert vocabulary["entities"]["product"] == {
        "Ryker Tee (Crew-neck)": ["ryker tee crew-neck"],
        "Ryker Tee (V-neck)": ["ryker tee v-neck"],
    }


def test_export_refuses_an_empty_catalog(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "vocabulary.json"

    with pytest.raises(EmptyCatalogError, match="cdp import catalog"):
        export_vocabulary(session, path)

    assert not path.exists()


def test_cli_writes_the_vocabulary_of_the_database_catalog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cli.main import app
    from core import db
    from core.settings import get_settings

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cdp.db'}")
    get_settings.cache_clear()
    db.get_engine.cache_clear()
    runner = CliRunner()
    out = tmp_path / "vocabulary.json"
    try:
        empty = runner.invoke(app, ["assistant", "vocabulary", "--out", str(out)])
        with Session(db.get_engine()) as session:
            service.import_products(session, [make_product()])
        written = runner.invoke(app, ["assistant", "vocabulary", "--out", str(out)])
    finally:
        db.get_engine().dispose()
        get_settings.cache_clear()
        db.get_engine.cache_clear()

    assert empty.exit_code == 1, empty.output
    assert written.exit_code == 0, written.output
    assert "1 products read" in written.output
    assert "Nova Trail Jacket" in json.loads(out.read_text())["entities"]["product"]


def test_publishing_writes_the_vocabulary_again_only_when_the_catalog_changed(
    session: Session, tmp_path: Path
) -> None:
    path = tmp_path / "assistant" / "vocabulary.json"
    publisher = VocabularyPublisher(path)
    service.import_products(session, [make_product()])

    assert publisher.publish(session) is True
    first = path.stat().st_mtime_ns
    assert publisher.publish(session) is False  # same catalog, same file
    assert path.stat().st_mtime_ns == first

    kayak = make_product(
        sku="KY01", name="Riverline Touring Kayak", url_key="riverline",
        categories=["Gear/Kayaks"], variants=[],
    )  # fmt: skip
    service.import_products(session, [kayak])

    assert publisher.publish(session) is True
    entities = json.loads(path.read_text())["entities"]
    assert {"kayak", "kayaks"} <= set(entities["category"]["kayak"])
    assert "Riverline Touring Kayak" in entities["product"]
    assert [p.name for p in path.parent.iterdir()] == ["vocabulary.json"]


def test_publishing_an_empty_catalog_keeps_the_words_the_assistant_has(
    session: Session, tmp_path: Path
) -> None:
    path = tmp_path / "vocabulary.json"
    path.write_text('{"entities": {"color": {"red": ["red"]}}}')

    assert VocabularyPublisher(path).publish(session) is False
    assert json.loads(path.read_text())["entities"] == {"color": {"red": ["red"]}}


def test_a_stock_change_does_not_build_the_vocabulary_again(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service.import_products(session, [make_product()])
    publisher = VocabularyPublisher(tmp_path / "vocabulary.json")
    publisher.publish(session)
    builds: list[int] = []
    real_build = vocabulary_module.build_vocabulary

    def counted(products: Any) -> dict[str, Any]:
        builds.append(1)
        return real_build(products)

    monkeypatch.setattr(vocabulary_module, "build_vocabulary", counted)
    [product] = service.list_active(session)
    product.qty, product.price = 0, 60.0

    assert publisher.catalog_changed(session, [product]) is False
    assert builds == []

    product.categories = [*product.categories, "Gear/Kayaks"]
    session.add(product)
    session.commit()

    assert publisher.catalog_changed(session, [product]) is True
    assert builds == [1]
    assert "kayak" in json.loads(publisher.path.read_text())["entities"]["category"]

    product.attributes = {**product.attributes, "activity": ["Kayaking"]}
    session.add(product)
    session.commit()

    assert publisher.catalog_changed(session, [product]) is True
    assert "kayaking" in json.loads(publisher.path.read_text())["entities"]["occasion"]


def test_every_shop_knows_gift_occasions_and_its_own_activities(
    session: Session, tmp_path: Path
) -> None:
    bag = make_product(
        sku="GB1", name="Overnight Duffle", url_key="duffle",
        categories=["Gear/Bags"], attributes={"activity": ["Travel", "Urban"]},
    )  # fmt: skip
    service.import_products(session, [bag])

    occasions = export_vocabulary(session, tmp_path / "v.json")["entities"]["occasion"]

    assert {"xmas", "secret santa"} <= set(occasions["christmas"])
    assert "urban" in occasions  # the catalog's own activity
    assert "trip" in occasions["travel"]


def test_brands_the_shop_carries_come_from_the_catalog_and_others_from_the_list(
    session: Session, tmp_path: Path
) -> None:
    service.import_products(
        session,
        [
            make_product(sku="A1", url_key="a1", attributes={"manufacturer": "LEVI'S"}),
            make_product(
                sku="A2", name="Other Tee", url_key="a2", attributes={"brand": "Levi's"}
            ),
            make_product(
                sku="A3",
                name="Third Tee",
                url_key="a3",
                attributes={"vendor": "Riverline"},
            ),
        ],
    )

    brands = export_vocabulary(session, tmp_path / "v.json")["entities"]["brand"]

    # Carried: the catalog's spelling, one value whatever the case, no list
    # duplicate, with the list's spellings ("levi") as well.
    assert brands["LEVI'S"] == ["levi", "levi's", "levis"]
    assert "Levi's" not in brands
    assert brands["Riverline"] == ["riverline"]
    # Not carried, but a shopper may ask for it.
    assert brands["The North Face"] == ["north face", "the north face"]
    assert "adidas" in brands["Adidas"]


def test_a_new_brand_in_the_catalog_publishes_the_vocabulary_again(
    session: Session, tmp_path: Path
) -> None:
    service.import_products(session, [make_product()])
    publisher = VocabularyPublisher(tmp_path / "v.json")
    publisher.publish(session)
    product = session.get(Product, "WJ99")
    assert product is not None

    product.attributes = {**product.attributes, "brand": "Riverline"}
    session.add(product)
    session.commit()

    assert publisher.catalog_changed(session, [product]) is True
    assert "Riverline" in json.loads(publisher.path.read_text())["entities"]["brand"]

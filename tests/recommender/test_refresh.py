"""Catalog changes reach the index without a rebuild: a changed text is embedded
again (only that product), a sold-out or removed product stops being returned."""

from uuid import uuid4

import pytest
from sqlmodel import Session

from catalog import service as catalog
from catalog.models import Product, StockUpdate
from recommender.models import Filters
from recommender.service import Recommender


class CountingEmbedder:
    def __init__(self, real) -> None:  # type: ignore[no-untyped-def]
        self.real, self.dim, self.tag, self.texts = real, real.dim, real.tag, []

    def encode(self, texts, progress=False):  # type: ignore[no-untyped-def]
        self.texts.extend(texts)
        return self.real.encode(texts)


@pytest.fixture
def live(session: Session, embedder, demo_products, vector_cache_dir, recommender):  # type: ignore[no-untyped-def]
    for product in demo_products:
        session.add(Product(**product.model_dump()))
    session.commit()
    # The shared recommender has filled the embedding cache: nothing to embed here.
    counting = CountingEmbedder(embedder)
    own = Recommender(counting, vector_cache_dir)  # type: ignore[arg-type]
    own.build(catalog.list_active(session))
    assert counting.texts == []
    return own, counting


def skus(result) -> list[str]:  # type: ignore[no-untyped-def]
    return [item.product.sku for item in result.items]


def test_a_sold_out_product_stops_being_returned_after_a_refresh(
    session: Session, live
) -> None:  # type: ignore[no-untyped-def]
    recommender, counting = live
    top = skus(recommender.search("duffle bag", Filters(), limit=3))[0]

    catalog.set_stock(session, top, StockUpdate(qty=0))
    counting.texts.clear()
    changed = recommender.refresh(session)

    assert changed == 1
    assert counting.texts == []  # stock is not text: nothing embedded again
    assert top not in skus(recommender.search("duffle bag", Filters(), limit=10))


def test_a_removed_product_is_never_returned_even_when_stock_is_ignored(
    session: Session, live
) -> None:  # type: ignore[no-untyped-def]
    recommender, _ = live

    catalog.remove(session, "24-MB01")
    recommender.refresh(session)

    everything = Filters(in_stock=False)
    assert "24-MB01" not in skus(recommender.search("duffle bag", everything, limit=20))
    assert recommender.index.get("24-MB01") is None


def test_a_changed_description_is_embedded_again_and_found_by_its_new_words(
    session: Session, live
) -> None:  # type: ignore[no-untyped-def]
    recommender, counting = live
    product = session.get(Product, "24-UG06")
    assert product is not None
    # A text no earlier test embedded, so the shared cache cannot answer for it.
    product.description = f"A snorkel mask for diving on coral reefs, {uuid4()}."
    product.content_hash, product.updated_at = "changed", catalog.utcnow()
    session.add(product)
    session.commit()

    recommender.refresh(session)

    assert len(counting.texts) == 1
    assert "snorkel" in counting.texts[0]
    found = recommender.search("snorkel mask for diving", Filters(), limit=1)
    assert skus(found) == ["24-UG06"]
    assert len(recommender.index) == 179  # replaced, not duplicated


def test_a_refresh_with_no_change_does_nothing(session: Session, live) -> None:  # type: ignore[no-untyped-def]
    recommender, counting = live

    assert recommender.refresh(session) == 0
    assert recommender.refresh(session) == 0
    assert counting.texts == []

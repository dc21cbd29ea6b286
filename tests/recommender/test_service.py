"""The recommender with the real model: faiss against brute force, filters, search."""

import numpy as np
import pytest

from recommender.embeddings import VectorCache
from recommender.models import Filters
from recommender.service import Recommender


def brute_force(recommender: Recommender, vector: np.ndarray, k: int) -> list[int]:
    scores = recommender.index.vectors @ vector
    return [int(i) for i in np.argsort(-scores, kind="stable")[:k]]


def test_index_search_equals_brute_force_top_k(recommender: Recommender) -> None:
    query = recommender.embedder.encode(["warm fleece jacket for hiking"])[0]

    found = [i for i, _score in recommender.index.search(query, k=10)]

    assert found == brute_force(recommender, query, 10)


@pytest.mark.parametrize(
    ("filters", "check"),
    [
        (Filters(category="Women"), lambda p: p.categories[0].startswith("Women")),
        (Filters(max_price=30), lambda p: p.price <= 30),
        (Filters(color="Purple"), lambda p: "Purple" in p.colors),
        (Filters(size="XS", category="Jackets"), lambda p: "XS" in p.sizes),
    ],
)
def test_search_results_respect_the_filters(
    recommender: Recommender, filters, check
) -> None:  # type: ignore[no-untyped-def]
    result = recommender.search("something for training", filters, limit=10)

    assert result.items
    assert all(check(item.product) for item in result.items)


def test_search_for_a_womens_jacket_returns_womens_jackets(
    recommender: Recommender,
) -> None:
    result = recommender.search("waterproof jacket", Filters(category="Women"), limit=3)

    assert all(
        item.product.categories[0] == "Women/Tops/Jackets" for item in result.items
    )


def test_search_for_a_colour_puts_products_in_that_colour_first(
    recommender: Recommender,
) -> None:
    result = recommender.search("red hoodie", Filters(), limit=3)

    assert all("Red" in item.product.colors for item in result.items)


def test_search_finds_gear_by_what_it_is_for(recommender: Recommender) -> None:
    result = recommender.search("bag for the gym", Filters(), limit=3)

    assert all(item.product.categories[0] == "Gear/Bags" for item in result.items)


def test_vector_cache_embeds_only_texts_it_has_not_seen(
    recommender: Recommender, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    calls: list[int] = []
    real_encode = recommender.embedder.encode

    class CountingEmbedder:
        dim = recommender.embedder.dim

        def encode(self, texts, progress=False):  # type: ignore[no-untyped-def]
            calls.append(len(texts))
            return real_encode(texts)

    VectorCache(tmp_path, "t").embed(
        CountingEmbedder(), ["a red tee", "blue pants"], progress=False
    )
    again = VectorCache(tmp_path, "t").embed(
        CountingEmbedder(), ["blue pants", "green shorts"], progress=False
    )

    assert calls == [2, 1]
    assert np.allclose(again[0], real_encode(["blue pants"])[0], atol=1e-5)

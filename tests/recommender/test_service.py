"""The recommender with the real model, checked against brute-force search."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from recommender.embeddings import VectorCache
from recommender.models import Filters
from recommender.service import Recommender, Viewed


def brute_force(recommender: Recommender, vector: np.ndarray, k: int) -> list[int]:
    scores = recommender.index.vectors @ vector
    return [int(i) for i in np.argsort(-scores, kind="stable")[:k]]


def by_sku(recommender: Recommender, sku: str):  # type: ignore[no-untyped-def]
    return recommender.index.products[recommender.index.position[sku]]


def test_index_search_equals_brute_force_top_k(recommender: Recommender) -> None:
    query = recommender.embedder.encode(["warm fleece jacket for hiking"])[0]

    found = [i for i, _score in recommender.index.search(query, k=10)]

    assert found == brute_force(recommender, query, 10)


def test_recommend_after_one_view_returns_its_nearest_neighbours_first(
    recommender: Recommender,
) -> None:
    juno = by_sku(recommender, "WJ06")
    vector = recommender.index.vectors[recommender.index.position["WJ06"]]
    unfiltered = Filters(in_stock=False)

    result = recommender.recommend(
        [Viewed(juno, datetime.now(UTC))], unfiltered, limit=5
    )

    expected = [
        recommender.index.products[i].sku for i in brute_force(recommender, vector, 6)
    ]
    assert [item.product.sku for item in result.items] == expected[
        1:
    ]  # itself excluded
    assert result.items[0].reason == "similar to the Juno Jacket you viewed"


def test_recommend_weights_the_recent_view_over_an_old_one(
    recommender: Recommender,
) -> None:
    now = datetime.now(UTC)
    history = [
        Viewed(by_sku(recommender, "MSH02"), now),  # men's shorts, just now
        Viewed(by_sku(recommender, "WJ06"), now - timedelta(days=10)),
    ]

    result = recommender.recommend(history, Filters(), limit=3)

    assert all("Shorts" in item.product.categories[0] for item in result.items)


def test_recommend_without_history_spreads_across_categories(
    recommender: Recommender,
) -> None:
    result = recommender.recommend([], Filters(), limit=4)

    assert result.strategy == "browse_categories"
    assert len({item.product.categories[0] for item in result.items}) == 4


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

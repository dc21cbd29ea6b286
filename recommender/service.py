"""Ranking products for a query or a profile. No HTTP here."""

import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from pydantic import ValidationError
from sqlmodel import Session

from catalog import service as catalog
from catalog.models import Product, ProductPublic
from events.ecommerce import parse_fact, product_keys
from profiles import service as profiles
from profiles.models import Profile
from recommender.embeddings import Embedder, VectorCache
from recommender.index import ProductIndex, product_text, words
from recommender.models import Filters, Recommendation, RecommendationList

logger = logging.getLogger(__name__)

# Events whose product counts as something the profile looked at or bought.
HISTORY_EVENTS = (
    "Product Viewed",
    "Product Clicked",
    "Product Added",
    "Order Completed",
)
HALF_LIFE_HOURS = 24.0
# How much an exact word match adds to a cosine similarity (0..1).
LEXICAL_WEIGHT = 0.15
_STOPWORDS = words(
    "a an and any are do does for have i in is it me of on or please show some "
    "something that the there to under with you your looking need want find buy"
)


@dataclass(frozen=True)
class Viewed:
    product: Product
    at: datetime


class Recommender:
    def __init__(self, embedder: Embedder, cache_dir: Path) -> None:
        self.embedder = embedder
        self.cache = VectorCache(cache_dir, embedder.tag)
        self.index = ProductIndex.build(
            [], np.zeros((0, embedder.dim), dtype=np.float32)
        )

    def build(self, products: list[Product], *, progress: bool = False) -> None:
        texts = [product_text(p) for p in products]
        vectors = self.cache.embed(self.embedder, texts, progress=progress)
        self.index = ProductIndex.build(products, vectors)

    def search(
        self, query: str, filters: Filters, *, limit: int = 10
    ) -> RecommendationList:
        query_vector = self.embedder.encode([query])[0]
        query_words = words(query) - _STOPWORDS
        scored = []
        for position, similarity in self.index.search(
            query_vector, k=max(100, limit * 10)
        ):
            product = self.index.products[position]
            if not matches(product, filters):
                continue
            score = similarity + LEXICAL_WEIGHT * self._word_overlap(
                query_words, position
            )
            scored.append((score, product))
        scored.sort(key=lambda pair: pair[0], reverse=True)
        items = [
            Recommendation(
                product=ProductPublic.of(p),
                score=round(s, 4),
                reason=f"matches '{query}'",
            )
            for s, p in scored[:limit]
        ]
        return RecommendationList(strategy="search", items=items)

    def recommend(
        self, history: list[Viewed], filters: Filters, *, limit: int = 6
    ) -> RecommendationList:
        known = [v for v in history if v.product.sku in self.index.position]
        if not known:
            return self._browse(filters, limit)
        vectors = np.stack(
            [self.index.vectors[self.index.position[v.product.sku]] for v in known]
        )
        weights = np.array([_recency_weight(v.at) for v in known], dtype=np.float32)
        profile_vector = (weights[:, None] * vectors).sum(axis=0)
        profile_vector /= np.linalg.norm(profile_vector) or 1.0
        seen = {v.product.sku for v in known}
        items = []
        for position, score in self.index.search(
            profile_vector, k=limit + len(seen) + 50
        ):
            product = self.index.products[position]
            if product.sku in seen or not matches(product, filters):
                continue
            closest = known[int(np.argmax(vectors @ self.index.vectors[position]))]
            reason = f"similar to the {closest.product.name} you viewed"
            items.append(
                Recommendation(
                    product=ProductPublic.of(product),
                    score=round(score, 4),
                    reason=reason,
                )
            )
            if len(items) == limit:
                break
        return RecommendationList(strategy="similar_to_history", items=items)

    def _browse(self, filters: Filters, limit: int) -> RecommendationList:
        """No history yet: breadth, one product per category in turn."""
        by_category: dict[str, list[Product]] = {}
        for product in self.index.products:
            if matches(product, filters):
                by_category.setdefault(product.top_category, []).append(product)
        items: list[Recommendation] = []
        queues = list(by_category.items())
        while queues and len(items) < limit:
            category, products = queues.pop(0)
            product = products.pop(0)
            items.append(
                Recommendation(
                    product=ProductPublic.of(product),
                    score=0.0,
                    reason=f"from our {category} range",
                )
            )
            if products:
                queues.append((category, products))
        return RecommendationList(strategy="browse_categories", items=items)

    def _word_overlap(self, query_words: set[str], position: int) -> float:
        if not query_words:
            return 0.0
        product_words = self.index.words[position]
        hits = sum(1 for w in query_words if _word_hit(w, product_words))
        return hits / len(query_words)


def _word_hit(word: str, product_words: set[str]) -> bool:
    """Exact, or a prefix of a longer word ("jacket" finds "jackets")."""
    if word in product_words:
        return True
    return len(word) > 3 and any(p.startswith(word) for p in product_words)


def matches(product: Product, filters: Filters) -> bool:
    if filters.in_stock and not product.in_stock:
        return False
    if filters.min_price is not None and product.price < filters.min_price:
        return False
    if filters.max_price is not None and product.price > filters.max_price:
        return False
    if filters.category and not _in_category(product, filters.category):
        return False
    if filters.color and filters.color.lower() not in {
        c.lower() for c in product.colors
    }:
        return False
    return not (
        filters.size and filters.size.upper() not in {s.upper() for s in product.sizes}
    )


def _in_category(product: Product, wanted: str) -> bool:
    wanted = wanted.strip("/").lower()
    for path in product.categories:
        segments = [s.lower() for s in path.split("/")]
        if path.lower().startswith(wanted) or wanted in segments:
            return True
    return False


def history_of(session: Session, profile: Profile, *, limit: int = 50) -> list[Viewed]:
    """The products a profile viewed, added or bought, newest first."""
    viewed: list[tuple[str, datetime]] = []
    for event in profiles.list_events(session, profile, limit=200, event_type="track"):
        if event.name not in HISTORY_EVENTS:
            continue
        for sku in _event_skus(event.name, event.properties):
            viewed.append((sku, event.timestamp))
    products = catalog.get_many(session, {sku for sku, _ in viewed})
    return [Viewed(products[sku], at) for sku, at in viewed if sku in products][:limit]


def _event_skus(event_name: str | None, properties: dict) -> list[str]:
    try:
        return product_keys(parse_fact(event_name, properties))
    except ValidationError:
        return []  # stored before validation was as strict; nothing to learn from


def _recency_weight(at: datetime) -> float:
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    age_hours = max((datetime.now(UTC) - at).total_seconds() / 3600, 0.0)
    return math.pow(0.5, age_hours / HALF_LIFE_HOURS)

"""Ranking products for a query or a profile, and keeping the index in step with
the catalog. No HTTP here."""

import logging
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from pydantic import ValidationError
from sqlmodel import Session, col, select

from catalog import service as catalog
from catalog.models import Product, ProductPublic
from context import service as context_data
from context.models import WEATHER_FACTS
from events.ecommerce import parse_fact, product_keys
from profiles import service as profiles
from profiles.models import Event, Profile
from recommender.embeddings import Embedder, VectorCache
from recommender.index import ProductIndex, product_text, words
from recommender.models import Filters, Recommendation, RecommendationList
from recommender.strategies import (
    Interaction,
    Leaders,
    Ranker,
    Shopper,
    matches,
    orientation_leaders,
    true_cues,
    weather_boosts,
)
from segments import stages
from segments.stages import Stage, StageResult

logger = logging.getLogger(__name__)

KIND_OF_EVENT = {
    "Product Viewed": "viewed",
    "Product Clicked": "viewed",
    "Product Added": "added",
    "Order Completed": "bought",
}
# What an interaction is worth to popularity.
POPULARITY_WEIGHT = {"viewed": 1.0, "added": 3.0, "bought": 5.0}
POPULARITY_DAYS = 30
# Popularity reads at most this many recent events, so it stays cheap in a big shop.
POPULARITY_EVENTS = 100_000
# Catalog polls look back this far past the last change seen, so a transaction that
# committed late with an older timestamp is still picked up.
REFRESH_OVERLAP = timedelta(seconds=30)
# How often the refresh compares the whole catalog even when nothing seems changed.
FULL_CHECK_SECONDS = 300.0
# Above this share of retired positions the index is rebuilt from scratch.
REBUILD_SHARE = 0.25
# How much an exact word match adds to a cosine similarity (0..1).
LEXICAL_WEIGHT = 0.15
_STOPWORDS = words(
    "a an and any are do does for have i in is it me of on or please show some "
    "something that the there to under with you your looking need want find buy"
)


class Recommender:
    def __init__(self, embedder: Embedder, cache_dir: Path) -> None:
        self.embedder = embedder
        self.cache = VectorCache(cache_dir, embedder.tag)
        self.index = ProductIndex.build(
            [], np.zeros((0, embedder.dim), dtype=np.float32)
        )
        self._popularity: dict[str, float] = {}
        self._seen_until: datetime | None = None
        self._fingerprints: dict[str, tuple] = {}
        self._catalog_stats: tuple | None = None
        self._last_full_check = 0.0
        self._leaders: Leaders | None = None
        # The products the last refresh changed (detached), for others who follow
        # the catalog with the index: the assistant's vocabulary.
        self.last_changed: list[Product] = []

    def build(self, products: list[Product], *, progress: bool = False) -> None:
        live = [p for p in products if p.active]
        texts = [product_text(p) for p in live]
        vectors = self.cache.embed(self.embedder, texts, progress=progress)
        self.index = ProductIndex.build(live, vectors, texts)
        self._fingerprints = {p.sku: _fingerprint(p) for p in products}
        self._seen_until = max((p.updated_at for p in products), default=None)
        self._last_full_check = time.monotonic()
        self._leaders = None

    @property
    def popularity(self) -> dict[str, float]:
        return self._popularity

    @popularity.setter
    def popularity(self, counts: dict[str, float]) -> None:
        self._popularity = counts
        self._leaders = None  # orientation's order follows popularity

    def refresh(self, session: Session) -> int:
        """Bring the index up to date with catalog changes since the last call;
        returns how many products changed. A changed text is embedded again (only
        that product), a stock or price change is swapped in place, a removed
        product stops being returned."""
        # Most polls find nothing: two aggregates say so without reading products.
        # Every few minutes the whole catalog is compared anyway, for a change that
        # committed late with an older timestamp than one already seen.
        stats = catalog.change_stats(session)
        full = time.monotonic() - self._last_full_check >= FULL_CHECK_SECONDS
        if stats == self._catalog_stats and not full:
            return 0
        since = (
            None
            if full or self._seen_until is None
            else (self._seen_until - REFRESH_OVERLAP)
        )
        if full:
            self._last_full_check = time.monotonic()
        changed = [
            p
            for p in catalog.changed_since(session, since)
            if self._fingerprints.get(p.sku) != _fingerprint(p)
        ]
        self._catalog_stats = stats
        if not changed:
            return 0
        for product in changed:
            session.expunge(product)
        self.last_changed = changed
        fresh, texts = [], []
        for product in changed:
            if not product.active:
                self.index.retire(product.sku)
                continue
            text = product_text(product)
            position = self.index.position.get(product.sku)
            if position is not None and self.index.texts[position] == text:
                self.index.replace(product)
            else:
                fresh.append(product)
                texts.append(text)
        if fresh:
            self.index.add(
                fresh, self.cache.embed(self.embedder, texts, progress=False), texts
            )
        for product in changed:
            self._fingerprints[product.sku] = _fingerprint(product)
        self._leaders = None
        newest = max(p.updated_at for p in changed)
        self._seen_until = max(newest, self._seen_until or newest)
        if self.index.retired > REBUILD_SHARE * max(len(self.index), 1):
            live = [self.index.products[i] for i in self.index.position.values()]
            self.build(live)
        logger.info(
            "index refreshed",
            extra={"changed": len(changed), "embedded": len(fresh)},
        )
        return len(changed)

    def refresh_popularity(self, session: Session) -> None:
        """Weighted views, cart adds and orders per product over the last 30 days."""
        since = datetime.now(UTC) - timedelta(days=POPULARITY_DAYS)
        rows = session.exec(
            select(Event.name, Event.properties)
            .where(col(Event.name).in_(KIND_OF_EVENT), Event.timestamp >= since)
            .order_by(col(Event.timestamp).desc())
            .limit(POPULARITY_EVENTS)
        )
        counts: Counter[str] = Counter()
        for name, properties in rows:
            weight = POPULARITY_WEIGHT[KIND_OF_EVENT[name]]
            for sku in _event_skus(name, properties):
                product = self.index.get(sku)
                if product is not None:
                    counts[product.sku] += weight
        self.popularity = dict(counts)

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
                cues=true_cues(p),
            )
            for s, p in scored[:limit]
        ]
        return RecommendationList(strategy="search", items=items)

    def recommend(
        self,
        shopper: Shopper,
        filters: Filters,
        *,
        limit: int = 6,
        stage: Stage | None = None,
    ) -> RecommendationList:
        """Products for the shopper's buying stage, or for ``stage`` when given."""
        wanted = stage or shopper.stage.stage
        if stage is not None and stage != shopper.stage.stage:
            reason = f"asked for {stage}; the profile is in {shopper.stage.stage}"
        else:
            reason = shopper.stage.reason
        ranker = Ranker(self.index, self.popularity, leaders=self._leaders)
        if self._leaders is None:
            # The same for everyone until the catalog or popularity changes.
            ranker.leaders = self._leaders = orientation_leaders(
                self.index, self.popularity, ranker.weights
            )
        served, items = ranker.rank(wanted, shopper, filters, limit)
        if served != wanted:
            reason += f"; nothing to go on for {wanted}, so {served}"
        return RecommendationList(
            strategy=served.value, stage=wanted, stage_reason=reason, items=items
        )

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


def shopper_of(
    session: Session, profile: Profile | None, index: ProductIndex, *,
    focus: str | None = None, placement_stage: Stage | None = None,
) -> Shopper:  # fmt: skip
    """The profile's recent shopping and stage; ``focus`` is the product on the
    page, which the stage's strategy then works from. The weather where the
    profile is comes along when the shop boosts categories by weather."""
    events = (
        profiles.list_events(session, profile, limit=200, event_type="track")
        if profile is not None
        else []
    )
    shopper = shopper_from_events(events, index, focus=focus)
    if profile is not None and weather_boosts().configured():
        weather = context_data.snapshots(session, [profile.id], facts=WEATHER_FACTS)
        shopper = replace(shopper, context=weather[profile.id])
    # Where the products are shown says more than a profile that is only browsing:
    # on a product page the shopper is looking at one product, on the cart page at
    # their cart.
    if placement_stage is not None and shopper.stage.stage is Stage.orientation:
        reason = "from the placement; " + (
            "no profile given" if profile is None else shopper.stage.reason
        )
        stage = StageResult(placement_stage, reason, shopper.stage.focus)
        shopper = replace(shopper, stage=stage)
    return shopper


def shopper_from_events(
    events: list[Event], index: ProductIndex, *, focus: str | None = None
) -> Shopper:
    """History, stage and cart from a profile's events, newest first."""
    history = []
    for event in events:
        kind = KIND_OF_EVENT.get(event.name or "")
        if kind is None:
            continue
        for sku in _event_skus(event.name, event.properties):
            product = index.get(sku)
            if product is not None:
                history.append(Interaction(product, event.timestamp, kind))
    signals = stages.signals_of(events)
    category_of = {
        sku: p.categories[0]
        for s in signals
        for sku in s.skus
        if (p := index.get(sku)) is not None and p.categories
    }
    stage = stages.classify(signals, category_of=category_of)
    orders = [s.at for s in signals if s.kind is stages.Kind.order]
    cart = stages.open_cart([s for s in signals if not orders or s.at > orders[-1]])
    return Shopper(history=history, stage=stage, cart=tuple(cart), page=focus)


def _event_skus(event_name: str | None, properties: dict) -> list[str]:
    try:
        return product_keys(parse_fact(event_name, properties))
    except ValidationError:
        return []  # stored before validation was as strict; nothing to learn from


def _fingerprint(product: Product) -> tuple:
    return (product.content_hash, product.active, product.qty, product.in_stock,
            product.review_count, product.rating, product.updated_at)  # fmt: skip

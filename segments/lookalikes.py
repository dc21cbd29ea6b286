"""Lookalikes: the profiles that shop most like a segment's members.

A profile's behaviour vector is the weighted mean of the embeddings of the products
it viewed, added and bought (the recommender's vectors, so "like" means the same
thing in both places). A segment is summarised by a few centroids of its members'
vectors, found with faiss k-means, so a segment of jacket buyers and bag buyers is
not averaged into neither; every other profile is scored by its best cosine to a
centroid, and the top ones are searched with a faiss inner-product index.
"""

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import faiss
import numpy as np
from pydantic import BaseModel
from sqlmodel import Session

from events.ecommerce import parse_fact, product_keys
from profiles import service as profiles
from recommender.index import ProductIndex

WEIGHTS = {"Product Viewed": 1.0, "Product Clicked": 1.0, "Product Added": 2.0,
           "Order Completed": 4.0}  # fmt: skip
DAYS = 180
# Reads at most this many recent events, so a big shop's request stays bounded.
EVENTS = 500_000
# One centroid per this many members, at most MAX_CENTROIDS.
MEMBERS_PER_CENTROID = 25
MAX_CENTROIDS = 8


class Lookalike(BaseModel):
    profile_id: str
    score: float
    # What they share with the segment: the categories of the products behind it.
    shared_categories: list[str]


@dataclass
class Behaviour:
    ids: list[str]
    vectors: np.ndarray  # one unit row per profile in ids
    categories: dict[str, Counter[str]]


def behaviour(
    session: Session, index: ProductIndex, *, now: datetime | None = None
) -> Behaviour:
    """Every profile with product activity in the last DAYS, as a unit vector."""
    since = (now or datetime.now(UTC)) - timedelta(days=DAYS)
    rows = profiles.list_recent_events(
        session, names=list(WEIGHTS), since=since, limit=EVENTS
    )
    sums: dict[str, np.ndarray] = {}
    categories: dict[str, Counter[str]] = defaultdict(Counter)
    dim = index.vectors.shape[1] if len(index.vectors) else 384
    for profile_id, name, properties in rows:
        for sku in _skus(name, properties):
            position = index.position.get(index.parent_of.get(sku, sku))
            if position is None:
                continue
            weight = WEIGHTS.get(name or "", 1.0)
            if profile_id not in sums:
                sums[profile_id] = np.zeros(dim, dtype=np.float32)
            sums[profile_id] += weight * index.vectors[position]
            product = index.products[position]
            if product.categories:
                categories[profile_id][product.categories[0]] += weight
    ids = sorted(sums)
    matrix = np.stack([sums[i] for i in ids]) if ids else np.zeros((0, dim), np.float32)
    faiss.normalize_L2(matrix)
    return Behaviour(ids, matrix, categories)


def find(known: Behaviour, members: set[str], *, limit: int = 50) -> list[Lookalike]:
    """The ``limit`` non-members closest to the members' centroids."""
    inside = [i for i, p in enumerate(known.ids) if p in members]
    outside = [i for i, p in enumerate(known.ids) if p not in members]
    if not inside or not outside:
        return []
    centroids = _centroids(known.vectors[inside])
    candidates = faiss.IndexFlatIP(known.vectors.shape[1])
    candidates.add(np.ascontiguousarray(known.vectors[outside]))
    k = min(limit, len(outside))
    scores, found = candidates.search(centroids, k)
    best: dict[int, float] = {}
    for row_scores, row_found in zip(scores, found, strict=True):
        for score, position in zip(row_scores, row_found, strict=True):
            if position >= 0:
                best[position] = max(best.get(position, -1.0), float(score))
    segment_categories: Counter[str] = Counter()
    for i in inside:
        segment_categories.update(known.categories.get(known.ids[i], Counter()))
    ranked = sorted(best.items(), key=lambda item: -item[1])[:limit]
    return [
        Lookalike(
            profile_id=known.ids[outside[position]],
            score=round(score, 4),
            shared_categories=_shared(
                known.categories.get(known.ids[outside[position]], Counter()),
                segment_categories,
            ),
        )
        for position, score in ranked
    ]


def _centroids(vectors: np.ndarray) -> np.ndarray:
    count = min(MAX_CENTROIDS, max(1, len(vectors) // MEMBERS_PER_CENTROID))
    if count == 1:
        centroid = vectors.mean(axis=0, keepdims=True).astype(np.float32)
    else:
        kmeans = faiss.Kmeans(vectors.shape[1], count, niter=20, seed=1)
        kmeans.train(np.ascontiguousarray(vectors))
        centroid = kmeans.centroids.astype(np.float32)
    faiss.normalize_L2(centroid)
    return centroid


def _shared(theirs: Counter[str], segment: Counter[str], top: int = 3) -> list[str]:
    common = [c for c, _w in theirs.most_common() if c in segment]
    return sorted(common, key=lambda c: -segment[c])[:top]


def _skus(name: str | None, properties: dict) -> list[str]:
    try:
        return product_keys(parse_fact(name, properties))
    except ValueError:
        return []

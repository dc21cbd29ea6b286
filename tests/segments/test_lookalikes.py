"""Lookalikes: outside a segment, the profiles that shop like its members."""

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from events.worker import Worker
from segments import lookalikes
from tests.conftest import bearer
from tests.events.test_worker import drain, envelope, publish

SEGMENTS = """segments:
  - name: jacket_buyers
    when:
      event: Order Completed
      where: {category: {contains: Jackets}}
"""


@pytest.fixture
def segment_file(use_segments: Callable[[str], Path]) -> Path:
    return use_segments(SEGMENTS)


def bought(visitor: str, sku: str, category: str) -> dict:
    products = [{"sku": sku, "category": category, "price": 60}]
    return envelope(f"o-{visitor}", anonymousId=visitor, event="Order Completed",
                    properties={"order_id": f"o-{visitor}", "total": 60,
                                "products": products})  # fmt: skip


def viewed(visitor: str, *skus: str) -> list[dict]:
    return [
        envelope(f"v-{visitor}-{sku}", anonymousId=visitor, properties={"sku": sku})
        for sku in skus
    ]


def test_lookalikes_rank_jacket_browsers_above_bag_browsers(
    segment_file: Path, client: TestClient, engine: Engine
) -> None:
    members = [
        bought("m-1", "WJ06", "Women/Tops/Jackets"),
        bought("m-2", "WJ04", "Women/Tops/Jackets"),
        bought("m-3", "MJ01", "Men/Tops/Jackets"),
    ]
    drain(Worker(engine, publish(
        *members, *viewed("jackets", "WJ01", "WJ08", "MJ02"),
        *viewed("bags", "24-MB01", "24-MB04"), *viewed("watch", "24-MG04"),
    )))  # fmt: skip

    response = client.get("/v1/segments/jacket_buyers/lookalikes", headers=bearer())

    assert response.status_code == 200, response.text
    found = response.json()
    by_id = {
        client.get(f"/v1/profiles/anonymous_id:{v}", headers=bearer()).json()["id"]: v
        for v in ("jackets", "bags", "watch", "m-1", "m-2", "m-3")
    }
    ranked = [by_id[f["profile_id"]] for f in found]
    assert ranked[0] == "jackets"
    assert set(ranked) == {"jackets", "bags", "watch"}  # members are never listed
    assert found[0]["shared_categories"][0].endswith("Jackets")
    assert found[0]["score"] > found[-1]["score"]


def test_find_uses_several_centroids_for_a_mixed_segment() -> None:
    # Two groups of members far apart: one centroid would sit between them and
    # prefer the profile halfway; several centroids find both groups' neighbours.
    rng = np.random.default_rng(3)
    a, b = np.eye(8, dtype=np.float32)[0], np.eye(8, dtype=np.float32)[1]
    rows = [a + rng.normal(0, 0.05, 8) for _ in range(30)]
    rows += [b + rng.normal(0, 0.05, 8) for _ in range(30)]
    rows += [a, b, (a + b) / 2]
    vectors = np.array(rows, dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [f"m{n}" for n in range(60)] + ["near_a", "near_b", "between"]
    known = lookalikes.Behaviour(ids, vectors, {})

    found = lookalikes.find(known, set(ids[:60]), limit=3)

    assert [f.profile_id for f in found][:2] in (["near_a", "near_b"],
                                                 ["near_b", "near_a"])  # fmt: skip
    assert found[-1].profile_id == "between"

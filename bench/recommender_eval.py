"""Recommender quality on public data: product matching, next-item prediction and
the stage strategies against Magento's own product links.

    .venv/bin/python bench/recommender_eval.py [--data DIR] [--limit N]
        [--section matching|next-item|links ...]  # default data: ../shared/data

Product matching (catalog-leipzig-products). Each true pair of a benchmark is one
case: the left record's text is embedded with the project's Embedder and searched
in an index of every right-side record; recall@k is how often the true match is in
the top k. Every set is searched twice: exactly (IndexFlatIP, the brute-force
oracle) and with the HNSW index make_faiss_index builds for catalogs of
EXACT_SEARCH_LIMIT products or more; "HNSW@10 vs exact" is the share of the exact
top 10 that HNSW also returns. walmart-amazon (22,074 products) is the one catalog
big enough for the project itself to use HNSW.

Next-item prediction (events-diginetica-sample, events-otto-sample). Split by time:
events before a cutoff are training, so no target is ever counted in training.
Every event after the cutoff whose session has an earlier event is one case: the
session's earlier items are the history, the item is the target. Popularity and
co-occurrence with the last item are the baselines; ours ranks items by a
recency-weighted profile vector, as strategies.Ranker.profile_vector builds one,
over behavioural item vectors (these products have no text). Every method's list
is filled up to k with popular items, and every method is run twice: with any item
as a candidate and with the history's items removed.

Stage strategies (catalog-magento-luma links). Magento's sample shop links its gear
to related, up-sell and cross-sell products. Each linked product of the demo catalog
is one case, shown on a page (comparison), put in a cart (decision) or just ordered
(evaluation); recall@10 of its links is printed for every strategy and for the plain
similarity ranking, and the gain of the stage meant for each kind of link (related
and up-sell: comparison; cross-sell: decision) over plain similarity.

Each section is a function returning a Section (rows and notes); SECTIONS lists
what main() prints. Vectors are cached in var/eval-cache: the first run embeds
~30,000 texts (about 9 minutes on 2 cores), later runs take seconds. Not a test:
it prints a table.
"""

import argparse
import calendar
import csv
import json
import math
import sys
import textwrap
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from itertools import chain, combinations
from pathlib import Path
from typing import TypeVar

import faiss
import numpy as np
from scipy import sparse
from scipy.sparse.linalg import svds

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from recommender.embeddings import Embedder, VectorCache  # noqa: E402
from recommender.index import EXACT_SEARCH_LIMIT, make_faiss_index  # noqa: E402
from recommender.models import Filters  # noqa: E402
from recommender.strategies import get_weights  # noqa: E402

HALF_LIFE_HOURS = get_weights().half_life_hours

CACHE_DIR = ROOT / "var" / "eval-cache"
K = 10
# The model reads at most 256 word pieces; the name comes first and a long
# marketing text after ~500 characters adds little but time.
DESCRIPTION_CHARS = 500
TEST_SHARE = 0.2  # of the events, the latest ones
SVD_DIMENSIONS = 64
PPMI_SMOOTHING = 0.75  # context counts ** 0.75, so rare items do not dominate PMI
POSITION_HALF_LIFE = 1.0  # views: the item before the last weighs half as much
DAY = 86_400.0
SMALL = 100  # sessions; below this a next-item figure is flagged, not compared

T = TypeVar("T")


@dataclass
class Row:
    dataset: str
    cases: int
    method: str
    figures: dict[str, float | None]


@dataclass
class Section:
    title: str
    rows: list[Row]
    notes: list[str] = field(default_factory=list)


# Metrics. Every case has one ranked list; the mean over cases is reported.


def hit_rate(ranked: Sequence[Sequence[T]], targets: Sequence[T], k: int) -> float:
    """Share of cases whose target is among the first k."""
    _check_cases(ranked, targets)
    hits = [target in items[:k] for items, target in zip(ranked, targets, strict=True)]
    return _mean(hits)


def ndcg(ranked: Sequence[Sequence[T]], targets: Sequence[T], k: int) -> float:
    """NDCG@k with one relevant item per case: 1 / log2(rank + 1), 0 past k."""
    _check_cases(ranked, targets)
    gains = []
    for items, target in zip(ranked, targets, strict=True):
        top = list(items[:k])
        gains.append(1 / math.log2(top.index(target) + 2) if target in top else 0.0)
    return _mean(gains)


def recall_at_k(
    ranked: Sequence[Sequence[T]], relevant: Sequence[Collection[T]], k: int
) -> float:
    """Mean share of each case's relevant items found among its first k."""
    _check_cases(ranked, relevant)
    shares = []
    for items, wanted in zip(ranked, relevant, strict=True):
        if not wanted:
            raise ValueError("every case needs at least one relevant item, got none")
        shares.append(len(set(items[:k]) & set(wanted)) / len(wanted))
    return _mean(shares)


def _check_cases(ranked: Sequence, truth: Sequence) -> None:
    if len(ranked) != len(truth):
        raise ValueError(
            f"{len(ranked)} ranked lists for {len(truth)} cases; expected one per case"
        )


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


# Product matching.


@dataclass(frozen=True)
class MatchSet:
    name: str
    left: str
    right: str
    delimiter: str
    fields: tuple[str, ...]  # what the model reads, in this order


MATCH_SETS = (
    MatchSet("abt-buy", "abt.csv", "buy.csv", "|", ("name", "description")),
    MatchSet(
        "amazon-googleproducts",
        "amazon.csv",
        "gp.csv",
        "#",
        ("title", "manufacturer", "description"),
    ),
    MatchSet(
        "walmart-amazon",
        "walmart.csv",
        "amazon.csv",
        "|",
        ("title", "brand", "modelno"),
    ),
)


def record_text(record: dict[str, str], fields: Sequence[str]) -> str:
    """Name first, then the other fields; empty ones and repeats are left out."""
    parts: list[str] = []
    for name in fields:
        value = " ".join((record.get(name) or "").split())
        if name == "description":
            value = _truncate(value, DESCRIPTION_CHARS)
        if value and value.lower() not in ". ".join(parts).lower():
            parts.append(value)
    return ". ".join(parts)


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit]
    return cut[: cut.rfind(" ")] if " " in cut else cut


def read_records(path: Path, delimiter: str) -> dict[str, dict[str, str]]:
    # The csv module, not a line split: descriptions hold newlines.
    with path.open(newline="", encoding="utf-8") as file:
        return {row["id"]: row for row in csv.DictReader(file, delimiter=delimiter)}


def read_pairs(path: Path, delimiter: str) -> list[tuple[str, str]]:
    with path.open(newline="", encoding="utf-8") as file:
        return [
            (row["D1"], row["D2"]) for row in csv.DictReader(file, delimiter=delimiter)
        ]


def matching_section(data_root: Path, limit: int | None) -> Section:
    embedder = Embedder()
    cache = VectorCache(CACHE_DIR, embedder.tag)
    rows: list[Row] = []
    notes = [
        f"description cut at {DESCRIPTION_CHARS} characters on a word boundary; "
        "empty fields, and fields already contained in the text, are left out",
        f"* = the index make_faiss_index builds for a catalog of this size (exact "
        f"below {EXACT_SEARCH_LIMIT:,} products, HNSW from there); the other row "
        "is the same data searched the other way",
    ]
    for match_set in MATCH_SETS:
        folder = data_root / "catalog-leipzig-products" / match_set.name
        set_rows, note = match_rows(match_set, folder, embedder, cache, limit)
        rows += set_rows
        notes.append(note)
    return Section(
        "1. Product matching: the true match among all right records", rows, notes
    )


def match_rows(
    match_set: MatchSet,
    folder: Path,
    embedder: Embedder,
    cache: VectorCache,
    limit: int | None,
) -> tuple[list[Row], str]:
    left = read_records(folder / match_set.left, match_set.delimiter)
    right = read_records(folder / match_set.right, match_set.delimiter)
    pairs = read_pairs(folder / "gt.csv", match_set.delimiter)
    known = [(a, b) for a, b in pairs if a in left and b in right]
    cases = known[:limit]

    right_ids = list(right)
    position = {key: i for i, key in enumerate(right_ids)}
    catalog = _embed(embedder, cache, [right[i] for i in right_ids], match_set.fields)
    queries = _embed(embedder, cache, [left[a] for a, _ in cases], match_set.fields)
    targets = [position[b] for _, b in cases]

    dataset = f"{match_set.name} ({len(right):,} right)"
    rows = _search_both_ways(dataset, catalog, queries, targets)
    note = (
        f"{match_set.name}: reads {' + '.join(match_set.fields)}; "
        f"{len(pairs) - len(known)} of {len(pairs)} true pairs name an unknown id; "
        f"{_tied(right, [b for _, b in cases], match_set.fields)} true matches have "
        "the same text as another right record, so the order of a tie decides them"
    )
    return rows, note


def _search_both_ways(
    dataset: str, catalog: np.ndarray, queries: np.ndarray, targets: list[int]
) -> list[Row]:
    """Exact and HNSW rows; * marks the one make_faiss_index picks for this size."""
    dim = catalog.shape[1]
    exact = _search(faiss.IndexFlatIP(dim), catalog, queries)
    hnsw_index = make_faiss_index(dim, max(len(catalog), EXACT_SEARCH_LIMIT))
    hnsw = _search(hnsw_index, catalog, queries)
    own = type(make_faiss_index(dim, len(catalog)))
    return [
        _match_row(dataset, "exact", own is faiss.IndexFlatIP, exact, targets, None),
        _match_row(
            dataset,
            f"HNSW ef={hnsw_index.hnsw.efSearch}",
            own is type(hnsw_index),
            hnsw,
            targets,
            recall_at_k(hnsw, [set(e) for e in exact], K),
        ),
    ]


def _match_row(
    dataset: str,
    method: str,
    is_own: bool,
    found: list[list[int]],
    targets: list[int],
    overlap: float | None,
) -> Row:
    return Row(
        dataset,
        len(targets),
        method + ("*" if is_own else ""),
        {
            "recall@1": hit_rate(found, targets, 1),
            f"recall@{K}": hit_rate(found, targets, K),
            f"HNSW@{K} vs exact": overlap,
        },
    )


def _embed(
    embedder: Embedder,
    cache: VectorCache,
    records: list[dict[str, str]],
    fields: Sequence[str],
) -> np.ndarray:
    texts = [record_text(record, fields) for record in records]
    return cache.embed(embedder, texts, progress=False)


def _search(
    index: faiss.Index, catalog: np.ndarray, queries: np.ndarray
) -> list[list[int]]:
    index.add(catalog)
    if not len(queries):
        return []
    _scores, ids = index.search(queries, K)
    return [[int(i) for i in row if i >= 0] for row in ids]


def _tied(
    records: dict[str, dict[str, str]], keys: list[str], fields: Sequence[str]
) -> int:
    counts = Counter(record_text(record, fields) for record in records.values())
    return sum(counts[record_text(records[key], fields)] > 1 for key in keys)


# Next-item prediction.


@dataclass
class Session:
    items: list[int]
    times: list[float]  # seconds since 1970 (UTC), ascending


@dataclass(frozen=True)
class Case:
    history: list[int]
    ages: list[float]  # seconds from each history event to the target's
    target: int


@dataclass
class ItemVectors:
    items: list[int]
    position: dict[int, int]
    vectors: np.ndarray
    index: faiss.Index


@dataclass
class Trained:
    """What the training events teach: counts, and item vectors built from them."""

    popular: list[int]
    rank: dict[int, int]  # item -> place in ``popular``
    together: dict[int, Counter[int]]  # item -> item -> sessions holding both
    vectors: ItemVectors | None


def read_diginetica(path: Path) -> list[Session]:
    views: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    with path.open(newline="", encoding="utf-8") as file:
        for row in csv.DictReader(file, delimiter=";"):
            views[row["session_id"]].append(
                (int(row["timeframe"]), int(row["item_id"]), row["eventdate"])
            )
    sessions = []
    for rows in views.values():
        # timeframe is the offset from the session's start; the day has no hour.
        rows.sort()
        first_day = date.fromisoformat(min(day for _, _, day in rows))
        start = float(calendar.timegm(first_day.timetuple()))
        times = [start + offset / 1000 for offset, _, _ in rows]
        sessions.append(Session([item for _, item, _ in rows], times))
    return sessions


def read_otto(path: Path) -> list[Session]:
    sessions = []
    with path.open(encoding="utf-8") as file:
        for line in file:
            events = sorted(json.loads(line)["events"], key=lambda e: e["ts"])
            items = [int(e["aid"]) for e in events]
            sessions.append(Session(items, [e["ts"] / 1000 for e in events]))
    return sessions


def time_cutoff(sessions: list[Session], share: float, granularity: float) -> float:
    """The time after which about ``share`` of the events lie, rounded down."""
    times = np.sort(np.concatenate([s.times for s in sessions]))
    at = float(times[min(int(len(times) * (1 - share)), len(times) - 1)])
    return math.floor(at / granularity) * granularity


def split_by_time(
    sessions: list[Session], cutoff: float
) -> tuple[list[list[int]], list[Case]]:
    """Training sessions (events before the cutoff) and the cases after it."""
    train = [
        [i for i, at in zip(s.items, s.times, strict=True) if at < cutoff]
        for s in sessions
    ]
    cases = [
        Case(s.items[:t], [s.times[t] - at for at in s.times[:t]], s.items[t])
        for s in sessions
        for t in range(1, len(s.items))
        if s.times[t] >= cutoff
    ]
    return [items for items in train if items], cases


def train(sessions: list[list[int]]) -> Trained:
    views = Counter(item for items in sessions for item in items)
    popular = sorted(views, key=lambda item: (-views[item], item))
    together: dict[int, Counter[int]] = defaultdict(Counter)
    for items in sessions:
        for a, b in combinations(sorted(set(items)), 2):
            together[a][b] += 1
            together[b][a] += 1
    rank = {item: i for i, item in enumerate(popular)}
    return Trained(popular, rank, dict(together), item_vectors(together))


def item_vectors(together: dict[int, Counter[int]]) -> ItemVectors | None:
    """Truncated SVD of the PPMI co-occurrence matrix, one unit vector per item."""
    items = sorted(together)
    if len(items) < 3:
        return None
    position = {item: i for i, item in enumerate(items)}
    cells = [
        (position[a], position[b], n) for a in items for b, n in together[a].items()
    ]
    rows, cols, counts = (np.array(c, dtype=float) for c in zip(*cells, strict=True))
    matrix = _ppmi(sparse.csr_matrix((counts, (rows, cols)), shape=(len(items),) * 2))
    dims = min(SVD_DIMENSIONS, len(items) - 2)
    u, s, _vt = svds(matrix, k=dims, rng=np.random.default_rng(0))
    vectors = (u * np.sqrt(s)).astype(np.float32)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    index = make_faiss_index(dims, len(items))
    index.add(vectors)
    return ItemVectors(items, position, vectors, index)


def _ppmi(counts: sparse.csr_matrix) -> sparse.csr_matrix:
    """Positive PMI, the context counts smoothed (Levy, Goldberg and Dagan 2015)."""
    cells = counts.tocoo()
    totals = np.asarray(counts.sum(axis=1)).ravel()
    context = totals**PPMI_SMOOTHING
    pmi = np.log(cells.data * context.sum() / (totals[cells.row] * context[cells.col]))
    keep = pmi > 0
    return sparse.csr_matrix(
        (pmi[keep], (cells.row[keep], cells.col[keep])), shape=counts.shape
    )


def by_position(case: Case) -> np.ndarray:
    """Weights halving every POSITION_HALF_LIFE steps back from the last item."""
    steps_back = np.arange(len(case.history))[::-1]
    return 0.5 ** (steps_back / POSITION_HALF_LIFE)


def by_time(case: Case) -> np.ndarray:
    """Ranker.profile_vector's recency weight, "now" being the target's time."""
    return 0.5 ** (np.array(case.ages) / 3600 / HALF_LIFE_HOURS)


def profile_rankings(
    cases: list[Case], vectors: ItemVectors | None, weigh: Callable[[Case], np.ndarray]
) -> list[list[int]]:
    """Items nearest each case's recency-weighted profile vector; [] if none."""
    if vectors is None or not cases:
        return [[] for _ in cases]
    profiles = np.zeros((len(cases), vectors.vectors.shape[1]), dtype=np.float32)
    for row, case in enumerate(cases):
        for item, weight in zip(case.history, weigh(case), strict=True):
            if item in vectors.position:
                profiles[row] += weight * vectors.vectors[vectors.position[item]]
    norms = np.linalg.norm(profiles, axis=1)
    profiles /= np.maximum(norms, 1e-12)[:, None]
    depth = min(K + max(len(set(c.history)) for c in cases), len(vectors.items))
    _scores, ids = vectors.index.search(profiles, depth)
    return [
        [vectors.items[i] for i in row if i >= 0] if norm > 0 else []
        for row, norm in zip(ids, norms, strict=True)
    ]


def co_occurring(case: Case, trained: Trained) -> list[int]:
    counts = trained.together.get(case.history[-1], Counter())
    # Ties go to the more popular item, as they would in a shop.
    return sorted(counts, key=lambda item: (-counts[item], trained.rank[item]))


def top_k(
    ranked: Iterable[int], fill: Iterable[int], exclude: Collection[int]
) -> list[int]:
    """The first K of ``ranked``, then of ``fill``, skipping repeats and ``exclude``."""
    chosen: list[int] = []
    for item in chain(ranked, fill):
        if item not in exclude and item not in chosen:
            chosen.append(item)
            if len(chosen) == K:
                break
    return chosen


@dataclass(frozen=True)
class EventSet:
    name: str
    path: str
    read: Callable[[Path], list[Session]]
    granularity: float  # the cutoff is rounded down to this many seconds


EVENT_SETS = (
    # Diginetica gives a session's day, not its hour: whole days go to one side.
    EventSet(
        "diginetica",
        "events-diginetica-sample/sample_train-item-views.csv",
        read_diginetica,
        DAY,
    ),
    EventSet("otto", "events-otto-sample/train.jsonl", read_otto, 1.0),
)
CANDIDATES = {"any item": False, "not in history": True}


def next_item_section(data_root: Path, limit: int | None) -> Section:
    rows: list[Row] = []
    notes = [
        "split by time: the latest ~"
        f"{TEST_SHARE:.0%} of events are the test part, everything before the "
        "cutoff trains the counts and vectors; every test event with an earlier event "
        "in its session is a case (history = those earlier events, including any "
        "before the cutoff)",
        "signal for ours: behaviour only, these items have no text. Item vectors = "
        f"{SVD_DIMENSIONS}-dim truncated SVD of the PPMI matrix (context counts "
        f"^{PPMI_SMOOTHING}) of how many training sessions hold both items, searched "
        "with make_faiss_index from a recency-weighted sum of the history's vectors, "
        f"decayed by position (half-life {POSITION_HALF_LIFE:g} view) or by time "
        f"(recommender.strategies.HALF_LIFE_HOURS = {HALF_LIFE_HOURS:g} h before the "
        "target event)",
        "co-occurrence: training sessions holding both the last item and the "
        "candidate; it never proposes the last item itself. Every list is filled to "
        f"{K} with the most viewed training items; 'not in history' removes the "
        "history's items from every method's list, as the service's strategies skip "
        "what a shopper has seen",
    ]
    for event_set in EVENT_SETS:
        set_rows, note = next_item_rows(event_set, data_root / event_set.path, limit)
        rows += set_rows
        notes.append(note)
    return Section(f"2. Next-item prediction at cutoff {K}", rows, notes)


def next_item_rows(
    event_set: EventSet, path: Path, limit: int | None
) -> tuple[list[Row], str]:
    sessions = event_set.read(path)
    cutoff = time_cutoff(sessions, TEST_SHARE, event_set.granularity)
    training, all_cases = split_by_time(sessions, cutoff)
    cases = all_cases[:limit]
    trained = train(training)

    raw = {
        "popularity": [[] for _ in cases],
        "co-occurrence": [co_occurring(case, trained) for case in cases],
        "ours, by position": profile_rankings(cases, trained.vectors, by_position),
        "ours, by time": profile_rankings(cases, trained.vectors, by_time),
    }
    targets = [case.target for case in cases]
    dataset = _label(event_set.name, sessions)
    rows = []
    for candidates, drop_history in CANDIDATES.items():
        for method, rankings in raw.items():
            ranked = [
                top_k(r, trained.popular, set(c.history) if drop_history else ())
                for r, c in zip(rankings, cases, strict=True)
            ]
            figures = {
                f"hit@{K}": hit_rate(ranked, targets, K),
                f"NDCG@{K}": ndcg(ranked, targets, K),
            }
            label = f"{method}, {candidates}"
            rows.append(Row(dataset, len(cases), label, figures))
    note = (
        _describe_data(event_set.name, sessions)
        + " "
        + _describe_split(event_set, training, cases, trained, cutoff)
    )
    return rows, note


def _items_in_several(sessions: list[Session]) -> tuple[int, int]:
    """How many items occur in more than one session, and how many there are."""
    sessions_of: dict[int, set[int]] = defaultdict(set)
    for number, session in enumerate(sessions):
        for item in session.items:
            sessions_of[item].add(number)
    return sum(len(s) > 1 for s in sessions_of.values()), len(sessions_of)


def _label(name: str, sessions: list[Session]) -> str:
    return f"{name} (small n)" if len(sessions) < SMALL else name


def _describe_data(name: str, sessions: list[Session]) -> str:
    shared, items = _items_in_several(sessions)
    small = " SMALL n: too few to rank methods." if len(sessions) < SMALL else ""
    return (
        f"{_label(name, sessions)}: {len(sessions):,} sessions; {shared:,} of "
        f"{items:,} items occur in more than one session.{small}"
    )


def _describe_split(
    event_set: EventSet,
    training: list[list[int]],
    cases: list[Case],
    trained: Trained,
    cutoff: float,
) -> str:
    shown = "%Y-%m-%d" if event_set.granularity == DAY else "%Y-%m-%d %H:%M UTC"
    return (
        f"Cutoff {time.strftime(shown, time.gmtime(cutoff))}; training "
        f"{sum(map(len, training)):,} events of {len(training):,} sessions "
        f"({len(trained.rank):,} items, {_describe_vectors(trained.vectors)}); "
        f"{len(cases):,} cases. Targets never seen in training: "
        f"{_percent([c.target not in trained.rank for c in cases])}; already in the "
        f"history: {_percent([c.target in c.history for c in cases])}; equal to the "
        f"last item: {_percent([c.target == c.history[-1] for c in cases])}"
    )


def _describe_vectors(vectors: ItemVectors | None) -> str:
    if vectors is None:
        return "no item vectors"
    # Items with the same co-occurrence row (one shared session) share a vector.
    distinct = len(np.unique(vectors.vectors.round(4), axis=0))
    return (
        f"{len(vectors.items):,} with a vector, {distinct:,} distinct, "
        f"index {type(vectors.index).__name__}"
    )


# Magento's own links as ground truth for the stage strategies.

LINKS_DIR = Path("catalog-magento-luma") / "ProductLinksSampleData" / "fixtures"
# Which strategy answers the question each kind of link answers.
STAGE_OF_LINK = {
    "related": "comparison",
    "upsell": "comparison",
    "crosssell": "decision",
}


def read_links(path: Path) -> dict[str, list[str]]:
    """sku -> linked skus (newline-separated in one cell)."""
    with path.open(newline="", encoding="utf-8") as handle:
        return {
            row["sku"]: row["linked_sku"].split()
            for row in csv.DictReader(handle)
            if row["sku"]
        }


def links_section(data_root: Path, limit: int | None) -> Section:
    """Recall@10 of each product's related, up-sell and cross-sell links, for the
    plain similarity ranking (nearest products, the product itself left out) and
    for each stage strategy, on the demo catalog the shop runs on."""
    from catalog.demo import demo_products
    from recommender.service import Recommender
    from recommender.strategies import Shopper
    from segments.stages import Stage, StageResult

    recommender = Recommender(Embedder(), CACHE_DIR)
    recommender.build(demo_products())
    index = recommender.index
    rows, notes = [], []
    gains: list[str] = []
    for kind, stage in STAGE_OF_LINK.items():
        links = read_links(data_root / LINKS_DIR / f"{kind}.csv")
        cases = [
            (sku, [t for t in targets if index.get(t) is not None])
            for sku, targets in links.items()
            if index.get(sku) is not None
        ]
        dropped = sum(len(t) for _, t in links.items()) - sum(len(t) for _, t in cases)
        cases = [(sku, targets) for sku, targets in cases if targets][:limit]
        rankings: dict[str, list[list[str]]] = {"plain similarity": []}
        for strategy in Stage:
            rankings[f"{strategy} strategy"] = []
        for sku, _ in cases:
            vector = index.vectors[index.position[index.get(sku).sku]]
            nearest = [index.products[p].sku for p, _ in index.search(vector, K + 1)]
            rankings["plain similarity"].append([s for s in nearest if s != sku][:K])
            for strategy in Stage:
                # One product in the stage's own place: on the page being compared,
                # in the cart, or in the order just placed.
                shopper = Shopper(
                    history=[],
                    stage=StageResult(strategy, "evaluation case", (sku,)),
                    cart=(sku,) if strategy is Stage.decision else (),
                    page=sku,
                )
                result = recommender.recommend(
                    shopper, Filters(in_stock=False), limit=K, stage=strategy
                )
                rankings[f"{strategy} strategy"].append(
                    [item.product.sku for item in result.items]
                )
        truth = [set(targets) for _, targets in cases]
        figures = {
            method: recall_at_k(ranked, truth, K) for method, ranked in rankings.items()
        }
        for method, recall in figures.items():
            marker = (
                " <- the stage for this link" if method == f"{stage} strategy" else ""
            )
            rows.append(Row(f"{kind} links", len(cases), method + marker,
                            {"recall@10": recall}))  # fmt: skip
        gains.append(
            f"{kind}: {stage} strategy {figures[f'{stage} strategy']:.3f} against "
            f"plain similarity {figures['plain similarity']:.3f} "
            f"({figures[f'{stage} strategy'] - figures['plain similarity']:+.3f})"
        )
        notes.append(
            f"{kind}: {len(cases)} products with links into the catalog; {dropped} "
            "links name a product the demo catalog does not sell (grouped or bundle "
            "items) and are left out"
        )
    notes.insert(
        0, "gain of the stage strategy over plain similarity: " + "; ".join(gains)
    )
    notes.append(
        "Magento links exist only for its gear (bags, fitness equipment, watches); "
        "the strategies never read them. Every product is one case: on the page "
        "(comparison), in the cart (decision) or just ordered (evaluation)."
    )
    return Section(
        "3. Magento's related, up-sell and cross-sell links found in the top 10",
        rows,
        notes,
    )


# The table.

SECTIONS: dict[str, Callable[[Path, int | None], Section]] = {
    "matching": matching_section,
    "next-item": next_item_section,
    "links": links_section,
}


def print_section(section: Section) -> None:
    names = list(dict.fromkeys(name for row in section.rows for name in row.figures))
    header = ["dataset", "cases", "method", *names]
    body = [
        [
            row.dataset,
            str(row.cases),
            row.method,
            *(_fmt(row.figures.get(n)) for n in names),
        ]
        for row in section.rows
    ]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    print(section.title)
    for cells in [header, ["-" * w for w in widths], *body]:
        print(
            "  ".join(
                c.ljust(w) if i in (0, 2) else c.rjust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            ).rstrip()
        )
    for note in section.notes:
        print(textwrap.fill(note, 88, initial_indent="  - ", subsequent_indent="    "))
    print()


def _percent(flags: Sequence[bool]) -> str:
    return f"{_mean(flags):.1%}"


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return "n/a" if math.isnan(value) else f"{value:.3f}"


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument(
        "--limit",
        type=_positive,
        help="at most this many cases per dataset, for a quick run; the catalogs "
        "searched and the training part stay whole",
    )
    parser.add_argument(
        "--section",
        action="append",
        choices=list(SECTIONS),
        help="run only this section (repeatable); default: all",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    for name in args.section or list(SECTIONS):
        section_started = time.perf_counter()
        print_section(SECTIONS[name](args.data, args.limit))
        print(f"({name}: {time.perf_counter() - section_started:.1f}s)\n")
    print(f"total {time.perf_counter() - started:.1f}s")


if __name__ == "__main__":
    main()

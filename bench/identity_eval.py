"""Identity resolution accuracy on person records with true labels (issue #4).

    .venv/bin/python bench/identity_eval.py [DATA_DIR]      # default ../shared/data

For each dataset, in a throwaway SQLite database:

(a) automatic: every record goes through the real worker path
    (events.worker.apply_event) as a Segment ``identify`` message with its traits,
    its e-mail (and phone, if any) as traits, and an anonymousId of its own (a new
    visitor per record). No dataset here has an id a shop would hold per record
    (fake_1000's unique_id is a row number, Febrl's rec_id encodes the truth and its
    soc_sec_id is a national id no shop has), so no userId is sent. The records that
    end on one profile are the automatic merges.
(b) suggestions: profiles.matching.run on the profiles left after (a), as the api's
    ``POST /v1/match-suggestions/run`` does; a suggested pair of profiles links
    every record of one with every record of the other.

Metrics are pairwise over records. "suggestions" counts the record pairs the
suggestions link; its recall is over the true pairs that (a) left apart.
"automatic + approved" is the state after a reviewer approved every suggestion
(merges are transitive, so clusters are closed first).

The threshold: suggestions are swept over THRESHOLDS on the development sets
(fake_1000 and Febrl dataset1); the chosen one maximises the mean F1 of
"automatic + approved" there, among thresholds whose suggestion precision is at
least MIN_PRECISION on each, so that a reviewer's queue is mostly right. Febrl
datasets 2, 3 and 4 are held out. The script reports whether that choice equals
profiles.matching.SUGGESTION_THRESHOLD, which is what the api uses.

Not a test: it prints a table.
"""

import argparse
import itertools
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from sqlmodel import Session, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core import db  # noqa: E402
from events.worker import apply_event  # noqa: E402
from profiles import matching  # noqa: E402
from profiles.models import Event, MatchSuggestion  # noqa: E402

THRESHOLDS = [2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0]
MIN_PRECISION = 0.95
DEV_SETS = ("fake_1000", "febrl1")
BATCH = 100  # events per transaction, as the worker reads them

Pair = tuple[str, str]


@dataclass
class Record:
    key: str  # the message id; never sent as an identifier
    truth: str
    traits: dict[str, Any]


@dataclass
class Outcome:
    records: list[Record]
    profile_of: dict[str, str]  # record key to profile id after (a)
    suggestions: list[tuple[str, str, float]]  # profile pairs with scores
    seconds: float


def read_fake_1000(folder: Path) -> list[Record]:
    frame = pd.read_csv(folder / "people-splink-fake1000" / "fake_1000.csv", dtype=str)
    columns = {"first_name": "first_name", "surname": "last_name",
               "dob": "date_of_birth", "city": "city", "email": "email"}  # fmt: skip
    return [
        Record(f"fake-{row['unique_id']}", row["cluster"], _traits(row, columns))
        for row in frame.to_dict("records")
    ]


def read_febrl(folder: Path, *names: str) -> list[Record]:
    columns = {"given_name": "first_name", "surname": "last_name",
               "street_number": "street_number", "address_1": "street",
               "suburb": "city", "postcode": "postcode", "state": "state",
               "date_of_birth": "date_of_birth"}  # fmt: skip
    records = []
    for name in names:
        frame = pd.read_csv(
            folder / "people-febrl" / name, dtype=str, skipinitialspace=True
        )
        for row in frame.to_dict("records"):
            # rec-<n>-org and rec-<n>-dup-<k> are the same person n.
            truth = row["rec_id"].split("-")[1]
            traits = _traits(row, columns)
            if len(traits.get("date_of_birth", "")) == 8:
                d = traits["date_of_birth"]
                traits["date_of_birth"] = f"{d[:4]}-{d[4:6]}-{d[6:]}"
            records.append(Record(f"{name}-{row['rec_id']}", truth, traits))
    return records


def _traits(row: dict[str, Any], columns: dict[str, str]) -> dict[str, str]:
    return {
        trait: str(row[column]).strip()
        for column, trait in columns.items()
        if isinstance(row[column], str) and row[column].strip()
    }


def identify(record: Record, at: datetime) -> dict[str, Any]:
    stamp = at.isoformat()
    return {
        "type": "identify",
        "messageId": record.key,
        "anonymousId": uuid.uuid4().hex,
        "traits": record.traits,
        "timestamp": stamp,
        "receivedAt": stamp,
        "source": "bench",
    }


def run_dataset(records: list[Record], threshold: float) -> Outcome:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        engine = db.make_engine(f"sqlite:///{folder}/eval.db")
        db.create_tables(engine)
        apply_all(engine, records)
        with Session(engine) as session:
            statement = select(Event.message_id, Event.profile_id)
            profile_of = dict(session.exec(statement).all())
            matching.run(session, threshold=threshold)
            rows = session.exec(select(MatchSuggestion))
            suggestions = [(s.profile_a, s.profile_b, s.score) for s in rows]
        engine.dispose()
    return Outcome(records, profile_of, suggestions, time.perf_counter() - started)


def apply_all(engine: Any, records: list[Record]) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for offset in range(0, len(records), BATCH):
        with Session(engine) as session:
            for i, record in enumerate(records[offset : offset + BATCH], offset):
                apply_event(session, identify(record, start + timedelta(seconds=i)))
            session.commit()


def true_pairs(records: list[Record]) -> set[Pair]:
    return _pairs_within(_groups((r.key, r.truth) for r in records))


def _groups(items: Iterable[tuple[str, str]]) -> list[list[str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for key, group in items:
        groups[group].append(key)
    return list(groups.values())


def _pairs_within(groups: list[list[str]]) -> set[Pair]:
    return {
        (min(a, b), max(a, b))
        for group in groups
        for a, b in itertools.combinations(group, 2)
    }


def suggested_pairs(outcome: Outcome, threshold: float) -> set[Pair]:
    members = defaultdict(list)
    for key, profile_id in outcome.profile_of.items():
        members[profile_id].append(key)
    return {
        (min(a, b), max(a, b))
        for left, right, score in outcome.suggestions
        if score >= threshold
        for a in members[left]
        for b in members[right]
    }


def closed_pairs(outcome: Outcome, links: set[Pair]) -> set[Pair]:
    """Record pairs on one profile once every suggested link is merged."""
    parent = {key: outcome.profile_of[key] for key in outcome.profile_of}
    parent.update({p: p for p in set(outcome.profile_of.values())})

    def root(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in links:
        parent[root(a)] = root(b)
    return _pairs_within(_groups((key, root(key)) for key in outcome.profile_of))


def scores(predicted: set[Pair], truth: set[Pair]) -> tuple[float | None, float, float]:
    hits = len(predicted & truth)
    precision = hits / len(predicted) if predicted else None
    recall = hits / len(truth) if truth else 0.0
    f1 = 2 * (precision or 0) * recall / ((precision or 0) + recall or 1)
    return precision, recall, f1


def rows_for(name: str, outcome: Outcome, threshold: float) -> Iterator[list[str]]:
    truth = true_pairs(outcome.records)
    automatic = _pairs_within(_groups(outcome.profile_of.items()))
    links = suggested_pairs(outcome, threshold)
    combined = closed_pairs(outcome, links)
    stages = [
        ("automatic", "-", automatic, truth),
        ("suggestions", f"{threshold:g}", links - automatic, truth - automatic),
        ("automatic + approved", f"{threshold:g}", combined, truth),
    ]
    for stage, shown, predicted, wanted in stages:
        precision, recall, f1 = scores(predicted, wanted)
        yield [
            name, str(len(outcome.records)), str(len(wanted)), stage, shown,
            str(len(predicted)), _fmt(precision), _fmt(recall), _fmt(f1),
        ]  # fmt: skip


def choose_threshold(outcomes: dict[str, Outcome]) -> float:
    best, best_f1 = THRESHOLDS[-1], -1.0
    print("Threshold sweep on the development sets (automatic + approved F1;")
    print(f"suggestion precision in brackets; eligible if >= {MIN_PRECISION}):")
    for threshold in THRESHOLDS:
        cells, f1s, eligible = [], [], True
        for name in DEV_SETS:
            outcome = outcomes[name]
            truth = true_pairs(outcome.records)
            automatic = _pairs_within(_groups(outcome.profile_of.items()))
            links = suggested_pairs(outcome, threshold)
            precision, _r, _f = scores(links - automatic, truth - automatic)
            _p, _r, f1 = scores(closed_pairs(outcome, links), truth)
            eligible &= precision is None or precision >= MIN_PRECISION
            f1s.append(f1)
            cells.append(f"{name} {f1:.3f} ({_fmt(precision)})")
        mean = sum(f1s) / len(f1s)
        if eligible and mean > best_f1:
            best, best_f1 = threshold, mean
        print(f"  {threshold:>5g}: " + "  ".join(cells) + f"  mean {mean:.3f}")
    print(f"chosen: {best:g}; profiles.matching.SUGGESTION_THRESHOLD is "
          f"{matching.SUGGESTION_THRESHOLD:g}\n")  # fmt: skip
    return best


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def print_table(rows: list[list[str]]) -> None:
    header = ["dataset", "records", "true pairs", "stage", "threshold",
              "predicted", "precision", "recall", "F1"]  # fmt: skip
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        cells = zip(row, widths, strict=True)
        print(
            "  ".join(
                c.ljust(w) if i < 4 else c.rjust(w) for i, (c, w) in enumerate(cells)
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "data", nargs="?", type=Path, default=ROOT.parent / "shared" / "data"
    )
    folder = parser.parse_args().data
    started = time.perf_counter()
    datasets = {
        "fake_1000": read_fake_1000(folder),
        "febrl1": read_febrl(folder, "dataset1.csv"),
        "febrl2": read_febrl(folder, "dataset2.csv"),
        "febrl3": read_febrl(folder, "dataset3.csv"),
        "febrl4a+4b": read_febrl(folder, "dataset4a.csv", "dataset4b.csv"),
    }
    # Suggestions are stored down to the lowest threshold, then cut per threshold.
    outcomes = {
        name: run_dataset(records, min(THRESHOLDS))
        for name, records in datasets.items()
    }
    threshold = choose_threshold(outcomes)

    rows = [row for name, o in outcomes.items() for row in rows_for(name, o, threshold)]
    print_table(rows)
    timings = ", ".join(f"{n} {o.seconds:.1f}s" for n, o in outcomes.items())
    print(f"\nper dataset (worker + matching): {timings}")
    print(f"total {time.perf_counter() - started:.1f}s")


if __name__ == "__main__":
    main()

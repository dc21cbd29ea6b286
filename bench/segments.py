"""Segment evaluation: the time to re-evaluate one profile after an event with 50
active segments (target p95 5 ms), and a full recompute of 100,000 profiles by
those 50 segments (target 60 s).

    .venv/bin/python bench/segments.py                        # SQLite
    .venv/bin/python bench/segments.py \\
        --database-url postgresql://postgres@127.0.0.1:5432/test

Not a test: it prints figures. It drops and recreates the tables of the database
it is given. The profiles are synthetic, shaped like a clothing shop's: most only
browse, some buy, a few buy often; events spread over the last 120 days.
"""

import argparse
import os
import random
import shlex
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert
from sqlmodel import Session, SQLModel, func, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core import db  # noqa: E402
from core.settings import get_settings  # noqa: E402
from profiles.models import Consent, Event, Order, Profile  # noqa: E402
from segments import membership  # noqa: E402
from segments import service as states  # noqa: E402
from segments.models import ProfileState, SegmentMember  # noqa: E402

CATEGORIES = [
    "Women/Tops/Jackets", "Women/Tops/Hoodies", "Women/Bottoms/Pants",
    "Men/Tops/Jackets", "Men/Tops/Tees", "Men/Bottoms/Shorts", "Gear/Bags",
    "Gear/Fitness", "Gear/Watches", "Sale",
]  # fmt: skip
STAGES = ["orientation", "comparison", "decision", "evaluation"]
CELLS = [None, None, "one_time", "promising", "loyal", "sleepers", "red_alert"]
COUNTRIES = ["NL", "DE", "BE", "FR", "US"]


def fifty_segments() -> str:
    """50 segments of the kinds marketers write: windows, sums, labels, traits."""
    lines = ["segments:"]

    def add(name: str, condition: str) -> None:
        body = "\n".join("      " + line for line in condition.strip().splitlines())
        lines.extend([f"  - name: {name}", "    when:", body])

    for n, category in enumerate(CATEGORIES):
        key = category.lower().replace("/", "_")
        add(
            f"viewed_{key}",
            f"""
event: Product Viewed
where: {{category: {{contains: "{category}"}}}}
within_days: {7 + n}
count: {{min: {1 + n % 3}}}""",
        )
        add(
            f"bought_{key}",
            f"""
event: Order Completed
where: {{category: "{category}"}}
within_days: 90""",
        )
    for days in (30, 90, 180, 365):
        add(
            f"spent_100_in_{days}",
            f"""
event: Order Completed
within_days: {days}
sum: {{property: total, min: 100}}""",
        )
    for stage in STAGES:
        add(f"stage_{stage}", f"stage: {stage}")
    for cell in ("loyal", "promising", "sleepers", "red_alert", "one_time"):
        add(f"cell_{cell}", f"retention: {cell}")
    for country in COUNTRIES:
        add(f"from_{country.lower()}", f"trait: country\nequals: {country}")
    add("opted_in", "consent: email_marketing")
    add(
        "abandoned_cart",
        """
all:
  - event: Product Added
    within_days: 2
  - not:
      event: Order Completed
      within_days: 2""",
    )
    add(
        "lapsed_big_spenders",
        """
all:
  - computed: revenue
    min: 150
  - computed: days_since_last_order
    min: 60""",
    )
    add(
        "new_and_browsing",
        """
all:
  - computed: days_since_created
    max: 14
  - event: Product Viewed
    within_days: 14
    count: {min: 5}""",
    )
    add(
        "dutch_jacket_fans",
        """
all:
  - trait: country
    equals: NL
  - any:
      - event: Product Viewed
        where: {category: {contains: Jackets}}
        within_days: 30
        count: {min: 2}
      - event: Order Completed
        where: {category: {contains: Jackets}}
        within_days: 365""",
    )
    for days in (1, 3, 7, 14, 30):
        add(
            f"active_in_{days}",
            f"""
event: [Product Viewed, Products Searched, Product Added]
within_days: {days}""",
        )
    add("searchers", "event: Products Searched\nwithin_days: 30\ncount: {min: 3}")
    add("big_basket", "computed: average_order_value\nmin: 120")
    return "\n".join(lines) + "\n"


def populate(engine, profiles: int, now: datetime) -> list[str]:  # type: ignore[no-untyped-def]
    """Profiles with events, orders, consents and states, inserted in bulk."""
    rng = random.Random(7)
    ids: list[str] = []
    for start in range(0, profiles, 2000):
        rows: dict[type, list[dict]] = {Profile: [], Event: [], Order: [], Consent: []}
        state_rows = []
        for n in range(start, min(start + 2000, profiles)):
            profile_id = uuid.uuid4().hex
            ids.append(profile_id)
            created = now - timedelta(days=rng.uniform(0, 400))
            rows[Profile].append({
                "id": profile_id, "traits": {"country": rng.choice(COUNTRIES)},
                "trait_times": {}, "trait_sources": {}, "trait_counts": {},
                "created_at": created, "updated_at": now, "last_seen_at": now,
            })  # fmt: skip
            rows[Event].extend(_events(rng, profile_id, now))
            rows[Order].extend(_orders(rng, profile_id, now, n))
            if rng.random() < 0.3:
                rows[Consent].append({
                    "profile_id": profile_id, "purpose": "email_marketing",
                    "status": "granted", "lawful_basis": "consent", "source": "bench",
                    "version": "", "recorded_at": created,
                })  # fmt: skip
            state_rows.append({
                "profile_id": profile_id, "stage": rng.choice(STAGES),
                "retention": rng.choice(CELLS), "stage_since": now,
                "retention_since": now, "updated_at": now,
            })  # fmt: skip
        with engine.begin() as connection:
            for table, values in rows.items():
                if values:
                    connection.execute(insert(table), values)
            connection.execute(insert(ProfileState), state_rows)
    return ids


def _events(rng: random.Random, profile_id: str, now: datetime) -> list[dict]:
    events = []
    for _ in range(rng.choice([1, 2, 3, 4, 6, 8, 12])):
        name = rng.choices(
            ["Product Viewed", "Products Searched", "Product Added"], [8, 2, 1]
        )[0]
        events.append({
            "message_id": uuid.uuid4().hex, "profile_id": profile_id, "type": "track",
            "name": name, "properties": {"sku": f"S{rng.randrange(2000)}",
                                         "category": rng.choice(CATEGORIES)},
            "context": {}, "source": "website", "identity_keys": [],
            "timestamp": now - timedelta(days=rng.expovariate(1 / 20)),
            "received_at": now,
        })  # fmt: skip
    return events


def _orders(rng: random.Random, profile_id: str, now: datetime, n: int) -> list[dict]:
    count = rng.choices([0, 1, 2, 5], [70, 18, 8, 4])[0]
    orders = []
    for k in range(count):
        placed = now - timedelta(days=rng.uniform(0, 365))
        total = round(rng.uniform(20, 200), 2)
        products = [
            {"sku": f"S{rng.randrange(2000)}", "category": rng.choice(CATEGORIES)}
        ]
        orders.append({
            "profile_id": profile_id, "order_id": f"o-{n}-{k}", "source": "bench",
            "status": "completed", "total": total, "currency": "EUR",
            "products": products, "placed_at": placed, "changed_at": placed,
        })  # fmt: skip
    return orders


def percentiles(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100)
    return cuts[49] * 1000, cuts[94] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url")
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000, help="incremental runs")
    args = parser.parse_args()

    url = args.database_url or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    engine = db.make_engine(url)
    SQLModel.metadata.drop_all(engine)
    db.create_tables(engine)
    now = datetime.now(UTC)
    definitions_file = Path(tempfile.mkdtemp()) / "segments.yml"
    definitions_file.write_text(fifty_segments())
    # Everything, the worker's refresh included, reads these 50 segments.
    os.environ["CDP_SEGMENTS__DEFINITIONS_PATH"] = str(definitions_file)
    get_settings.cache_clear()
    definitions = membership.get_definitions()
    started = time.perf_counter()
    ids = populate(engine, args.profiles, now)
    if engine.dialect.name == "postgresql":
        # Statistics, as autovacuum gathers them on a live database; a fresh bulk
        # load has none. (SQLite's planner does better without them here.)
        db.analyze(engine)
    with Session(engine) as session:
        events = session.exec(select(func.count()).select_from(Event)).one()
    print(f"populated {len(ids):,} profiles, {events:,} events "
          f"in {time.perf_counter() - started:.0f}s")  # fmt: skip

    with Session(engine) as session:
        started = time.perf_counter()
        membership.recompute_all(session)
        full = time.perf_counter() - started
        members = session.exec(select(func.count()).select_from(SegmentMember)).one()
    if engine.dialect.name == "postgresql":
        # The memberships just written, as autovacuum sees them within a minute:
        # with the statistics of empty tables, the next reads plan badly.
        db.analyze(engine)
    with Session(engine) as session:
        started = time.perf_counter()
        membership.recompute_all(session)  # as a nightly repair: little changes
        again = time.perf_counter() - started

    evaluate, refresh = [], []
    rng = random.Random(11)
    for n in range(args.events):
        profile_id = rng.choice(ids)
        with Session(engine) as session:
            session.add(Event(
                message_id=f"bench-{n}", profile_id=profile_id, type="track",
                name="Product Viewed", timestamp=datetime.now(UTC),
                properties={"sku": "S1", "category": rng.choice(CATEGORIES)},
            ))  # fmt: skip
            session.commit()
            started = time.perf_counter()
            membership.evaluate(
                session, [profile_id], reason="bench", definitions=definitions
            )
            session.commit()
            evaluate.append(time.perf_counter() - started)
            started = time.perf_counter()
            states.refresh(session, [profile_id])  # stage, cell, then segments
            refresh.append(time.perf_counter() - started)

    store = "SQLite" if url.startswith("sqlite") else "PostgreSQL"
    print(f"\nsegments, {store}: {len(definitions.segments)} segments, "
          f"{len(ids):,} profiles, {events:,} events")  # fmt: skip
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(f"{'what':52} {'p50 ms':>8} {'p95 ms':>8}")
    a, b = percentiles(evaluate)
    print(
        f"{'one profile after an event: segments (target p95 5)':52} {a:8.2f} {b:8.2f}"
    )
    a, b = percentiles(refresh)
    print(f"{'... with its stage and cell as the worker does':52} {a:8.2f} {b:8.2f}")
    print(f"full recompute, every entry new: {full:.1f}s for {len(ids):,} profiles "
          f"({len(ids) / full:,.0f} profiles/s; target 60 s), "
          f"{members:,} memberships")  # fmt: skip
    print(f"full recompute again, as a repair: {again:.1f}s "
          f"({len(ids) / again:,.0f} profiles/s)")  # fmt: skip


if __name__ == "__main__":
    main()

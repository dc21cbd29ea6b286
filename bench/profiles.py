"""Profile store latency: identifier lookup, full profile read at a paced 1,000
reads per second (built from the store, and through the api's read model in Redis),
and merges per second, each beside a raw primary-key read in the same run.

    .venv/bin/python bench/profiles.py                       # SQLite
    .venv/bin/python bench/profiles.py \\
        --database-url postgresql://postgres@127.0.0.1:5432/test

Not a test: it prints figures. It drops and recreates the tables of the database
it is given.
"""

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text
from sqlmodel import Session, SQLModel

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core import db  # noqa: E402
from core.redis import EmbeddedRedis  # noqa: E402
from core.settings import get_settings  # noqa: E402
from profiles import service  # noqa: E402
from profiles.api import read_document, to_public  # noqa: E402
from profiles.models import Event, Identity, IdentityType, Order, Profile  # noqa: E402

EMAIL, ANON = IdentityType.email, IdentityType.anonymous_id


def populate(engine, profiles: int, events_each: int) -> list[str]:  # type: ignore[no-untyped-def]
    ids = []
    now = datetime.now(UTC)
    with Session(engine) as session:
        for n in range(profiles):
            profile = Profile(traits={"first_name": f"p{n}", "city": "Leipzig"})
            ids.append(profile.id)
            session.add(profile)
            session.flush()  # no ORM relationships: insert the profile first
            session.add(
                Identity(profile_id=profile.id, type="email", value=f"p{n}@example.com")
            )
            session.add(
                Identity(profile_id=profile.id, type="anonymous_id", value=f"a-{n}")
            )
            for e in range(events_each):
                session.add(Event(
                    message_id=str(uuid.uuid4()), profile_id=profile.id, type="track",
                    name="Product Viewed", timestamp=now - timedelta(hours=e),
                    properties={"sku": "WJ06", "category": "Women/Tops/Jackets"},
                ))  # fmt: skip
            session.add(Order(
                profile_id=profile.id, order_id=f"o-{n}", total=50.0, placed_at=now,
                changed_at=now, products=[{"sku": "WJ06", "category": "Women"}],
            ))  # fmt: skip
            if n % 1000 == 999:
                session.commit()
        session.commit()
    return ids


def percentiles(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100)
    return cuts[49] * 1000, cuts[94] * 1000


def time_each(action, items) -> list[float]:  # type: ignore[no-untyped-def]
    samples = []
    for item in items:
        started = time.perf_counter()
        action(item)
        samples.append(time.perf_counter() - started)
    return samples


def paced(action, items, rate: float) -> tuple[list[float], float]:  # type: ignore[no-untyped-def]
    """Open loop: each read is due at its slot; latency counts from the slot, so a
    store that cannot keep up shows it in the figures."""
    samples, start = [], time.perf_counter()
    for n, item in enumerate(items):
        due = start + n / rate
        while time.perf_counter() < due:
            pass
        action(item)
        samples.append(time.perf_counter() - due)
    return samples, len(items) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url")
    parser.add_argument("--profiles", type=int, default=20_000)
    parser.add_argument("--events-each", type=int, default=10)
    parser.add_argument("--reads", type=int, default=5_000)
    parser.add_argument("--redis-url", help="default: an embedded Redis")
    args = parser.parse_args()
    embedded = None
    if not args.redis_url:
        embedded = EmbeddedRedis(Path(tempfile.mkdtemp()) / "redis").start()
    os.environ["REDIS_URL"] = args.redis_url or embedded.url  # type: ignore[union-attr]
    os.environ["CDP_TRACKING__STREAM"] = f"bench:{uuid.uuid4().hex}"
    get_settings.cache_clear()

    url = args.database_url or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    engine = db.make_engine(url)
    SQLModel.metadata.drop_all(engine)
    db.create_tables(engine)
    started = time.perf_counter()
    ids = populate(engine, args.profiles, args.events_each)
    if engine.dialect.name == "postgresql":
        db.analyze(engine)  # as autovacuum would on a live database
    print(f"populated {len(ids):,} profiles in {time.perf_counter() - started:.0f}s")
    picks = [random.randrange(len(ids)) for _ in range(args.reads)]

    reader = db.reading(engine)  # what the api's read routes use

    def raw_read(n: int, engine=engine) -> None:  # type: ignore[no-untyped-def]
        with engine.connect() as connection:
            connection.execute(
                text("SELECT * FROM profile WHERE id = :id"), {"id": ids[n]}
            ).one()

    def lookup(n: int) -> None:
        with Session(reader) as session:
            assert (
                service.get_by_identity(session, (EMAIL, f"p{n}@example.com"))
                is not None
            )

    def lookup_in_transaction(n: int) -> None:
        with Session(engine) as session:
            assert (
                service.get_by_identity(session, (EMAIL, f"p{n}@example.com"))
                is not None
            )

    def read(n: int) -> None:
        with Session(reader) as session:
            to_public(
                session, service.get_by_ref_or_raise(session, f"email:p{n}@example.com")
            )

    def cached_read(n: int) -> None:
        with Session(reader) as session:
            read_document(session, f"email:p{n}@example.com")

    raw = percentiles(time_each(raw_read, picks))
    raw_reading = percentiles(time_each(lambda n: raw_read(n, reader), picks))
    looked = percentiles(time_each(lookup, picks))
    transacted = percentiles(time_each(lookup_in_transaction, picks))
    # The worker looks identifiers up inside the transaction that applies a batch:
    # no BEGIN and ROLLBACK of its own, each a round trip on PostgreSQL.
    with Session(engine) as session:

        def lookup_in_batch(n: int) -> None:
            session.info.pop("identity_profile", None)  # no answer from before
            assert (
                service.get_by_identity(session, (EMAIL, f"p{n}@example.com"))
                is not None
            )
            session.expunge_all()

        batched = percentiles(time_each(lookup_in_batch, picks))
    unpaced = percentiles(time_each(read, picks))
    read_samples, rate = paced(read, picks, 1000.0)
    reads = percentiles(read_samples)
    for n in set(picks):  # warm: the read model holds what was read before
        cached_read(n)
    cached_samples, cached_rate = paced(cached_read, picks, 1000.0)
    cached = percentiles(cached_samples)

    merges = min(1000, len(ids) // 2)
    started = time.perf_counter()
    for n in range(merges):
        with Session(engine) as session:
            service.resolve(
                session,
                [(EMAIL, f"p{2 * n}@example.com"), (ANON, f"a-{2 * n + 1}")],
                source="bench",
            )
            session.commit()
    merge_rate = merges / (time.perf_counter() - started)

    store = "SQLite" if url.startswith("sqlite") else "PostgreSQL"
    print(
        f"\nprofile store, {store}, {len(ids):,} profiles x {args.events_each} events"
    )
    print(f"{'what':44} {'p50 ms':>8} {'p95 ms':>8}")
    print(f"{'raw primary-key read, in a transaction':44} {raw[0]:8.2f} {raw[1]:8.2f}")
    print(f"{'raw primary-key read, autocommit (ceiling)':44} "
          f"{raw_reading[0]:8.2f} {raw_reading[1]:8.2f}")  # fmt: skip
    print(f"{'identifier lookup (email), as the api reads':44} "
          f"{looked[0]:8.2f} {looked[1]:8.2f}")  # fmt: skip
    print(f"{'... in a transaction of its own':44} "
          f"{transacted[0]:8.2f} {transacted[1]:8.2f}")  # fmt: skip
    print(f"{'... inside a transaction, as the worker does':44} "
          f"{batched[0]:8.2f} {batched[1]:8.2f}")  # fmt: skip
    print(f"{'profile read, one after another':44} {unpaced[0]:8.2f} {unpaced[1]:8.2f}")
    label = f"profile read, paced 1,000/s (got {rate:,.0f}/s)"
    print(f"{label:44} {reads[0]:8.2f} {reads[1]:8.2f}")
    label = f"... through the read model (got {cached_rate:,.0f}/s)"
    print(f"{label:44} {cached[0]:8.2f} {cached[1]:8.2f}")
    print(f"{'merges per second':44} {merge_rate:8.0f}")
    if embedded is not None:
        embedded.stop()


if __name__ == "__main__":
    main()

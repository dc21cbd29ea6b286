"""External data: the time enrichment adds to each event the worker applies
(location from the IP address, device from the user agent, the profile's
summary), with its caches cold and warm, and the time of a profile's snapshot
with the weather asked for (cold) and cached (warm).

    .venv/bin/python bench/context.py                         # SQLite, embedded Redis
    .venv/bin/python bench/context.py \\
        --database-url postgresql://postgres@127.0.0.1:5432/test \\
        --redis-url redis://127.0.0.1:6379/0

Not a test: it prints figures. It drops and recreates the tables of the database
it is given. Weather comes from a local fake of Open-Meteo that replays the
recorded answer of a hot day (tests/context/data), so the cold figure is a local
HTTP round trip, not the internet's.
"""

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlmodel import Session, SQLModel, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from context import service as context_data  # noqa: E402
from context.device import parse_user_agent  # noqa: E402
from context.models import ProfileContext  # noqa: E402
from context.service import Observation  # noqa: E402
from core import db  # noqa: E402
from core.redis import EmbeddedRedis, get_redis  # noqa: E402
from core.settings import get_settings  # noqa: E402
from events import worker  # noqa: E402

RECORD = ROOT / "tests" / "context" / "data" / "open_meteo_hot.json"
# Networks of universities in several countries; hosts are drawn from them.
NETWORKS = [
    "131.211", "147.96", "130.237", "131.111", "141.20", "18.9", "132.204",
    "129.78", "133.11", "128.178",
]  # fmt: skip
AGENTS = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_{v} like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.{v} Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like "
    "Gecko) Chrome/125.0.6422.{v} Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "
    "Gecko) Chrome/125.0.{v}.0 Safari/537.36 Edg/125.0.2535.67",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, "
    "like Gecko) Version/17.{v} Safari/605.1.15",
]


def fake_open_meteo() -> str:
    """Open-Meteo's forecast endpoint on a free local port, answering every place
    with the recorded hot days moved to the last 24 hours."""
    record = json.loads(RECORD.read_text())
    shift = (int(time.time()) - record["current"]["time"]) // 86400 * 86400
    record["current"]["time"] += shift
    for section in ("hourly", "daily"):
        record[section]["time"] = [t + shift for t in record[section]["time"]]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = parse_qs(urlsplit(self.path).query)
            places = len(query["latitude"][0].split(","))
            body = json.dumps(record if places == 1 else [record] * places).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/v1/forecast"


def envelopes(count: int, *, distinct: bool, seed: int) -> Iterator[dict[str, Any]]:
    """Page views of 200 visitors; ``distinct`` gives every event a user agent
    and an address never seen before (cold caches), else a few of each (warm)."""
    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(days=1)
    for n in range(count):
        version = n if distinct else n % 3
        agent = AGENTS[n % len(AGENTS)].format(v=version)
        network = NETWORKS[n % len(NETWORKS)]
        host = (n // 250, n % 250 + 1) if distinct else (1, n % 5 + 1)
        yield {
            "type": "page", "messageId": f"{seed}-{n}", "name": "Home",
            "anonymousId": f"visitor-{seed}-{rng.randrange(200)}",
            "timestamp": (start + timedelta(seconds=20 * n)).isoformat(),
            "context": {"ip": f"{network}.{host[0]}.{host[1]}", "userAgent": agent},
        }  # fmt: skip


def apply_seconds(engine: Any, events: list[dict[str, Any]]) -> float:
    """Seconds to apply the events in batches of 100, as the worker does."""
    started = time.perf_counter()
    for first in range(0, len(events), 100):
        with Session(engine) as session:
            for envelope in events[first : first + 100]:
                worker.apply_event(session, envelope)
            session.commit()
    return time.perf_counter() - started


def without_enrichment() -> Callable[[], None]:
    """Switch enrichment off in the worker; returns what switches it back on."""
    enrich, record = context_data.enrich, context_data.record
    context_data.enrich = lambda context: (dict(context), Observation())  # type: ignore[assignment]
    context_data.record = lambda *_args, **_kwargs: None  # type: ignore[assignment]

    def restore() -> None:
        context_data.enrich, context_data.record = enrich, record  # type: ignore[assignment]

    return restore


def per_event_ms(seconds: float, count: int) -> str:
    return f"{seconds / count * 1000:.3f} ms"


def bench_events(engine: Any, count: int) -> None:
    print(f"enrichment per event ({count} page views, batches of 100):")
    # Enrichment alone, as the worker calls it.
    parse_user_agent.cache_clear()
    cold_events = list(envelopes(count, distinct=True, seed=1))
    started = time.perf_counter()
    for envelope in cold_events:
        context_data.enrich(envelope["context"])
    cold = time.perf_counter() - started
    started = time.perf_counter()
    for envelope in cold_events:
        context_data.enrich(envelope["context"])
    warm = time.perf_counter() - started
    print(
        f"  enrich() alone, cold caches (every agent new): {per_event_ms(cold, count)}"
    )
    print(
        f"  enrich() alone, warm caches:                   {per_event_ms(warm, count)}"
    )

    # The whole apply, with and without enrichment, on fresh events each time.
    parse_user_agent.cache_clear()
    restore = without_enrichment()
    base = apply_seconds(engine, list(envelopes(count, distinct=True, seed=2)))
    restore()
    cold_apply = apply_seconds(engine, list(envelopes(count, distinct=True, seed=3)))
    warm_apply = apply_seconds(engine, list(envelopes(count, distinct=False, seed=4)))
    print(f"  apply_event without enrichment:  {per_event_ms(base, count)}")
    print(
        f"  apply_event with, cold caches:   {per_event_ms(cold_apply, count)} "
        f"(+{per_event_ms(cold_apply - base, count)})"
    )
    print(
        f"  apply_event with, warm caches:   {per_event_ms(warm_apply, count)} "
        f"(+{per_event_ms(warm_apply - base, count)})"
    )


def bench_snapshots(engine: Any, count: int = 100) -> None:
    """Each profile's snapshot from an empty cache (the weather is asked for),
    then again from the cache."""
    with Session(engine) as session:
        ids = session.exec(select(ProfileContext.profile_id).limit(count)).all()
    client = get_redis()
    cold, warm = [], []
    with Session(engine) as session:
        for profile_id in ids:
            for key in client.scan_iter("cdp:context:*"):
                client.delete(key)
            started = time.perf_counter()
            facts = context_data.snapshot(session, profile_id)
            cold.append(time.perf_counter() - started)
            started = time.perf_counter()
            context_data.snapshot(session, profile_id)
            warm.append(time.perf_counter() - started)
    print(f"snapshot of one profile ({len(ids)} profiles; e.g. {facts}):")
    for name, times in (("cold (weather asked for)", cold), ("warm (cached)", warm)):
        ms = sorted(t * 1000 for t in times)
        p95 = ms[max(int(len(ms) * 0.95) - 1, 0)]
        print(f"  {name:26} p50 {statistics.median(ms):.3f} ms, p95 {p95:.3f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url")
    parser.add_argument("--redis-url")
    parser.add_argument("--events", type=int, default=2000)
    args = parser.parse_args()

    url = args.database_url or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    embedded = None
    if args.redis_url is None:
        embedded = EmbeddedRedis(Path(tempfile.mkdtemp())).start()
    os.environ["DATABASE_URL"] = url
    os.environ["REDIS_URL"] = args.redis_url or embedded.url  # type: ignore[union-attr]
    os.environ["CDP_TRACKING__STREAM"] = f"bench:{uuid.uuid4().hex}:events"
    os.environ["CDP_CONTEXT__WEATHER_URL"] = fake_open_meteo()
    get_settings.cache_clear()
    engine = db.make_engine(url)
    SQLModel.metadata.drop_all(engine)
    db.create_tables(engine)
    print(f"store: {engine.url.get_backend_name()}; redis: {os.environ['REDIS_URL']}")
    try:
        bench_events(engine, args.events)
        bench_snapshots(engine)
    finally:
        if embedded is not None:
            embedded.stop()


if __name__ == "__main__":
    main()

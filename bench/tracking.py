"""Tracking throughput: events accepted per second (batches and single requests,
concurrent clients), events applied to profiles per second, and the raw Redis
stream append rate on the same machine as the ceiling.

    .venv/bin/python bench/tracking.py                      # SQLite + embedded Redis
    .venv/bin/python bench/tracking.py \
        --database-url postgresql://postgres@127.0.0.1:5432/test \
        --redis-url redis://127.0.0.1:6379/0

Not a test: it prints figures. Run it on an otherwise idle machine.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import redis
from sqlalchemy import func
from sqlmodel import Session, SQLModel, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core import db  # noqa: E402
from core.redis import EmbeddedRedis, free_port  # noqa: E402
from profiles.models import Event  # noqa: E402

AUTH = ("demo-write-key", "")


def message(visitor: int) -> dict:
    return {
        "type": "track",
        "anonymousId": f"bench-{visitor}",
        "messageId": str(uuid.uuid4()),
        "event": "Product Viewed",
        "properties": {"sku": "WJ06", "name": "Juno Jacket", "price": 77.0},
        "context": {"page": {"path": "/shop/p/wj06"}, "userAgent": "bench"},
    }


def raw_xadd_rate(client: redis.Redis, events: int) -> float:
    stream = f"bench:raw:{uuid.uuid4().hex}"
    payload = json.dumps(message(1))
    started = time.perf_counter()
    for offset in range(0, events, 100):
        pipe = client.pipeline(transaction=False)
        for _ in range(min(100, events - offset)):
            pipe.xadd(stream, {"payload": payload})
        pipe.execute()
    elapsed = time.perf_counter() - started
    client.delete(stream)
    return events / elapsed


def post_all(url: str, bodies: list[dict], clients: int) -> float:
    def send(chunk: list[dict]) -> None:
        with httpx.Client(auth=AUTH, timeout=30) as http:
            for body in chunk:
                response = http.post(url, json=body)
                response.raise_for_status()

    chunks = [bodies[i::clients] for i in range(clients)]
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(send, chunks))
    return time.perf_counter() - started


def count_events(engine) -> int:  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(Event)).one())


def wait_until(probe, timeout: float = 120) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise TimeoutError("gave up waiting")
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url")
    parser.add_argument("--redis-url")
    parser.add_argument("--events", type=int, default=20_000, help="events in batches")
    parser.add_argument("--singles", type=int, default=3_000, help="single requests")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument(
        "--events-per-visitor", type=int, default=10,
        help="a visit is several events; 1 makes every event a new profile",
    )  # fmt: skip
    args = parser.parse_args()
    per_visitor = args.events_per_visitor

    workdir = Path(tempfile.mkdtemp(prefix="cdp-bench-"))
    database_url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
    embedded = None if args.redis_url else EmbeddedRedis(workdir / "redis").start()
    redis_url = args.redis_url or embedded.url  # type: ignore[union-attr]
    engine = db.make_engine(database_url)
    SQLModel.metadata.drop_all(engine)
    db.create_tables(engine)
    stream = f"bench:{uuid.uuid4().hex}:events"
    port = free_port()
    env = {
        **os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
        "CDP_TRACKING__STREAM": stream, "CDP_API__PORT": str(port),
        "CDP_LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT),
    }  # fmt: skip
    api = subprocess.Popen([sys.executable, "-m", "api.main"], env=env, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    client = redis.Redis.from_url(redis_url)
    try:
        wait_until(lambda: _up(f"{base}/v1/products?limit=1"), timeout=180)
        ceiling = raw_xadd_rate(client, args.events)

        batches = [
            {"batch": [message((i * 100 + j) // per_visitor) for j in range(100)]}
            for i in range(args.events // 100)
        ]
        batch_seconds = post_all(f"{base}/v1/batch", batches, args.clients)
        singles = [message(10**9 + i // per_visitor) for i in range(args.singles)]
        single_seconds = post_all(f"{base}/v1/track", singles, args.clients)
        total = len(batches) * 100 + len(singles)

        worker = subprocess.Popen(
            [sys.executable, "-m", "events.worker"], env=env, cwd=ROOT
        )
        started = time.perf_counter()
        wait_until(lambda: count_events(engine) >= total, timeout=1800)
        applied_seconds = time.perf_counter() - started
        worker.terminate()
        worker.wait()
    finally:
        api.terminate()
        api.wait()
        client.delete(stream, stream + ":failed")
        if embedded:
            embedded.stop()

    store = "SQLite" if database_url.startswith("sqlite") else "PostgreSQL"
    server = "embedded Redis" if embedded else "Redis server"
    print(
        f"\ntracking throughput, {store} + {server}, {args.clients} clients,", end=" "
    )
    print(f"{os.cpu_count()} cores, {per_visitor} events per visitor")
    print(f"{'what':42} {'figure':>12}")
    print(f"{'raw XADD (pipelined, ceiling)':42} {ceiling:>10,.0f}/s")
    batch_rate = len(batches) * 100 / batch_seconds
    print(f"{'accepted in batches of 100':42} {batch_rate:>10,.0f}/s")
    print(
        f"{'accepted as single requests':42} {len(singles) / single_seconds:>10,.0f}/s"
    )
    print(f"{'applied to profiles (1 worker)':42} {total / applied_seconds:>10,.0f}/s")


def _up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    main()

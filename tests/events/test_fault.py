"""A worker killed with SIGKILL mid-stream loses nothing and applies nothing twice."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis
from sqlalchemy import Engine, create_engine, func
from sqlmodel import Session, select

from core.settings import ROOT, get_settings
from events import queue
from profiles.models import Event
from tests.events.test_worker import envelope

EVENTS = 6_000


def start_worker(engine: Engine, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "CDP_TRACKING__CLAIM_IDLE_MS": "1000",
        "PYTHONPATH": str(ROOT),
    }
    with log.open("ab") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "events.worker"], env=env, cwd=ROOT,
            stdout=handle, stderr=subprocess.STDOUT,
        )  # fmt: skip


def stored(engine: Engine) -> tuple[int, int]:
    # A plain engine: the project's own opens every SQLite transaction IMMEDIATE,
    # and a poller queued behind the worker's write lock would see the stream only
    # once the worker is done with it.
    reader = create_engine(engine.url)
    with Session(reader) as session:
        total = session.exec(select(func.count()).select_from(Event)).one()
        distinct = session.exec(
            select(func.count(func.distinct(Event.message_id)))
        ).one()
    reader.dispose()
    return int(total), int(distinct)


def wait_for(condition, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_worker_killed_mid_stream_loses_nothing_and_applies_nothing_twice(
    settings_env: str, engine: Engine, tmp_path: Path
) -> None:
    client = redis.Redis.from_url(get_settings().redis_url, decode_responses=True)
    queue.publish(
        client, settings_env,
        [envelope(f"m-{i}", anonymousId=f"v-{i % 97}") for i in range(EVENTS)],
    )  # fmt: skip
    first = start_worker(engine, tmp_path / "worker.log")
    try:
        assert wait_for(lambda: stored(engine)[0] >= 200, timeout=120), (
            tmp_path / "worker.log"
        ).read_text()[-2000:]
        first.send_signal(signal.SIGKILL)
        first.wait()
        killed_at = stored(engine)[0]

        second = start_worker(engine, tmp_path / "worker.log")
        try:
            finished = wait_for(lambda: stored(engine)[0] >= EVENTS, timeout=180)
        finally:
            second.terminate()
            second.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()

    assert killed_at < EVENTS, "the worker finished before it could be killed"
    assert finished, (tmp_path / "worker.log").read_text()[-2000:]
    assert stored(engine) == (EVENTS, EVENTS)
    group = get_settings().tracking.consumer_group
    assert client.xpending(settings_env, group)["pending"] == 0

"""Both Meta channels enabled against a local fake Graph API, Rasa played by a
local fake, the webhooks served by the channel routes, and the channel worker at
hand to be run round by round."""

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, SQLModel

from channels import handover, messenger, whatsapp
from channels.messenger import Messenger
from channels.rasa import RasaClient
from channels.whatsapp import WhatsApp
from channels.worker import ChannelWorker
from core import db
from core.errors import install_error_handlers
from core.settings import get_settings
from events.worker import Worker
from profiles import service as profiles
from profiles.models import Event, Identity
from tests.channels.fakes import TOKEN, FakeGraph, FakeRasa
from tests.channels.payloads import (
    APP_SECRET,
    PAGE_ID,
    PHONE_NUMBER_ID,
    VERIFY_TOKEN,
    signed,
)
from tests.events.test_worker import drain as drain_events


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    server = FakeGraph()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def rasa() -> Iterator[FakeRasa]:
    server = FakeRasa()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def meta_env(
    settings_env: str,
    monkeypatch: pytest.MonkeyPatch,
    graph: FakeGraph,
    rasa: FakeRasa,
    redis_url: str,
) -> Iterator[str]:
    """Both channels on, pointed at the fakes, with a short retry budget."""
    for name in ("WHATSAPP", "MESSENGER"):
        for key, value in {
            "ENABLED": "true", "GRAPH_URL": f"{graph.url}/v21.0",
            "ACCESS_TOKEN": TOKEN, "APP_SECRET": APP_SECRET,
            "VERIFY_TOKEN": VERIFY_TOKEN, "TIMEOUT_SECONDS": "0.5",
            "RETRY_SECONDS": "3",
        }.items():  # fmt: skip
            monkeypatch.setenv(f"CDP_{name}__{key}", value)
    monkeypatch.setenv("CDP_WHATSAPP__PHONE_NUMBER_ID", PHONE_NUMBER_ID)
    monkeypatch.setenv("CDP_MESSENGER__PAGE_ID", PAGE_ID)
    monkeypatch.setenv("CDP_RASA__URL", rasa.url)
    get_settings.cache_clear()
    yield settings_env
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(f"{settings_env}:*"):
        client.delete(key)
    get_settings.cache_clear()


@pytest.fixture
def redis_client(meta_env: str, redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url, decode_responses=True)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Engine]:
    """A profile store for tests that do not look into it (one SQL dialect)."""
    engine = db.make_engine(f"sqlite:///{tmp_path / 'channels.db'}")
    db.create_tables(engine)
    yield engine
    SQLModel.metadata.drop_all(engine)
    engine.dispose()


@pytest.fixture
def api(meta_env: str) -> Iterator[TestClient]:
    """The channel routes, as the api serves them."""
    app = FastAPI()
    install_error_handlers(app)
    for module in (whatsapp, messenger, handover):
        app.include_router(module.router)
    with TestClient(app) as client:
        yield client


@pytest.fixture
def make_worker(
    redis_client: redis.Redis, rasa: FakeRasa
) -> Callable[[Engine], ChannelWorker]:
    def make(engine: Engine) -> ChannelWorker:
        channels = {
            "whatsapp": WhatsApp(redis_client, engine),
            "messenger": Messenger(redis_client),
        }
        worker = ChannelWorker(
            redis_client, channels, RasaClient(rasa.url, 2.0), max_pause_seconds=0.2
        )
        worker.ensure_groups()
        return worker

    return make


@pytest.fixture
def worker(
    make_worker: Callable[[Engine], ChannelWorker], store: Engine
) -> ChannelWorker:
    return make_worker(store)


def post(api: TestClient, channel: str, payload: dict[str, Any]) -> httpx.Response:
    """A webhook call signed as Meta signs it."""
    body, signature = signed(payload)
    return api.post(
        f"/v1/channels/{channel}/webhook",
        content=body,
        headers={"X-Hub-Signature-256": signature, "Content-Type": "application/json"},
    )


def drain(worker: ChannelWorker) -> None:
    """Run the worker until a round handles nothing."""
    while worker.run_once(block_ms=50):
        pass


def timeline(
    engine: Engine, client: redis.Redis, ref: str
) -> tuple[list[Event], list[Identity]]:
    """The events the event worker put on the profile, oldest first, and its
    identities."""
    drain_events(Worker(engine, client))
    with Session(engine) as session:
        profile = profiles.get_by_ref_or_raise(session, ref)
        events = profiles.list_events(session, profile, limit=100)
        identities = profiles.list_identities(session, profile)
    return list(reversed(events)), identities

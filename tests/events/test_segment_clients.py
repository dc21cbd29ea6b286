"""Segment's client libraries against the real api on a loopback port.

The Python library (``segment-analytics-python``) posts batches to ``/v1/batch``
with the write key as the HTTP Basic user name and, when asked, a gzip-compressed
body. The browser library (``@segment/analytics-next``, driven for real in
tests/browser) first reads ``/v1/projects/{writeKey}/settings``, then posts to the
short paths ``/v1/t``, ``/v1/p``, ... or ``/v1/b`` with JSON labelled ``text/plain``
and the key in the body as well; these tests hold the api to that wire format.
"""

import gzip
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from segment.analytics import Client

from core import db
from core.settings import get_settings
from tests.browser.live import LiveApi, serve_api
from tests.conftest import WRITE_KEY, basic


@pytest.fixture
def live_api(settings_env: str, tmp_path: Path) -> Iterator[LiveApi]:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'cdp.db'}")
    db.create_tables(engine)
    with serve_api(engine) as api:
        yield api
    engine.dispose()


def queued(stream: str) -> list[dict[str, Any]]:
    url = get_settings().redis_url
    with redis.Redis.from_url(url, decode_responses=True) as client:
        return [json.loads(f["payload"]) for _id, f in client.xrange(stream)]


@pytest.mark.parametrize("compress", [False, True], ids=["json", "gzip"])
def test_segment_python_library_calls_land_on_one_profile(
    live_api: LiveApi, compress: bool
) -> None:
    visitor, customer = f"v-{uuid.uuid4().hex[:8]}", f"c-{uuid.uuid4().hex[:8]}"
    errors: list[Exception] = []
    analytics = Client(
        WRITE_KEY, host=live_api.url, gzip=compress, max_retries=1,
        on_error=lambda error, _batch: errors.append(error),
    )  # fmt: skip

    analytics.page(anonymous_id=visitor, name="Home", properties={"path": "/"})
    analytics.track(
        anonymous_id=visitor, event="Product Viewed",
        properties={"product_id": "WJ06", "sku": "WJ06", "price": 77},
    )  # fmt: skip
    analytics.identify(
        customer, {"email": "ann@example.com", "first_name": "Ann"},
        anonymous_id=visitor,
    )  # fmt: skip
    analytics.shutdown()

    assert errors == []
    requests = live_api.received("/v1/batch")
    assert {r.headers.get("content-encoding") for r in requests} == {
        "gzip" if compress else None
    }
    assert {r.headers["authorization"] for r in requests} == {basic()["Authorization"]}
    events = live_api.wait_for_events("email:ann@example.com", 3)
    assert [(e["type"], e["name"]) for e in events] == [
        ("page", "Home"),
        ("track", "Product Viewed"),
        ("identify", None),
    ]
    assert {e["context"]["library"]["name"] for e in events} == {"analytics-python"}
    profile = live_api.profile(f"customer_id:{customer}")
    assert profile is not None
    assert profile["traits"]["first_name"] == "Ann"
    assert {(i["type"], i["value"]) for i in profile["identities"]} >= {
        ("anonymous_id", visitor),
        ("customer_id", customer),
        ("email", "ann@example.com"),
    }


def test_settings_for_a_write_key_send_analytics_js_back_to_this_api(
    live_api: LiveApi,
) -> None:
    response = httpx.get(f"{live_api.url}/v1/projects/{WRITE_KEY}/settings")

    assert response.status_code == 200, response.text
    segmentio = response.json()["integrations"]["Segment.io"]
    assert segmentio["apiKey"] == WRITE_KEY
    assert f"{segmentio['protocol']}://{segmentio['apiHost']}" == f"{live_api.url}/v1"
    assert response.json()["metrics"]["sampleRate"] == 0  # no reports to Segment
    assert response.headers["access-control-allow-origin"] == "*"


def test_settings_for_an_unknown_write_key_are_a_401(live_api: LiveApi) -> None:
    response = httpx.get(f"{live_api.url}/v1/projects/guess/settings")

    assert response.status_code == 401
    assert response.json()["detail"] == [
        {
            "type": "unauthorized",
            "loc": ["path", "write_key"],
            "msg": "unknown write key",
        }
    ]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/t", {"type": "track", "event": "Product Viewed"}),
        ("/v1/b", {"batch": [{"type": "track", "event": "Product Viewed"}]}),
    ],
    ids=["message", "batch"],
)
def test_plain_text_body_with_the_key_inside_is_queued_without_the_key(
    live_api: LiveApi, settings_env: str, path: str, body: dict[str, Any]
) -> None:
    # As analytics.js and sendBeacon send it: no Authorization header, text/plain.
    for item in body.get("batch", [body]):
        item.update(anonymousId="v-1", writeKey=WRITE_KEY)
    headers = {"Content-Type": "text/plain;charset=UTF-8"}

    response = httpx.post(
        f"{live_api.url}{path}", content=json.dumps({**body, "writeKey": WRITE_KEY}),
        headers=headers,
    )  # fmt: skip

    assert response.status_code == 200, response.text
    [event] = queued(settings_env)
    assert (event["event"], event["source"]) == ("Product Viewed", "website")
    assert "writeKey" not in event


PLAIN = {"Content-Type": "text/plain"}
UNACCEPTABLE = [
    pytest.param(PLAIN, b'{"anonymousId": ', 422, "json_invalid", id="bad-json"),
    pytest.param(
        PLAIN, b'{"anonymousId": "v", "writeKey": "guess"}', 401, "unauthorized",
        id="unknown-key-in-body",
    ),
    pytest.param(PLAIN, b'{"anonymousId": "v"}', 401, "unauthorized", id="no-key"),
    pytest.param(
        {**basic(), "Content-Encoding": "gzip"}, b"not gzip", 422, "gzip_invalid",
        id="bad-gzip",
    ),
    pytest.param(
        {**basic(), "Content-Encoding": "br"}, b"{}", 415,
        "unsupported_content_encoding", id="brotli",
    ),
    pytest.param(
        {**basic(), "Content-Encoding": "gzip"}, gzip.compress(b" " * 600_000), 413,
        "batch_too_large", id="gzip-bomb",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("headers", "content", "status", "error_type"), UNACCEPTABLE)
def test_body_the_api_cannot_accept_is_refused_in_the_one_error_shape(
    live_api: LiveApi,
    settings_env: str,
    headers: dict[str, str],
    content: bytes,
    status: int,
    error_type: str,
) -> None:
    response = httpx.post(f"{live_api.url}/v1/b", content=content, headers=headers)

    assert response.status_code == status, response.text
    [detail] = response.json()["detail"]
    assert detail["type"] == error_type
    assert detail["msg"]
    assert queued(settings_env) == []

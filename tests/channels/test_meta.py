import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from pydantic import SecretStr, ValidationError

from channels.errors import GraphError, SignatureMismatchError
from channels.meta import GraphClient, check_signature, retry_after, split
from core.settings import MetaAppSettings, Settings
from tests.channels.fakes import TOKEN, FakeGraph, Reply, graph_error
from tests.channels.payloads import APP_SECRET, signed, wa_messages, wa_text


@pytest.fixture
def fake() -> Iterator[FakeGraph]:
    server = FakeGraph()
    server.start()
    yield server
    server.stop()


def graph_client(fake: FakeGraph, **overrides: float) -> GraphClient:
    settings = MetaAppSettings(
        graph_url=fake.url, access_token=SecretStr(TOKEN),
        **{"timeout_seconds": 0.3, "retry_seconds": 3.0, **overrides},
    )  # fmt: skip
    return GraphClient(settings, "106540352242922")


MESSAGE = {"messaging_product": "whatsapp", "to": "31612345678", "type": "text",
           "text": {"body": "hello"}}  # fmt: skip


def test_check_signature_body_changed_after_signing_is_refused() -> None:
    body, signature = signed(wa_messages(wa_text("hi", "wamid.S1")))
    check_signature("whatsapp", body, signature, APP_SECRET)  # as sent: accepted

    with pytest.raises(SignatureMismatchError):
        check_signature("whatsapp", body.replace(b"hi", b"ho"), signature, APP_SECRET)


def test_graph_client_server_error_waits_as_retry_after_says(fake: FakeGraph) -> None:
    fake.script = [
        Reply(503, {"Retry-After": "1"}, graph_error(2, "Service unavailable"))
    ]

    answer = graph_client(fake).send(MESSAGE)

    first, second = fake.requests
    assert answer["messages"][0]["id"].startswith("wamid.")
    assert second.at - first.at >= 0.95


def test_graph_client_timeout_is_retried_and_then_sent(fake: FakeGraph) -> None:
    fake.script = [Reply(delay=1.0)]

    answer = graph_client(fake).send(MESSAGE)

    assert len(fake.requests) == 2
    assert answer["contacts"] == [{"input": "31612345678", "wa_id": "31612345678"}]


def test_graph_client_bad_request_is_not_retried(fake: FakeGraph) -> None:
    fake.script = [Reply(400, body=graph_error(131009, "Parameter value is not valid"))]

    with pytest.raises(GraphError) as refused:
        graph_client(fake).send(MESSAGE)

    assert len(fake.requests) == 1
    assert refused.value.status == 400
    assert "131009" in refused.value.reason


def test_graph_client_failing_past_the_budget_gives_up(fake: FakeGraph) -> None:
    fake.script = [Reply(503, {"Retry-After": "1"}) for _ in range(10)]
    started = time.monotonic()

    with pytest.raises(GraphError) as given_up:
        graph_client(fake, retry_seconds=1.5).send(MESSAGE)

    # Tried at 0 s and 1 s; a third try at 2 s would be past the 1.5 s budget.
    assert len(fake.requests) == 2
    assert given_up.value.attempts == 2
    assert "HTTP 503" in given_up.value.reason
    assert time.monotonic() - started < 2.0


def test_retry_after_http_date_is_read_as_seconds_from_now() -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)

    assert 28 <= (retry_after(later) or 0) <= 30
    assert retry_after("7") == 7.0
    assert retry_after("soon") is None


@pytest.mark.parametrize("limit", [40, 64, 4096])
def test_split_long_text_stays_within_the_limit_and_keeps_every_word(
    limit: int,
) -> None:
    words = [f"w{i}" * (i % 7 + 1) for i in range(3000)]  # up to 35 characters
    text = " ".join(words[:1000]) + "\n" + " ".join(words[1000:])

    parts = split(text, limit)

    assert all(0 < len(part) <= limit for part in parts)
    assert " ".join(parts).split() == text.split()


def test_split_word_longer_than_the_limit_is_cut_keeping_every_character() -> None:
    text = "see https://shop.example.com/" + "a" * 50 + " now"

    parts = split(text, 20)

    assert all(len(part) <= 20 for part in parts)
    assert "".join(parts).replace(" ", "") == text.replace(" ", "")


def test_settings_channel_enabled_with_placeholder_in_production_is_refused() -> None:
    with pytest.raises(ValidationError, match="CDP_WHATSAPP__APP_SECRET"):
        Settings(
            env="production", admin_token=SecretStr("a-real-secret"),
            tracking={"write_keys": {"k-1": "shop"}},
            whatsapp={"enabled": True, "access_token": "t", "verify_token": "v"},
        )  # fmt: skip


def test_settings_reopen_template_not_approved_is_refused_naming_both() -> None:
    with pytest.raises(ValidationError, match=r"'reopen' is not in .*\['sale'\]"):
        Settings(whatsapp={"approved_templates": ["sale"], "reopen_template": "reopen"})

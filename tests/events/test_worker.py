from datetime import UTC, datetime
from typing import Any

import redis
from sqlalchemy import Engine
from sqlmodel import Session

from core.settings import get_settings
from events import failed, queue
from events.worker import Worker
from profiles import service as profiles


def envelope(message_id: str, **fields: Any) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    base = {
        "type": "track", "messageId": message_id, "anonymousId": "v-1",
        "event": "Product Viewed", "properties": {"sku": "WJ06"},
        "timestamp": now, "receivedAt": now, "source": "website",
    }  # fmt: skip
    return {**base, **fields}


def publish(*envelopes: dict[str, Any]) -> redis.Redis:
    client = redis.Redis.from_url(get_settings().redis_url, decode_responses=True)
    queue.publish(client, get_settings().tracking.stream, envelopes)
    return client


def drain(worker: Worker) -> None:
    worker.consumer.ensure_group()
    while worker.run_once(block_ms=100):
        pass


def test_worker_applies_an_event_to_the_visitors_profile(
    settings_env: str, engine: Engine
) -> None:
    client = publish(envelope("m-1"))

    drain(Worker(engine, client))

    with Session(engine) as session:
        profile = profiles.get_by_ref_or_raise(session, "anonymous_id:v-1")
        [event] = profiles.list_events(session, profile)
    assert (event.name, event.properties) == ("Product Viewed", {"sku": "WJ06"})


def test_worker_stores_a_redelivered_event_once(
    settings_env: str, engine: Engine
) -> None:
    client = publish(envelope("m-1"), envelope("m-1"))

    worker = Worker(engine, client)
    drain(worker)

    assert worker.applied == 1
    with Session(engine) as session:
        profile = profiles.get_by_ref_or_raise(session, "anonymous_id:v-1")
        assert profiles.count_events(session, profile) == 1


def test_identify_joins_anonymous_browsing_to_the_known_profile(
    settings_env: str, engine: Engine
) -> None:
    identify = envelope(
        "m-2", type="identify", userId="c-7", event=None,
        traits={"email": "Ann@Example.com", "first_name": "Ann"},
    )  # fmt: skip
    client = publish(envelope("m-1"), identify)

    drain(Worker(engine, client))

    with Session(engine) as session:
        by_email = profiles.get_by_ref_or_raise(session, "email:ann@example.com")
        by_cookie = profiles.get_by_ref_or_raise(session, "anonymous_id:v-1")
        assert by_email.id == by_cookie.id
        assert by_email.traits["first_name"] == "Ann"
        assert profiles.count_events(session, by_email) == 2


def test_event_that_cannot_be_applied_is_kept_in_the_failed_stream(
    settings_env: str, engine: Engine
) -> None:
    client = publish(envelope("bad", anonymousId=None), envelope("m-1"))

    drain(Worker(engine, client))

    [kept] = failed.list_failed(client, settings_env).items
    assert kept.stage == "apply"
    assert "neither userId nor anonymousId" in kept.reason
    assert kept.payload["messageId"] == "bad"
    with Session(engine) as session:
        assert profiles.get_by_ref_or_raise(session, "anonymous_id:v-1")


def test_events_read_by_a_crashed_worker_are_applied_when_it_restarts(
    settings_env: str, engine: Engine
) -> None:
    client = publish(envelope("m-1"), envelope("m-2"))
    crashed = Worker(engine, client, name="worker-a")
    crashed.consumer.ensure_group()
    crashed.consumer._backlog = False
    assert len(crashed.consumer.read(count=10, block_ms=100)) == 2  # read, never acked

    restarted = Worker(engine, client, name="worker-a")
    drain(restarted)

    assert restarted.applied == 2
    stream, group = settings_env, get_settings().tracking.consumer_group
    assert client.xpending(stream, group)["pending"] == 0


def test_text_with_nul_characters_is_stored_without_them(
    client, settings_env: str, engine: Engine
) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import basic

    body = {
        "anonymousId": "v-1",
        "event": "Products Searched",
        "properties": {"query": "te\u0000e"},
    }
    client.post("/v1/track", json=body, headers=basic())

    drain(
        Worker(
            engine,
            redis.Redis.from_url(get_settings().redis_url, decode_responses=True),
        )
    )

    with Session(engine) as session:
        profile = profiles.get_by_ref_or_raise(session, "anonymous_id:v-1")
        [event] = profiles.list_events(session, profile)
    assert event.properties == {"query": "tee"}

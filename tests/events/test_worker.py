import threading
from datetime import UTC, datetime
from typing import Any

import pytest
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


def drain_with_two_workers(engine: Engine, client: redis.Redis) -> None:
    """Two workers in threads, one event at a time each, so they interleave."""
    workers = [Worker(engine, client, name=f"w-{n}", batch_size=1) for n in range(2)]
    workers[0].consumer.ensure_group()
    threads = [threading.Thread(target=drain, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


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


def order(message_id: str, event: str, at: str, **properties: Any) -> dict[str, Any]:
    return envelope(
        message_id, event=event, userId="c-1", timestamp=at,
        properties={"order_id": "o-1", "currency": "eur", **properties},
    )  # fmt: skip


def test_order_completed_becomes_an_order_on_the_profile(
    settings_env: str, engine: Engine
) -> None:
    products = [{"sku": "WJ06", "quantity": "2", "price": "38.5"}]
    client = publish(
        order("m-1", "Order Completed", "2026-11-01T10:00:00+00:00", products=products)
    )

    drain(Worker(engine, client))

    with Session(engine) as session:
        profile = profiles.get_by_ref_or_raise(session, "customer_id:c-1")
        [placed] = profiles.list_orders(session, profile)
    assert (placed.status, placed.total, placed.currency) == ("completed", 77.0, "EUR")
    assert placed.products == [{"sku": "WJ06", "quantity": 2, "price": 38.5}]


def test_late_completion_does_not_undo_a_refund(
    settings_env: str, engine: Engine
) -> None:
    refund = order("m-2", "Order Refunded", "2026-11-05T10:00:00+00:00", total=50)
    late_completion = order(
        "m-1", "Order Completed", "2026-11-01T10:00:00+00:00", total=50
    )
    client = publish(refund, late_completion)

    drain(Worker(engine, client))

    with Session(engine) as session:
        profile = profiles.get_by_ref_or_raise(session, "customer_id:c-1")
        [placed] = profiles.list_orders(session, profile)
    assert placed.status == "refunded"
    assert placed.placed_at.isoformat().startswith("2026-11-01T10:00:00")


def test_late_identify_does_not_overwrite_a_newer_trait(
    settings_env: str, engine: Engine
) -> None:
    def identify(message_id: str, at: str, city: str) -> dict[str, Any]:
        return envelope(
            message_id, type="identify", event=None, userId="c-1", timestamp=at,
            traits={"city": city},
        )  # fmt: skip

    client = publish(
        identify("m-new", "2026-11-05T10:00:00+00:00", "Utrecht"),
        identify("m-old", "2026-11-01T10:00:00+00:00", "Leipzig"),
    )

    drain(Worker(engine, client))

    with Session(engine) as session:
        profile = profiles.get_by_ref_or_raise(session, "customer_id:c-1")
    assert profile.traits["city"] == "Utrecht"


def test_two_workers_racing_on_new_visitors_make_one_profile_each(
    settings_env: str, engine: Engine
) -> None:
    # One event at a time each, so both see the first events of every new visitor.
    client = publish(
        *[envelope(f"m-{i}", anonymousId=f"v-{i // 10}") for i in range(200)]
    )
    drain_with_two_workers(engine, client)

    with Session(engine) as session:
        for visitor in range(20):
            profile = profiles.get_by_ref_or_raise(session, f"anonymous_id:v-{visitor}")
            assert profiles.count_events(session, profile) == 10
    assert failed.list_failed(client, settings_env).items == []


def test_two_workers_lose_no_update_when_the_people_merge_meanwhile(
    settings_env: str, engine: Engine
) -> None:
    def identify(n: int, **ids: Any) -> dict[str, Any]:
        return envelope(
            f"t-{n}", type="identify", event=None, traits={f"t{n}": n}, **ids
        )

    first = [identify(n, anonymousId="cookie-a") for n in range(0, 60, 2)]
    second = [identify(n, anonymousId=None, userId="b") for n in range(1, 60, 2)]
    interleaved = [e for pair in zip(first, second, strict=True) for e in pair]
    login = envelope("login", anonymousId="cookie-a", userId="b")
    client = publish(*interleaved[:30], login, *interleaved[30:])
    drain_with_two_workers(engine, client)

    with Session(engine) as session:
        by_cookie = profiles.get_by_ref_or_raise(session, "anonymous_id:cookie-a")
        by_customer = profiles.get_by_ref_or_raise(session, "customer_id:b")
        assert by_cookie.id == by_customer.id
        assert set(by_cookie.traits) == {f"t{n}" for n in range(60)}
        assert profiles.count_events(session, by_cookie) == 61


def test_anonymous_browsing_that_arrives_after_login_joins_the_known_profile(
    settings_env: str, engine: Engine
) -> None:
    login = envelope("login", anonymousId="cookie-9", userId="ann",
                     timestamp="2026-11-02T10:00:00+00:00")  # fmt: skip
    late_browsing = envelope("late", anonymousId="cookie-9",
                             timestamp="2026-11-01T09:00:00+00:00")  # fmt: skip
    client = publish(login)
    drain(Worker(engine, client))

    publish(late_browsing)
    drain(Worker(engine, client))

    with Session(engine) as session:
        profile = profiles.get_by_ref_or_raise(session, "customer_id:ann")
        timeline = [e.message_id for e in profiles.list_events(session, profile)]
    assert timeline == ["login", "late"]  # newest first, by when it happened


def test_a_worker_restarted_under_its_name_applies_what_it_had_read_at_once(
    settings_env: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.settings import get_settings as settings

    monkeypatch.setenv("CDP_TRACKING__CONSUMER_NAME", "worker-1")
    settings.cache_clear()
    client = publish(envelope("m-1"))
    crashed = Worker(engine, client)
    crashed.consumer.ensure_group()
    crashed.consumer._backlog = False
    assert crashed.consumer.read(count=10, block_ms=100)  # read, never applied

    restarted = Worker(engine, client)
    drain(restarted)

    assert restarted.consumer.name == "worker-1"
    assert restarted.applied == 1

"""Events enriched by the worker, the profile's summary of them, and snapshots of
facts with the weather from the fake Open-Meteo."""

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from context import service
from context.models import FACTS
from events.worker import Worker
from profiles import service as profiles
from tests.context.conftest import (
    IP_MADRID,
    IP_STOCKHOLM,
    IP_UTRECHT,
    UA_GOOGLEBOT,
    UA_IPHONE,
    UA_WINDOWS_CHROME,
    FakeOpenMeteo,
)
from tests.events.test_worker import drain, envelope, publish

T0 = datetime(2025, 7, 18, 8, tzinfo=UTC)
HOT_AFTERNOON = datetime(2025, 7, 18, 14, tzinfo=UTC)  # 16:00 in Madrid
RAINY_MORNING = datetime(2025, 10, 17, 9, tzinfo=UTC)  # 11:00 in Utrecht


def seen(
    message_id: str, at: datetime, ip: str, agent: str, visitor: str = "v-1"
) -> dict[str, Any]:
    return envelope(
        message_id, anonymousId=visitor, timestamp=at.isoformat(),
        context={"ip": ip, "userAgent": agent, "locale": "nl-NL"},
    )  # fmt: skip


def apply(engine: Engine, *envelopes: dict[str, Any]) -> None:
    drain(Worker(engine, publish(*envelopes)))


def profile_id(engine: Engine, visitor: str = "v-1") -> str:
    with Session(engine) as session:
        return profiles.get_by_ref_or_raise(session, f"anonymous_id:{visitor}").id


@pytest.mark.usefixtures("context_env")
def test_worker_keeps_the_latest_location_and_devices_by_session(
    engine: Engine,
) -> None:
    apply(
        engine,
        seen("m-1", T0, IP_UTRECHT, UA_IPHONE),
        seen("m-2", T0 + timedelta(minutes=5), IP_UTRECHT, UA_IPHONE),
        seen("m-3", T0 + timedelta(hours=2), IP_UTRECHT, UA_IPHONE),
        seen("m-4", T0 + timedelta(hours=3), IP_MADRID, UA_WINDOWS_CHROME),
        # Arrives last but happened earlier: not where the profile is now.
        seen("m-5", T0 + timedelta(hours=1), IP_STOCKHOLM, UA_GOOGLEBOT),
    )

    with Session(engine) as session:
        summary = service.get_summary(session, profile_id(engine), now=T0)
    devices = {(d.type, d.os, d.browser): d.sessions for d in summary.devices}
    assert devices == {
        ("mobile", "iOS", "Safari"): 2,
        ("desktop", "Windows", "Chrome"): 1,
        ("bot", None, "Googlebot"): 1,
    }
    assert summary.main_device == "mobile"
    assert summary.location is not None
    assert (summary.location.country, summary.location.city) == ("ES", "Madrid")
    assert summary.facts["device"] == "desktop"  # the latest session's


@pytest.mark.parametrize(
    ("privacy", "kept"),
    [("drop", None), ("truncate", "147.96.1.0"), ("keep", IP_MADRID)],
)
def test_worker_stores_the_ip_as_the_privacy_setting_says(
    engine: Engine,
    context_env: Callable[..., None],
    privacy: str,
    kept: str | None,
) -> None:
    context_env(ip_privacy=privacy)

    apply(engine, seen("m-1", T0, IP_MADRID, UA_IPHONE))

    with Session(engine) as session:
        profile = profiles.get_by_ref_or_raise(session, "anonymous_id:v-1")
        [event] = profiles.list_events(session, profile)
    assert event.context.get("ip") == kept
    assert event.context["enriched"] == {
        "location": {
            "country": "ES", "region": "Madrid", "city": "Madrid",
            "timezone": "Europe/Madrid",
        },
        "device": {"type": "mobile", "os": "iOS", "browser": "Safari"},
    }  # fmt: skip
    assert event.context["locale"] == "nl-NL"  # the rest as it came


@pytest.mark.usefixtures("context_env")
def test_snapshot_gives_place_device_local_time_and_weather(
    engine: Engine, open_meteo: FakeOpenMeteo
) -> None:
    apply(engine, seen("m-1", T0, IP_MADRID, UA_IPHONE))

    with Session(engine) as session:
        facts = service.snapshot(session, profile_id(engine), HOT_AFTERNOON)

    assert set(facts) == set(FACTS)
    assert facts == {
        "country": "ES", "region": "Madrid", "city": "Madrid",
        "timezone": "Europe/Madrid", "device": "mobile", "os": "iOS",
        "browser": "Safari", "main_device": "mobile", "local_hour": 16,
        "daypart": "afternoon", "temperature": 37.9, "weather_band": "hot",
        "raining": False, "hot_day": True, "cold_snap": False, "traffic": None,
    }  # fmt: skip
    [query] = open_meteo.queries
    assert (query["latitude"], query["longitude"]) == ("40.4", "-3.7")


@pytest.mark.usefixtures("context_env")
def test_snapshots_of_many_profiles_ask_once_then_read_the_cache(
    engine: Engine, open_meteo: FakeOpenMeteo
) -> None:
    apply(
        engine,
        seen("m-1", T0, IP_MADRID, UA_IPHONE, visitor="v-1"),
        seen("m-2", T0, IP_UTRECHT, UA_IPHONE, visitor="v-2"),
        seen("m-3", T0, IP_STOCKHOLM, UA_IPHONE, visitor="v-3"),
    )
    ids = [profile_id(engine, v) for v in ("v-1", "v-2", "v-3")]

    with Session(engine) as session:
        first = service.snapshots(session, ids, now=RAINY_MORNING)
        again = service.snapshots(session, ids, now=RAINY_MORNING)

    assert len(open_meteo.queries) == 1
    assert first == again
    assert first[ids[1]]["raining"] is True
    assert first[ids[0]]["weather_band"] is None  # Madrid's record is of July


@pytest.mark.usefixtures("context_env")
def test_snapshot_with_the_weather_api_down_gives_none_then_the_last_known(
    engine: Engine, open_meteo: FakeOpenMeteo, redis_url: str
) -> None:
    apply(engine, seen("m-1", T0, IP_UTRECHT, UA_IPHONE))
    pid = profile_id(engine)
    open_meteo.status = 503

    with Session(engine) as session:
        down = service.snapshot(session, pid, RAINY_MORNING)
    assert (down["city"], down["raining"], down["weather_band"]) == (
        "Utrecht",
        None,
        None,
    )

    open_meteo.status = 200
    forget_freshness_and_rest(redis_url)
    with Session(engine) as session:
        assert service.snapshot(session, pid, RAINY_MORNING)["raining"] is True
    open_meteo.status = 503
    forget_freshness_and_rest(redis_url)
    with Session(engine) as session:
        assert service.snapshot(session, pid, RAINY_MORNING)["raining"] is True


def forget_freshness_and_rest(redis_url: str) -> None:
    """As if the weather's time to live and the provider's rest ran out."""
    import redis

    client = redis.Redis.from_url(redis_url)
    for key in [*client.scan_iter("cdp:context:weather:fresh:*"),
                *client.scan_iter("cdp:context:weather:down")]:  # fmt: skip
        client.delete(key)


def test_snapshot_reads_traffic_from_the_shops_file(
    engine: Engine, context_env: Callable[..., None], tmp_path: Path
) -> None:
    path = tmp_path / "traffic.json"
    path.write_text(json.dumps({"default": "low", "areas": {"ES/Madrid": "high"}}))
    context_env(traffic_provider="file", traffic_source=str(path))
    apply(engine, seen("m-1", T0, IP_MADRID, UA_IPHONE))

    with Session(engine) as session:
        facts = service.snapshot(session, profile_id(engine), HOT_AFTERNOON)
        unknown = service.snapshot(session, "no-such-profile", HOT_AFTERNOON)

    assert facts["traffic"] == "high"
    assert unknown["traffic"] == "low"
    assert unknown["country"] is None


def test_snapshot_with_weather_switched_off_asks_nothing(
    engine: Engine, context_env: Callable[..., None], open_meteo: FakeOpenMeteo
) -> None:
    context_env(weather_provider="none")
    apply(engine, seen("m-1", T0, IP_MADRID, UA_IPHONE))

    with Session(engine) as session:
        facts = service.snapshot(session, profile_id(engine), HOT_AFTERNOON)

    assert facts["hot_day"] is None
    assert facts["city"] == "Madrid"
    assert open_meteo.queries == []


@pytest.mark.usefixtures("context_env")
def test_timezone_of_is_where_the_profile_was_last_seen(engine: Engine) -> None:
    apply(engine, seen("m-1", T0, IP_STOCKHOLM, UA_IPHONE))

    with Session(engine) as session:
        assert service.timezone_of(session, profile_id(engine)) == "Europe/Stockholm"
        assert service.timezone_of(session, "no-such-profile") is None


@pytest.mark.usefixtures("context_env")
def test_enrich_keeps_nothing_a_client_claims_under_enriched() -> None:
    stored, observed = service.enrich(
        {"ip": "testclient", "enriched": {"location": {"country": "XX"}}}
    )

    assert stored == {}  # not an address: not kept either (privacy truncate)
    assert observed == service.Observation()


@pytest.mark.usefixtures("context_env")
def test_summary_of_a_merged_profile_holds_what_both_profiles_knew(
    engine: Engine,
) -> None:
    browsing = {**seen("m-1", T0, IP_MADRID, UA_IPHONE), "anonymousId": "cookie-1"}
    customer = {
        **seen("m-2", T0 + timedelta(hours=1), IP_UTRECHT, UA_WINDOWS_CHROME),
        "anonymousId": None, "userId": "ann", "source": "shop",
    }  # fmt: skip
    login = envelope("m-3", anonymousId="cookie-1", userId="ann", context={})
    apply(engine, browsing, customer, login)

    with Session(engine) as session:
        survivor = profiles.get_by_ref_or_raise(session, "customer_id:ann").id
        summary = service.get_summary(session, survivor, now=T0)

    assert {(d.type, d.sessions) for d in summary.devices} == {
        ("mobile", 1), ("desktop", 1),
    }  # fmt: skip
    assert summary.location is not None
    assert summary.location.city == "Utrecht"  # seen there last
    assert summary.main_device == "desktop"  # as many sessions, the latest

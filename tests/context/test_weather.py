"""Weather facts through the real Open-Meteo client against a local fake that
replays recorded answers for a hot, a rainy and a cold day; the cache and the
fallback to the last known value."""

import time
from datetime import UTC, datetime

import pytest
import redis

from context.providers import CachedSource, ProviderError
from context.rules import WeatherRules
from context.weather import OpenMeteo, facts_at, place_key
from tests.context.conftest import FakeOpenMeteo

MADRID, UTRECHT, STOCKHOLM = "40.4,-3.7", "52.1,5.1", "59.3,18.1"
# 16:00 in Madrid on the hottest day recorded; 11:00 in Utrecht in the rain;
# 09:00 in Stockholm on the first day of a cold snap.
HOT_AFTERNOON = datetime(2025, 7, 18, 14, tzinfo=UTC)
RAINY_MORNING = datetime(2025, 10, 17, 9, tzinfo=UTC)
COLD_MORNING = datetime(2026, 1, 23, 8, tzinfo=UTC)


def forecast(fake: FakeOpenMeteo, place: str) -> dict:
    return OpenMeteo(fake.url, timeout=2.0).fetch([place])[place]


def test_facts_at_a_hot_afternoon_are_hot_and_dry(open_meteo: FakeOpenMeteo) -> None:
    facts = facts_at(forecast(open_meteo, MADRID), HOT_AFTERNOON, WeatherRules())

    assert facts is not None
    assert facts.weather_band == "hot"
    assert facts.temperature == 37.9
    assert (facts.hot_day, facts.raining, facts.cold_snap) == (True, False, False)


def test_facts_at_a_rainy_morning_are_rain_in_a_mild_band(
    open_meteo: FakeOpenMeteo,
) -> None:
    facts = facts_at(forecast(open_meteo, UTRECHT), RAINY_MORNING, WeatherRules())

    assert facts is not None
    assert (facts.weather_band, facts.raining) == ("mild", True)
    assert (facts.hot_day, facts.cold_snap) == (False, False)


def test_facts_at_a_cold_snap_are_freezing_and_a_snap(
    open_meteo: FakeOpenMeteo,
) -> None:
    facts = facts_at(forecast(open_meteo, STOCKHOLM), COLD_MORNING, WeatherRules())

    assert facts is not None
    assert (facts.weather_band, facts.cold_snap, facts.raining) == (
        "freezing", True, False,
    )  # fmt: skip


def test_facts_at_another_hour_come_from_the_hourly_figures(
    open_meteo: FakeOpenMeteo,
) -> None:
    rainy = forecast(open_meteo, UTRECHT)
    # 23:00 in Utrecht the same day: the rain stopped at 21:00; the day before
    # it had not started.
    late = facts_at(rainy, datetime(2025, 10, 17, 21, tzinfo=UTC), WeatherRules())
    day_before = facts_at(rainy, datetime(2025, 10, 16, 9, tzinfo=UTC), WeatherRules())

    at = int(datetime(2025, 10, 16, 9, tzinfo=UTC).timestamp())
    hour = rainy["hourly"]["time"].index(at)

    assert late is not None
    assert late.raining is False
    assert day_before is not None
    assert day_before.raining is False
    assert day_before.temperature == rainy["hourly"]["temperature_2m"][hour]


def test_facts_at_outside_the_recorded_days_is_none(open_meteo: FakeOpenMeteo) -> None:
    rainy = forecast(open_meteo, UTRECHT)

    assert facts_at(rainy, datetime(2025, 11, 1, tzinfo=UTC), WeatherRules()) is None


def test_facts_at_follow_the_shops_thresholds(open_meteo: FakeOpenMeteo) -> None:
    rules = WeatherRules.model_validate({"hot_day": 40, "bands": {"warm": 38}})

    facts = facts_at(forecast(open_meteo, MADRID), HOT_AFTERNOON, rules)

    assert facts is not None
    assert (facts.weather_band, facts.hot_day) == ("warm", False)


def test_fetch_asks_for_what_the_facts_need_in_one_request_for_many_places(
    open_meteo: FakeOpenMeteo,
) -> None:
    found = OpenMeteo(open_meteo.url, timeout=2.0).fetch([UTRECHT, STOCKHOLM])

    assert set(found) == {UTRECHT, STOCKHOLM}
    [query] = open_meteo.queries
    assert (query["latitude"], query["longitude"]) == ("52.1,59.3", "5.1,18.1")
    assert query["current"] == "temperature_2m,precipitation,weather_code"
    assert "temperature_2m_max" in query["daily"]
    assert (query["timezone"], query["past_days"]) == ("auto", "3")


def test_fetch_an_unknown_place_raises_with_the_apis_reason(
    open_meteo: FakeOpenMeteo,
) -> None:
    with pytest.raises(ProviderError, match=r"400: No data is available for 0\.0,0\.0"):
        OpenMeteo(open_meteo.url, timeout=2.0).fetch([place_key(0, 0)])


def test_fetch_a_stalled_api_gives_up_at_the_timeout(open_meteo: FakeOpenMeteo) -> None:
    open_meteo.stall = 1.5
    started = time.monotonic()

    with pytest.raises(ProviderError, match="ReadTimeout"):
        OpenMeteo(open_meteo.url, timeout=0.3).fetch([MADRID])
    assert time.monotonic() - started < 1.2


def source(fake: FakeOpenMeteo, redis_url: str, **options: float) -> CachedSource:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    settings = {"ttl_seconds": 1800.0, "retry_seconds": 60.0, **options}
    return CachedSource(OpenMeteo(fake.url, timeout=0.5), client, **settings)


def expire_fresh(cached: CachedSource) -> None:
    """As if the time to live ran out: only the last known copies stay."""
    for key in cached.client.scan_iter(f"{cached.prefix}:fresh:*"):
        cached.client.delete(key)


@pytest.mark.usefixtures("context_env")
def test_cached_source_asks_once_then_serves_from_the_cache(
    open_meteo: FakeOpenMeteo, redis_url: str
) -> None:
    cached = source(open_meteo, redis_url)

    first = cached.get_many([MADRID, UTRECHT])
    again = cached.get_many([UTRECHT, MADRID])

    assert first == again
    assert len(open_meteo.queries) == 1


@pytest.mark.usefixtures("context_env")
def test_cached_source_falls_back_to_the_last_known_value_when_the_api_fails(
    open_meteo: FakeOpenMeteo, redis_url: str
) -> None:
    cached = source(open_meteo, redis_url)
    known = cached.get(STOCKHOLM)
    expire_fresh(cached)
    open_meteo.status = 503

    assert cached.get(STOCKHOLM) == known
    assert cached.get(MADRID) is None  # never known: nothing to fall back to
    assert len(open_meteo.queries) == 2  # a failed provider rests retry_seconds


@pytest.mark.usefixtures("context_env")
def test_cached_source_asks_again_once_the_retry_time_is_over(
    open_meteo: FakeOpenMeteo, redis_url: str
) -> None:
    cached = source(open_meteo, redis_url, retry_seconds=1.0)
    open_meteo.status = 503
    assert cached.get(MADRID) is None
    open_meteo.status = 200
    time.sleep(1.1)

    assert cached.get(MADRID) is not None
    assert len(open_meteo.queries) == 2

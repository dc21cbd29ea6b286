"""The weather at a place and time, from Open-Meteo's forecast API (free, no key),
reduced to facts a rule can use: temperature band, rain, a hot day, a cold snap.

A place is its coordinates rounded to 0.1 degree (about 11 km), so the people of
one town share one cached answer. One request asks for up to 50 places (the API
takes lists of coordinates) and brings the current conditions, the hourly and
daily figures of the last three days and the next two, so the facts at any
moment of that span come from the cache.
"""

import logging
from datetime import datetime
from typing import Any

import httpx
from pydantic import BaseModel, ValidationError

from context.providers import ProviderError
from context.rules import WeatherRules

logger = logging.getLogger(__name__)
PLACES_PER_REQUEST = 50
PAST_DAYS = 3
CURRENT = ("temperature_2m", "precipitation", "weather_code")
HOURLY = ("temperature_2m", "precipitation", "weather_code")
DAILY = ("temperature_2m_max", "temperature_2m_min", "precipitation_sum")
# WMO weather codes of drizzle, rain, freezing rain, showers and thunderstorms.
RAIN_CODES = frozenset([*range(51, 68), 80, 81, 82, 95, 96, 99])
HOUR = 3600


class _Current(BaseModel):
    time: int
    temperature_2m: float | None = None
    precipitation: float | None = None
    weather_code: int | None = None


class _Hourly(BaseModel):
    time: list[int]
    temperature_2m: list[float | None]
    precipitation: list[float | None]
    weather_code: list[int | None]


class _Daily(BaseModel):
    time: list[int]
    temperature_2m_max: list[float | None]
    temperature_2m_min: list[float | None]
    precipitation_sum: list[float | None]


class Forecast(BaseModel):
    """The part of Open-Meteo's answer for one place that the facts need."""

    utc_offset_seconds: int = 0
    current: _Current | None = None
    hourly: _Hourly
    daily: _Daily


class WeatherFacts(BaseModel):
    temperature: float
    weather_band: str
    raining: bool
    hot_day: bool
    cold_snap: bool


def place_key(latitude: float, longitude: float) -> str:
    return f"{latitude:.1f},{longitude:.1f}"


class OpenMeteo:
    """The forecast endpoint as a provider: keys are places (``place_key``)."""

    kind = "weather"

    def __init__(self, url: str, *, timeout: float) -> None:
        self.url = url
        self.http = httpx.Client(timeout=httpx.Timeout(timeout))

    def fetch(self, keys: list[str]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for start in range(0, len(keys), PLACES_PER_REQUEST):
            chunk = keys[start : start + PLACES_PER_REQUEST]
            for key, answer in zip(chunk, self._ask(chunk), strict=True):
                found[key] = _reduce(answer)
        return found

    def _ask(self, keys: list[str]) -> list[dict[str, Any]]:
        points = [key.split(",") for key in keys]
        params = {
            "latitude": ",".join(p[0] for p in points),
            "longitude": ",".join(p[1] for p in points),
            "current": ",".join(CURRENT),
            "hourly": ",".join(HOURLY),
            "daily": ",".join(DAILY),
            "past_days": PAST_DAYS,
            "forecast_days": 2,
            "timezone": "auto",
            "timeformat": "unixtime",
        }
        try:
            response = self.http.get(self.url, params=params)
        except httpx.HTTPError as exc:
            raise ProviderError(
                f"open-meteo unreachable: {type(exc).__name__}"
            ) from exc
        if response.status_code != 200:
            raise ProviderError(
                f"open-meteo answered {response.status_code}: {_reason(response)}"
            )
        try:
            body = response.json()
        except ValueError as exc:
            raise ProviderError("open-meteo answered with something not JSON") from exc
        answers = body if isinstance(body, list) else [body]
        if len(answers) != len(keys):
            raise ProviderError(
                f"open-meteo answered for {len(answers)} places; asked for {len(keys)}"
            )
        return answers


def _reduce(answer: Any) -> dict[str, Any]:
    try:
        return Forecast.model_validate(answer).model_dump()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ProviderError(
            f"open-meteo answer lacks what was asked: {where}: {first['msg']}"
        ) from None


def _reason(response: httpx.Response) -> str:
    try:
        return str(response.json().get("reason", ""))[:200]
    except (ValueError, AttributeError):
        return response.text[:200]


def facts_at(
    forecast: dict[str, Any], at: datetime, rules: WeatherRules
) -> WeatherFacts | None:
    """The weather facts at ``at`` from a cached forecast; None outside its span or
    when the figures are missing."""
    parsed = Forecast.model_validate(forecast)
    now = int(at.timestamp())
    conditions = _conditions(parsed, now)
    if conditions is None:
        return None
    temperature, precipitation, code = conditions
    high, before = _highs(parsed.daily, now)
    return WeatherFacts(
        temperature=temperature,
        weather_band=rules.bands.band(temperature),
        raining=bool(precipitation) or code in RAIN_CODES,
        hot_day=high is not None and high >= rules.hot_day,
        cold_snap=high is not None
        and bool(before)
        and sum(before) / len(before) - high >= rules.cold_snap,
    )


def _conditions(
    forecast: Forecast, now: int
) -> tuple[float, float | None, int | None] | None:
    current = forecast.current
    if (
        current is not None
        and abs(now - current.time) <= HOUR
        and current.temperature_2m is not None
    ):
        return current.temperature_2m, current.precipitation, current.weather_code
    hourly = forecast.hourly
    for index, start in enumerate(hourly.time):
        if start <= now < start + HOUR:
            temperature = hourly.temperature_2m[index]
            if temperature is None:
                return None
            return temperature, hourly.precipitation[index], hourly.weather_code[index]
    return None


def _highs(daily: _Daily, now: int) -> tuple[float | None, list[float]]:
    """The highest temperature of the local day holding ``now`` (daily times are
    local midnights as Unix times), and those of the days before it."""
    days = [i for i, start in enumerate(daily.time) if start <= now < start + 24 * HOUR]
    if not days:
        return None, []
    day, highs = days[-1], daily.temperature_2m_max
    before = [h for h in highs[max(day - PAST_DAYS, 0) : day] if h is not None]
    return highs[day], before

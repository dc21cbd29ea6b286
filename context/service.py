"""External data on profiles: events enriched with location and device, each
profile's summary of them, and a flat snapshot of facts (place, device, local
time, weather, traffic) for segments, campaigns, the recommender and the
assistant. No HTTP here.

Location and device are read locally from each event; weather and traffic are
asked for only when a snapshot needs them, through cached providers, and a
provider failure gives the last known value or None, never an exception.
"""

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError
from sqlalchemy import event
from sqlmodel import Session, col, select

from context import rules as context_rules
from context.device import parse_user_agent
from context.location import get_locator, kept_ip, parse_ip
from context.models import (
    FACTS,
    PERSONAL_DEVICES,
    TRAFFIC_FACTS,
    WEATHER_FACTS,
    Device,
    DeviceUse,
    FactValue,
    Location,
    LocationPublic,
    ProfileContext,
    ProfileContextPublic,
    daypart,
    utcnow,
)
from context.providers import CachedSource, Provider
from context.rules import WeatherRules
from context.traffic import KEY as TRAFFIC_KEY
from context.traffic import FileTraffic, HttpTraffic, TrafficLevels
from context.weather import OpenMeteo, WeatherFacts, facts_at, place_key
from core.redis import get_redis
from core.settings import ContextSettings, get_settings
from profiles import service as profiles

logger = logging.getLogger(__name__)
# Events of one device further apart than this are two sessions.
SESSION_GAP = timedelta(minutes=30)
# session.info: observations to write at commit, and whether the session is set up.
_PENDING, _LISTENING = "context_pending", "context_listening"
_SNAPSHOT_COLUMNS = (
    "profile_id", "devices", "country", "region", "city", "timezone", "latitude",
    "longitude", "located_at",
)  # fmt: skip


@dataclass(frozen=True)
class Observation:
    """What one event says of where the profile is and what it uses."""

    location: Location | None = None
    device: Device | None = None


# events -----------------------------------------------------------------------------


def enrich(context: dict[str, Any]) -> tuple[dict[str, Any], Observation]:
    """The event's context as it is stored, and what it says: the location of
    ``context.ip`` and the device of ``context.userAgent`` are added under
    ``enriched``, and the address is dropped, truncated or kept as the shop's
    privacy setting says."""
    settings = get_settings().context
    stored = {k: v for k, v in context.items() if k != "enriched"}  # ours alone
    ip = parse_ip(context.get("ip"))
    location = get_locator(settings.location_provider).locate(ip) if ip else None
    if ip is not None:
        kept = kept_ip(ip, settings.ip_privacy)
        if kept is None:
            stored.pop("ip", None)
        else:
            stored["ip"] = kept
    elif "ip" in stored and settings.ip_privacy != "keep":
        stored.pop("ip")  # not an address; not kept either
    agent = context.get("userAgent")
    device = parse_user_agent(agent) if isinstance(agent, str) and agent else None
    enriched = {}
    if location is not None:
        enriched["location"] = location.public()
    if device is not None:
        enriched["device"] = device.public()
    if enriched:
        stored["enriched"] = enriched
    return stored, Observation(location, device)


def record(
    session: Session, profile_id: str, observation: Observation, *, at: datetime
) -> None:
    """Keep the event's location (when it is the newest) and device on the
    profile's summary, written when the session commits: the worker's batch of
    events costs one read of the summaries it touches, not one per event."""
    if observation.location is None and observation.device is None:
        return
    if not session.info.get(_LISTENING):
        event.listen(session, "before_commit", _write_pending)
        event.listen(session, "after_rollback", _forget_pending)
        session.info[_LISTENING] = True
    at = _aware(at).astimezone(UTC)  # stamps compare as text: one offset for all
    session.info.setdefault(_PENDING, []).append((profile_id, observation, at))


def _write_pending(session: Session) -> None:
    pending = session.info.pop(_PENDING, [])
    if not pending:
        return
    ids = sorted({profile_id for profile_id, _o, _at in pending})
    statement = select(ProfileContext).where(col(ProfileContext.profile_id).in_(ids))
    rows = {row.profile_id: row for row in session.exec(statement)}
    for profile_id, observation, at in pending:
        row = rows.get(profile_id)
        if row is None:
            row = rows[profile_id] = ProfileContext(profile_id=profile_id)
            session.add(row)
        _update(row, observation, at)


def _forget_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)


def _update(row: ProfileContext, observation: Observation, at: datetime) -> None:
    location = observation.location
    if location is not None and (
        row.located_at is None or at >= _aware(row.located_at)
    ):
        row.country, row.region, row.city = (
            location.country,
            location.region,
            location.city,
        )
        row.timezone = location.timezone
        row.latitude, row.longitude = location.latitude, location.longitude
        row.located_at = at
    if observation.device is not None:
        row.devices = _with_device(row.devices or [], observation.device, at)
        row.main_device = _main_device(row.devices)
    row.updated_at = utcnow()


def _with_device(
    devices: list[dict[str, Any]], device: Device, at: datetime
) -> list[dict[str, Any]]:
    """A new list (so the JSON column is written): the device's entry counts a new
    session when its last event is more than SESSION_GAP before this one."""
    stamp = at.isoformat()
    updated, found = [], False
    for entry in devices:
        same = (entry["type"], entry.get("os"), entry.get("browser")) == (
            device.type, device.os, device.browser,
        )  # fmt: skip
        if same:
            found = True
            last = datetime.fromisoformat(entry["last_seen"])
            sessions = entry["sessions"] + (1 if at - last > SESSION_GAP else 0)
            entry = {
                **entry, "sessions": sessions,
                "first_seen": min(stamp, entry["first_seen"]),
                "last_seen": max(stamp, entry["last_seen"]),
            }  # fmt: skip
        updated.append(entry)
    if not found:
        updated.append(
            {**device.public(), "type": device.type, "sessions": 1,
             "first_seen": stamp, "last_seen": stamp}
        )  # fmt: skip
    return updated


def _main_device(devices: list[dict[str, Any]]) -> str | None:
    """The device type a person shops on most: most sessions, then most recent."""
    sessions: dict[str, int] = {}
    latest: dict[str, str] = {}
    for entry in devices:
        if entry["type"] in PERSONAL_DEVICES:
            kind = entry["type"]
            sessions[kind] = sessions.get(kind, 0) + entry["sessions"]
            latest[kind] = max(latest.get(kind, ""), entry["last_seen"])
    if not sessions:
        return None
    return max(sessions, key=lambda kind: (sessions[kind], latest[kind]))


# snapshots --------------------------------------------------------------------------


def snapshot(
    session: Session, profile_id: str, now: datetime | None = None
) -> dict[str, FactValue]:
    """The profile's facts now: country, region, city, timezone, device, os,
    browser, main_device, local_hour, daypart, temperature, weather_band, raining,
    hot_day, cold_snap, traffic; None where unknown. Never raises on a provider
    failure, and reads only the cache when the weather was asked for lately."""
    return snapshots(session, [profile_id], now=now)[profile_id]


def snapshots(
    session: Session,
    profile_ids: Sequence[str],
    *,
    now: datetime | None = None,
    facts: Iterable[str] = FACTS,
) -> dict[str, dict[str, FactValue]]:
    """Snapshots of many profiles in one query, one cache read per kind of data
    and at most one weather request per 50 places not cached. Only the kinds of
    ``facts`` asked for are looked up; the others are None."""
    summaries = _summaries(session, profile_ids)
    return _snapshots_of(summaries, profile_ids, now or datetime.now(UTC), facts)


def timezone_of(session: Session, profile_id: str) -> str | None:
    """The time zone of where the profile was last seen, or None."""
    summary = _summaries(session, [profile_id]).get(profile_id)
    return summary.timezone if summary is not None else None


def get_summary(
    session: Session, profile_id: str, *, now: datetime | None = None
) -> ProfileContextPublic:
    """Devices, last location and facts now, with those of the profiles merged
    into this one."""
    summary = _summaries(session, [profile_id]).get(profile_id)
    location = None
    if summary is not None and summary.located_at is not None:
        location = LocationPublic.model_validate(summary, from_attributes=True)
    devices = summary.devices if summary else []
    found = {profile_id: summary} if summary else {}
    facts = _snapshots_of(found, [profile_id], now or datetime.now(UTC), FACTS)
    return ProfileContextPublic(
        profile_id=profile_id,
        main_device=summary.main_device if summary else None,
        devices=[DeviceUse.model_validate(d) for d in devices],
        location=location,
        facts=facts[profile_id],
    )


@dataclass(frozen=True)
class _Summary:
    """A profile's summary folded with those of the profiles merged into it."""

    devices: list[dict[str, Any]]
    main_device: str | None
    country: str | None
    region: str | None
    city: str | None
    timezone: str | None
    latitude: float | None
    longitude: float | None
    located_at: datetime | None


def _summaries(session: Session, profile_ids: Sequence[str]) -> dict[str, _Summary]:
    """The summaries as plain rows (a snapshot only reads), each with what the
    profiles merged into it knew: the latest location and every device."""
    if not profile_ids:
        return {}
    family = profiles.list_merged_into(session, profile_ids)
    wanted = sorted({*family, *(m for ms in family.values() for m in ms)})
    columns = [getattr(ProfileContext, name) for name in _SNAPSHOT_COLUMNS]
    statement = select(*columns).where(col(ProfileContext.profile_id).in_(wanted))
    rows = {row.profile_id: row for row in session.exec(statement)}
    summaries = {}
    for profile_id, merged in family.items():
        found = [rows[p] for p in (profile_id, *merged) if p in rows]
        if found:
            summaries[profile_id] = _fold(found)
    return summaries


def _snapshots_of(
    summaries: dict[str, "_Summary"],
    profile_ids: Sequence[str],
    now: datetime,
    facts: Iterable[str],
) -> dict[str, dict[str, FactValue]]:
    wanted = set(facts)
    places = summaries.values()
    weather = _weather(places, now) if wanted & set(WEATHER_FACTS) else {}
    traffic = _traffic() if wanted & set(TRAFFIC_FACTS) else None
    return {
        profile_id: _facts(summaries.get(profile_id), now, weather, traffic)
        for profile_id in profile_ids
    }


def _fold(rows: list[Any]) -> _Summary:
    located = [r for r in rows if r.located_at is not None]
    place = max(located, key=lambda r: _aware(r.located_at), default=rows[0])
    devices: dict[tuple, dict[str, Any]] = {}
    for row in rows:
        for entry in row.devices or []:
            key = (entry["type"], entry.get("os"), entry.get("browser"))
            if key in devices:
                seen = devices[key]
                entry = {
                    **seen, "sessions": seen["sessions"] + entry["sessions"],
                    "first_seen": min(seen["first_seen"], entry["first_seen"]),
                    "last_seen": max(seen["last_seen"], entry["last_seen"]),
                }  # fmt: skip
            devices[key] = entry
    folded = list(devices.values())
    return _Summary(
        devices=folded, main_device=_main_device(folded), country=place.country,
        region=place.region, city=place.city, timezone=place.timezone,
        latitude=place.latitude, longitude=place.longitude,
        located_at=place.located_at,
    )  # fmt: skip


def _facts(
    row: _Summary | None,
    now: datetime,
    weather: dict[str, WeatherFacts | None],
    traffic: TrafficLevels | None,
) -> dict[str, FactValue]:
    facts: dict[str, FactValue] = dict.fromkeys(FACTS)
    if row is None:
        if traffic is not None:
            facts["traffic"] = traffic.level_for(None)
        return facts
    facts.update(country=row.country, region=row.region, city=row.city)
    facts.update(timezone=row.timezone, main_device=row.main_device)
    latest = _latest_device(row.devices or [])
    if latest is not None:
        facts.update(device=latest["type"], os=latest.get("os"))
        facts["browser"] = latest.get("browser")
    local = _local(now, row.timezone)
    if local is not None:
        facts["local_hour"] = local.hour
        facts["daypart"] = daypart(local.hour)
    place = _place(row)
    found = weather.get(place) if place else None
    if found is not None:
        facts.update(found.model_dump())
    if traffic is not None:
        facts["traffic"] = traffic.level_for(_location(row))
    return facts


def _latest_device(devices: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The device of the latest session, a person's own over a bot's."""
    own = [d for d in devices if d["type"] in PERSONAL_DEVICES] or devices
    return max(own, key=lambda d: d["last_seen"], default=None)


def _local(now: datetime, timezone: str | None) -> datetime | None:
    if not timezone:
        return None
    try:
        return now.astimezone(ZoneInfo(timezone))
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _place(row: _Summary) -> str | None:
    if row.latitude is None or row.longitude is None:
        return None
    return place_key(row.latitude, row.longitude)


def _location(row: _Summary) -> Location:
    return Location(row.country, row.region, row.city, row.timezone)


# providers --------------------------------------------------------------------------


def _weather(rows: Iterable[_Summary], now: datetime) -> dict[str, WeatherFacts | None]:
    """The weather facts of each place these profiles are in, at ``now``."""
    settings = get_settings().context
    places = {p for row in rows if (p := _place(row)) is not None}
    if not places or settings.weather_provider == "none":
        return {}
    provider = _open_meteo(settings.weather_url, settings.timeout_seconds)
    source = _cached(provider, settings, ttl=settings.weather_seconds)
    forecasts = source.get_many(places)
    weather_rules = _weather_rules()
    found: dict[str, WeatherFacts | None] = {}
    for place, forecast in forecasts.items():
        try:
            found[place] = facts_at(forecast, now, weather_rules)
        except ValidationError:
            found[place] = None  # cached by an older version; asked again later
    return found


def _traffic() -> TrafficLevels | None:
    settings = get_settings().context
    provider = _traffic_provider(
        settings.traffic_provider, settings.traffic_source, settings.timeout_seconds
    )
    if provider is None:
        return None
    found = _cached(provider, settings, ttl=settings.traffic_seconds).get(TRAFFIC_KEY)
    return TrafficLevels.model_validate(found) if found is not None else None


def _cached(
    provider: Provider, settings: ContextSettings, *, ttl: float
) -> CachedSource:
    return CachedSource(
        provider, get_redis(), ttl_seconds=ttl, retry_seconds=settings.retry_seconds
    )


def _weather_rules() -> WeatherRules:
    try:
        return context_rules.get_rules().weather
    except context_rules.InvalidContextRulesError as exc:
        logger.error(
            "context rules have mistakes; default weather thresholds used",
            extra={"problems": exc.problems},
        )
        return WeatherRules()


@lru_cache(maxsize=4)
def _open_meteo(url: str, timeout: float) -> OpenMeteo:
    return OpenMeteo(url, timeout=timeout)


@lru_cache(maxsize=4)
def _traffic_provider(kind: str, source: str, timeout: float) -> Provider | None:
    if kind == "file":
        return FileTraffic(Path(source))
    if kind == "http":
        return HttpTraffic(source, timeout=timeout)
    return None


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)

"""What the platform knows of a profile's surroundings: where it was last seen, the
devices it uses, and the API schemas of that summary."""

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

DeviceType = Literal["mobile", "tablet", "desktop", "bot", "other"]
# The device types a person shops on; bots and unknown clients are kept per event
# but never become a profile's main device.
PERSONAL_DEVICES = ("mobile", "tablet", "desktop")
# The flat facts a snapshot gives, by what they come from.
LOCATION_FACTS = ("country", "region", "city", "timezone")
DEVICE_FACTS = ("device", "os", "browser", "main_device")
TIME_FACTS = ("local_hour", "daypart")
WEATHER_FACTS = ("temperature", "weather_band", "raining", "hot_day", "cold_snap")
TRAFFIC_FACTS = ("traffic",)
FACTS = (
    *LOCATION_FACTS, *DEVICE_FACTS, *TIME_FACTS, *WEATHER_FACTS, *TRAFFIC_FACTS
)  # fmt: skip
FactValue = str | float | bool | None
# The part of the day each local hour is in: up to 6 is night, and so on.
DAYPARTS = ((6, "night"), (12, "morning"), (18, "afternoon"), (24, "evening"))


def daypart(hour: int) -> str:
    return next(name for end, name in DAYPARTS if hour < end)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Location:
    country: str | None
    region: str | None
    city: str | None
    timezone: str | None
    latitude: float | None = None
    longitude: float | None = None

    def public(self) -> dict[str, str]:
        """What an event's context keeps: no coordinates."""
        return {
            k: v for k, v in asdict(self).items() if k in LOCATION_FACTS and v
        }  # fmt: skip


@dataclass(frozen=True)
class Device:
    type: DeviceType
    os: str | None
    browser: str | None

    def public(self) -> dict[str, str]:
        return {k: v for k, v in asdict(self).items() if v}


class ProfileContext(SQLModel, table=True):
    """A profile's last location and the devices it used, kept by the worker from
    each event's IP address and user agent."""

    __tablename__ = "profile_context"

    profile_id: str = Field(primary_key=True, foreign_key="profile.id")
    # One entry per (type, os, browser): sessions, first_seen, last_seen.
    devices: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    main_device: str | None = None
    country: str | None = None
    region: str | None = None
    city: str | None = None
    timezone: str | None = None
    # The city's coordinates from the location database, for its weather.
    latitude: float | None = None
    longitude: float | None = None
    located_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)


class DeviceUse(BaseModel):
    type: DeviceType
    os: str | None = None
    browser: str | None = None
    sessions: int
    first_seen: datetime
    last_seen: datetime


class LocationPublic(BaseModel):
    country: str | None
    region: str | None
    city: str | None
    timezone: str | None
    located_at: datetime | None


class ProfileContextPublic(BaseModel):
    profile_id: str
    main_device: str | None
    devices: list[DeviceUse]
    location: LocationPublic | None
    facts: dict[str, FactValue]

"""Traffic intensity (low, normal, high) by area, from a JSON document the shop
keeps in a file or serves at a URL, for example written every few minutes by a
job that reads a road-traffic feed::

    {"default": "normal",
     "areas": {"NL": "normal", "NL/Utrecht": "high", "NL/Utrecht/Utrecht": "high"}}

An area is a country code, ``country/region`` or ``country/region/city``, named as
the location database names them; the most specific area that matches a profile's
location gives its level, then ``default``.
"""

import json
from pathlib import Path
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from context.models import Location
from context.providers import ProviderError

Level = Literal["low", "normal", "high"]
KEY = "levels"


class TrafficLevels(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default: Level | None = None
    areas: dict[str, Level] = {}

    def level_for(self, location: Location | None) -> str | None:
        if location is not None and location.country:
            parts = [location.country, location.region, location.city]
            for end in (3, 2, 1):
                if None in parts[:end]:
                    continue
                level = self.areas.get("/".join(str(p) for p in parts[:end]))
                if level is not None:
                    return level
        return self.default


def parse_levels(raw: Any, *, where: str) -> dict[str, Any]:
    try:
        return TrafficLevels.model_validate(raw).model_dump()
    except ValidationError as exc:
        first = exc.errors()[0]
        place = ".".join(str(p) for p in first["loc"]) or "the document"
        raise ProviderError(
            f"traffic levels at {where} are not usable: {place}: {first['msg']}; "
            'expected {"default": LEVEL, "areas": {AREA: LEVEL}} with LEVEL '
            "low, normal or high"
        ) from None


class FileTraffic:
    kind = "traffic"

    def __init__(self, path: Path) -> None:
        self.path = path

    def fetch(self, keys: list[str]) -> dict[str, Any]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ProviderError(f"cannot read {self.path}: {exc}") from None
        return {KEY: parse_levels(raw, where=str(self.path))}


class HttpTraffic:
    kind = "traffic"

    def __init__(self, url: str, *, timeout: float) -> None:
        self.url = url
        self.http = httpx.Client(timeout=httpx.Timeout(timeout))

    def fetch(self, keys: list[str]) -> dict[str, Any]:
        try:
            response = self.http.get(self.url)
            response.raise_for_status()
            raw = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ProviderError(f"{self.url}: {type(exc).__name__}") from None
        return {KEY: parse_levels(raw, where=self.url)}

"""Where an IP address is, from an offline database, and what is kept of the
address itself.

The database is GeoLite2 City as shipped in the ``maxminddb-geolite2`` package
(built July 2018, CC BY-SA 4.0, "This product includes GeoLite2 data created by
MaxMind"): country, region, city, time zone and the city's coordinates, read
locally in tens of microseconds. Addresses that moved since then are placed where
they were.
"""

import ipaddress
import logging
from functools import lru_cache
from typing import Any, Literal, Protocol

from context.models import Location

logger = logging.getLogger(__name__)
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Privacy = Literal["drop", "truncate", "keep"]
# What "truncate" keeps: the network, as advertising and analytics tools do.
TRUNCATE_BITS = {4: 24, 6: 48}


class Locator(Protocol):
    def locate(self, ip: IpAddress) -> Location | None: ...


class NoLocator:
    """Locations switched off (``CDP_CONTEXT__LOCATION_PROVIDER=none``)."""

    def locate(self, ip: IpAddress) -> Location | None:
        return None


class GeoLite2Locator:
    def __init__(self, path: str | None = None) -> None:
        import maxminddb

        if path is None:
            from _maxminddb_geolite2 import geolite2_database

            path = geolite2_database()
        self.reader = maxminddb.open_database(path)
        logger.info("location database opened", extra={"path": path})

    def locate(self, ip: IpAddress) -> Location | None:
        if not ip.is_global:
            return None  # a private, loopback or reserved address is nowhere
        record = self.reader.get(ip)
        if not isinstance(record, dict) or "country" not in record:
            return None
        place = record.get("location") or {}
        subdivisions = record.get("subdivisions") or [{}]
        return Location(
            country=record["country"].get("iso_code"),
            region=_name(subdivisions[0]),
            city=_name(record.get("city")),
            timezone=place.get("time_zone"),
            latitude=place.get("latitude"),
            longitude=place.get("longitude"),
        )


@lru_cache
def get_locator(provider: str) -> Locator:
    if provider == "geolite2":
        return GeoLite2Locator()
    if provider == "none":
        return NoLocator()
    raise ValueError(
        f"unknown location provider {provider!r}; accepted: geolite2, none"
    )


def parse_ip(value: Any) -> IpAddress | None:
    """The address in an event's ``context.ip``, or None when it is not one."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        ip = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    # A dual-stack server reports IPv4 clients as ::ffff:a.b.c.d.
    mapped = getattr(ip, "ipv4_mapped", None)
    return mapped or ip


def kept_ip(ip: IpAddress, privacy: Privacy) -> str | None:
    """What the shop's privacy setting keeps of an address: nothing, its network
    (the last octet of IPv4 and the last 80 bits of IPv6 set to zero), or all."""
    if privacy == "drop":
        return None
    if privacy == "keep":
        return str(ip)
    bits = TRUNCATE_BITS[ip.version]
    return str(ipaddress.ip_network(f"{ip}/{bits}", strict=False).network_address)


def _name(entry: dict[str, Any] | None) -> str | None:
    if not entry:
        return None
    return (entry.get("names") or {}).get("en")

"""Location from real addresses in several countries, with the shipped database,
and what the privacy setting keeps of an address."""

import pytest

from context.location import IpAddress, get_locator, kept_ip, parse_ip
from context.models import Location
from tests.context.conftest import (
    IP6_AMSTERDAM,
    IP_BERLIN,
    IP_CAMBRIDGE_UK,
    IP_MADRID,
    IP_MIT,
    IP_MONTREAL,
    IP_STOCKHOLM,
    IP_SYDNEY,
    IP_TOKYO,
    IP_UTRECHT,
)


def ip(address: str) -> IpAddress:
    parsed = parse_ip(address)
    assert parsed is not None, address
    return parsed


def locate(address: str) -> Location | None:
    return get_locator("geolite2").locate(ip(address))


@pytest.mark.parametrize(
    ("address", "country", "region", "city", "timezone"),
    [
        (IP_UTRECHT, "NL", "Provincie Utrecht", "Utrecht", "Europe/Amsterdam"),
        (IP_MADRID, "ES", "Madrid", "Madrid", "Europe/Madrid"),
        (IP_STOCKHOLM, "SE", "Stockholm", "Stockholm", "Europe/Stockholm"),
        (IP_CAMBRIDGE_UK, "GB", "England", "Cambridge", "Europe/London"),
        (IP_BERLIN, "DE", "Land Berlin", "Berlin", "Europe/Berlin"),
        (IP_MIT, "US", "Massachusetts", "Cambridge", "America/New_York"),
        (IP_MONTREAL, "CA", "Quebec", "Montreal", "America/Toronto"),
        (IP_SYDNEY, "AU", "New South Wales", "Sydney", "Australia/Sydney"),
        (IP_TOKYO, "JP", None, None, "Asia/Tokyo"),
        (IP6_AMSTERDAM, "NL", "North Holland", "Amsterdam", "Europe/Amsterdam"),
    ],
)
def test_locate_real_addresses_give_their_country_region_city_and_zone(
    address: str, country: str, region: str | None, city: str | None, timezone: str
) -> None:
    found = locate(address)

    assert found is not None
    assert (found.country, found.region, found.city) == (country, region, city)
    assert found.timezone == timezone
    assert found.latitude is not None
    assert found.longitude is not None


@pytest.mark.parametrize("address", ["192.168.1.20", "10.0.0.1", "127.0.0.1", "::1"])
def test_locate_private_and_loopback_addresses_are_nowhere(address: str) -> None:
    assert locate(address) is None


def test_parse_ip_reads_ipv4_mapped_addresses_and_refuses_what_is_not_one() -> None:
    assert str(parse_ip(f"::ffff:{IP_BERLIN}")) == IP_BERLIN
    assert parse_ip("testclient") is None
    assert parse_ip("") is None
    assert parse_ip(12345) is None


@pytest.mark.parametrize(
    ("privacy", "address", "kept"),
    [
        ("drop", IP_UTRECHT, None),
        ("truncate", IP_UTRECHT, "131.211.12.0"),
        ("truncate", IP6_AMSTERDAM, "2001:67c:2e8::"),
        ("keep", IP_UTRECHT, IP_UTRECHT),
        ("keep", IP6_AMSTERDAM, IP6_AMSTERDAM),
    ],
)
def test_kept_ip_follows_the_privacy_setting(
    privacy: str, address: str, kept: str | None
) -> None:
    assert kept_ip(ip(address), privacy) == kept  # type: ignore[arg-type]


def test_get_locator_names_the_accepted_providers_for_an_unknown_one() -> None:
    with pytest.raises(ValueError, match="accepted: geolite2, none"):
        get_locator("ipinfo")

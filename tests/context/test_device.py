"""Device type, system and browser from real user agents."""

import pytest

from context.device import parse_user_agent
from tests.context.conftest import (
    UA_ANDROID,
    UA_GALAXY_TAB,
    UA_GOOGLEBOT,
    UA_IPAD,
    UA_IPHONE,
    UA_MAC_SAFARI,
    UA_WINDOWS_CHROME,
    UA_WINDOWS_EDGE,
)


@pytest.mark.parametrize(
    ("agent", "kind", "system", "browser"),
    [
        (UA_IPHONE, "mobile", "iOS", "Safari"),
        (UA_ANDROID, "mobile", "Android", "Chrome"),
        (UA_WINDOWS_CHROME, "desktop", "Windows", "Chrome"),
        (UA_WINDOWS_EDGE, "desktop", "Windows", "Edge"),
        (UA_MAC_SAFARI, "desktop", "macOS", "Safari"),
        (UA_IPAD, "tablet", "iOS", "Safari"),
        (UA_GALAXY_TAB, "tablet", "Android", "Chrome"),
        (UA_GOOGLEBOT, "bot", None, "Googlebot"),
    ],
)
def test_parse_user_agent_real_browsers_give_type_system_and_browser(
    agent: str, kind: str, system: str | None, browser: str
) -> None:
    device = parse_user_agent(agent)

    assert (device.type, device.os, device.browser) == (kind, system, browser)


def test_parse_user_agent_a_library_or_garbage_is_other() -> None:
    assert parse_user_agent("analytics-python/2.3.3").type == "other"
    assert parse_user_agent("python-httpx/0.29.0").type == "other"
    assert parse_user_agent("\x00" * 40_000).type == "other"

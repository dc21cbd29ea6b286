"""Device type, operating system and browser from a user agent, with ua-parser
(the uap-core rules, kept current by its maintainers; the Rust matcher when
installed).

ua-parser names the device, the system and the browser but not the kind of
device, so the type comes from those names: a spider is a bot; an iPad, a known
tablet or an Android device without "Mobile" in its user agent is a tablet; a
phone system is mobile; a desktop system is a desktop. An iPad whose Safari asks
for desktop sites sends a Mac user agent and counts as a desktop.
"""

import re
from functools import lru_cache

import ua_parser

from context.models import Device, DeviceType

# Longer user agents are cut here: the rules never need more, and a cache key
# should not be a 32 KB string someone sent.
MAX_USER_AGENT = 512
_TABLET = re.compile(r"\b(iPad|Tablet|Kindle|Silk|PlayBook|Nexus (7|9|10))\b", re.I)
_MOBILE_SYSTEMS = {"iOS", "Android", "Windows Phone", "BlackBerry OS", "KaiOS"}
_DESKTOP_SYSTEMS = {
    "Windows", "Mac OS X", "Linux", "Ubuntu", "Fedora", "Chrome OS", "FreeBSD",
    "Debian", "OpenBSD",
}  # fmt: skip
_OS_NAMES = {"Mac OS X": "macOS"}
# One name per browser, whatever the device: "Mobile Safari" is Safari.
_BROWSER_NAMES = {
    "Mobile Safari": "Safari", "Mobile Safari UI/WKWebView": "Safari",
    "Chrome Mobile": "Chrome", "Chrome Mobile iOS": "Chrome",
    "Chrome Mobile WebView": "Chrome", "Firefox Mobile": "Firefox",
    "Firefox iOS": "Firefox", "Edge Mobile": "Edge", "Samsung Internet": "Samsung",
    "Opera Mobile": "Opera",
}  # fmt: skip


@lru_cache(maxsize=4096)
def parse_user_agent(user_agent: str) -> Device:
    """The device behind a user agent; ``other`` when nothing is recognised."""
    text = user_agent[:MAX_USER_AGENT]
    result = ua_parser.parse(text)
    browser = result.user_agent.family if result.user_agent else None
    system = result.os.family if result.os else None
    family = result.device.family if result.device else ""
    brand = (result.device.brand or "") if result.device else ""
    kind = _device_type(text, system, family, brand, browser)
    return Device(
        type=kind,
        os=_OS_NAMES.get(system or "", system) if system != "Other" else None,
        browser=_BROWSER_NAMES.get(browser or "", browser)
        if browser != "Other"
        else None,
    )


def _device_type(
    text: str, system: str | None, family: str, brand: str, browser: str | None
) -> DeviceType:
    if family == "Spider" or brand == "Spider":
        return "bot"
    if _TABLET.search(family) or "Tablet" in brand or _TABLET.search(text):
        return "tablet"
    if system == "Android" and "Mobile" not in text:
        return "tablet"  # Android phones say "Mobile"; tablets do not
    if system in _MOBILE_SYSTEMS:
        return "mobile"
    if system in _DESKTOP_SYSTEMS and browser not in (None, "Other"):
        return "desktop"
    return "other"

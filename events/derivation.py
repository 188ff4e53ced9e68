"""Server-side derivation of the device type and country a client left out (ADR 0014).

Device type comes from the User-Agent (ua-parser with its precompiled rules), country from
the client IP (geoip2fast, whose data ships with the package: no network). Both are memoised
per distinct input, so a batch, which usually carries one User-Agent and one IP, costs one
parse; and a field is only derived when the event did not carry it. Each derived field is
named in the row's `derived` list. The session id needs stored events and is assigned at
store time (`events.services.sessions`).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from geoip2fast import GeoIP2Fast
from ua_parser import parse as ua_parse

from events.schema import COUNTRY_CODES, UNKNOWN_COUNTRY

_MOBILE_OS = frozenset(
    {"iOS", "Windows Phone", "BlackBerry OS", "Firefox OS", "KaiOS", "Symbian OS", "webOS"}
)
_DESKTOP_OS = frozenset(
    {
        "Windows",
        "Mac OS X",
        "Linux",
        "Ubuntu",
        "Fedora",
        "Debian",
        "Chrome OS",
        "FreeBSD",
        "OpenBSD",
        "NetBSD",
        "Solaris",
    }
)
_TABLET_FAMILIES = ("iPad", "Kindle", "Tablet", "Nexus 7", "Nexus 9", "Nexus 10")
_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class ClientContext:
    """What a request says about the client, for derivation: its User-Agent and IP address.
    A protocol that carries them per message (Segment's context.userAgent and context.ip)
    passes one per event."""

    user_agent: str = ""
    ip: str | None = None


NO_CONTEXT = ClientContext()


@lru_cache(maxsize=_CACHE_SIZE)
def device_type_from_user_agent(user_agent: str) -> str:
    """desktop, mobile, tablet, or other (bots, unknown or no User-Agent)."""
    if not user_agent:
        return "other"
    parsed = ua_parse(user_agent[:1024])
    device = parsed.device
    family = device.family if device is not None else ""
    brand = (device.brand or "") if device is not None else ""
    os_family = parsed.os.family if parsed.os is not None else ""
    if family == "Spider":
        return "other"
    if "Tablet" in brand or any(name in family for name in _TABLET_FAMILIES):
        return "tablet"
    if os_family == "Android":
        # Android's own convention: phones' browsers say "Mobile", tablets' do not.
        return "mobile" if "Mobile" in user_agent else "tablet"
    if os_family in _MOBILE_OS or family in ("iPhone", "iPod"):
        return "mobile"
    if os_family in _DESKTOP_OS or family == "Mac":
        return "desktop"
    return "other"


_GEOIP: GeoIP2Fast | None = None


def _geoip() -> GeoIP2Fast:
    """The offline country data, loaded (about 0.2 s) on the first lookup of a process."""
    global _GEOIP
    if _GEOIP is None:
        _GEOIP = GeoIP2Fast(verbose=False)
    return _GEOIP


def ip_or_none(ip: str | None) -> str | None:
    """The address in canonical form, or None when it is not one (nothing to store)."""
    try:
        return str(ipaddress.ip_address(ip)) if ip else None
    except ValueError:
        return None


@lru_cache(maxsize=_CACHE_SIZE)
def country_from_ip(ip: str | None) -> str:
    """ISO 3166-1 alpha-2 of a public IP address, else UNKNOWN_COUNTRY (private, reserved,
    malformed, or not in the offline data)."""
    if not ip:
        return UNKNOWN_COUNTRY
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return UNKNOWN_COUNTRY
    if not address.is_global:
        return UNKNOWN_COUNTRY
    code = _geoip().lookup(str(address)).country_code
    return code if code in COUNTRY_CODES else UNKNOWN_COUNTRY


def row_derive(row: dict[str, Any], context: ClientContext) -> None:
    """Fill in device_type and country when the event left them out, and name them in
    `derived`. An explicit value always wins."""
    derived = []
    if not row["device_type"]:
        row["device_type"] = device_type_from_user_agent(context.user_agent)
        derived.append("device_type")
    if not row["country"]:
        row["country"] = country_from_ip(context.ip)
        derived.append("country")
    if not row["session_id"]:
        derived.append("session_id")  # assigned at store time (events.services.sessions)
    row["derived"] = derived

"""Dashboard filters: one parsed, validated value object shared by every page and selector.

Periods are aligned to the bucket they are charted in (hours for `24h`, UTC days otherwise), so
every number can be read exactly from hourly or daily rollups: a distinct-user count over whole
buckets needs no raw events. `end` is exclusive.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from urllib.parse import urlencode

from django.http import QueryDict
from django.utils import timezone

from events.schema import COUNTRY_CODES, DEVICE_TYPES, UNKNOWN_COUNTRY

# Countries a filter may name: ISO codes, and the one stored for unknown (ADR 0014).
FILTER_COUNTRIES = COUNTRY_CODES | {UNKNOWN_COUNTRY}

PRESETS: dict[str, dt.timedelta] = {
    "24h": dt.timedelta(hours=24),
    "7d": dt.timedelta(days=7),
    "30d": dt.timedelta(days=30),
    "90d": dt.timedelta(days=90),
}
DEFAULT_PRESET = "7d"
CUSTOM = "custom"
MAX_CUSTOM_DAYS = 366

HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)


def floor_hour(moment: dt.datetime) -> dt.datetime:
    moment = moment.astimezone(dt.UTC)
    return moment.replace(minute=0, second=0, microsecond=0)


def floor_day(moment: dt.datetime) -> dt.datetime:
    return floor_hour(moment).replace(hour=0)


def floor_week(moment: dt.datetime) -> dt.datetime:
    """Monday 00:00 UTC of the moment's week (weekly rollups, like `time_bucket(..., "week")`)."""
    day = floor_day(moment)
    return day - dt.timedelta(days=day.weekday())


def whole_weeks(start: dt.datetime, end: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """[first Monday on or after start, last Monday on or before end): the UTC weeks wholly in
    a day-aligned period (empty when first >= last)."""
    first = start + dt.timedelta(days=(7 - start.weekday()) % 7)
    return first, end - dt.timedelta(days=end.weekday())


@dataclass(frozen=True)
class DashboardFilters:
    """A period [start, end) in UTC plus optional device and country filters."""

    start: dt.datetime
    end: dt.datetime
    preset: str
    device: str | None = None
    country: str | None = None

    @property
    def bucket(self) -> str:
        """Chart granularity: hours for periods up to two days, days otherwise."""
        return "hour" if self.end - self.start <= 2 * DAY else "day"

    @property
    def bucket_size(self) -> dt.timedelta:
        return HOUR if self.bucket == "hour" else DAY

    def previous(self) -> DashboardFilters:
        """The period of equal length just before this one, same device and country."""
        length = self.end - self.start
        return replace(self, start=self.start - length, end=self.start)

    def as_query(self) -> str:
        """Query string that reproduces these filters (for shareable links)."""
        params: dict[str, str] = {"preset": self.preset}
        if self.preset == CUSTOM:
            params["start"] = self.start.date().isoformat()
            params["end"] = (self.end - DAY).date().isoformat()
        if self.device:
            params["device"] = self.device
        if self.country:
            params["country"] = self.country
        return urlencode(params)


def preset_filters(
    preset: str = DEFAULT_PRESET,
    *,
    now: dt.datetime | None = None,
    device: str | None = None,
    country: str | None = None,
) -> DashboardFilters:
    """Filters for a named preset ending with the bucket that contains `now`."""
    now = now or timezone.now()
    length = PRESETS[preset]
    end = floor_hour(now) + HOUR if preset == "24h" else floor_day(now) + DAY
    return DashboardFilters(
        start=end - length, end=end, preset=preset, device=device, country=country
    )


def _parse_date(value: str | None) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


def filters_ignored(query: QueryDict | dict) -> list[str]:
    """What `filters_from_query` drops of `query` as unknown, said for the page: a device,
    country or preset that does not exist. (A refused custom range is told apart: the page
    names the rule it broke.)"""
    notices = []
    device = query.get("device") or ""
    if device and device not in DEVICE_TYPES:
        notices.append(f"Ignored unknown device {device[:40]!r}")
    country = query.get("country") or ""
    if country and country.upper() not in FILTER_COUNTRIES:
        notices.append(f"Ignored unknown country {country[:40]!r}")
    preset = query.get("preset") or ""
    if preset and preset != CUSTOM and preset not in PRESETS:
        notices.append(f"Ignored unknown preset {preset[:40]!r}")
    return notices


def filters_from_query(
    query: QueryDict | dict, *, now: dt.datetime | None = None
) -> DashboardFilters:
    """Parse `preset`, `start`, `end` (YYYY-MM-DD, inclusive), `device`, `country`.

    Invalid values fall back to the defaults instead of failing: a mistyped shared link still
    shows a dashboard.
    """
    device = query.get("device") or None
    if device not in DEVICE_TYPES:
        device = None
    country = (query.get("country") or "").upper() or None
    if country not in FILTER_COUNTRIES:
        country = None
    preset = query.get("preset") or ""
    start_date = _parse_date(query.get("start"))
    end_date = _parse_date(query.get("end"))
    custom_ok = (
        preset in ("", CUSTOM)
        and start_date
        and end_date
        and 0 <= (end_date - start_date).days < MAX_CUSTOM_DAYS
    )
    if custom_ok:
        start = dt.datetime.combine(start_date, dt.time(), tzinfo=dt.UTC)
        end = dt.datetime.combine(end_date, dt.time(), tzinfo=dt.UTC) + DAY
        return DashboardFilters(start, end, CUSTOM, device, country)
    if preset not in PRESETS:
        preset = DEFAULT_PRESET
    return preset_filters(preset, now=now, device=device, country=country)

"""The volume baseline: what the current window's count should be, given the same window on
earlier days, the day of week, and how bursty the traffic is. Pure numbers (ADR 0020).

Why not a plain median of the same hour on the previous days: weekend hours then look like a
drop every weekend (the issue measured 14 of 17 false alarms on weekend hours), and the Poisson
noise √n understates the scatter of traffic that comes in sessions of several events.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# Same-weekday windows needed before the baseline uses them alone (hour-of-week seasonality);
# with fewer, every earlier day counts, scaled by its weekday's level.
SAME_WEEKDAY_MIN = 3
# Events arrive in sessions: the count of a window varies like a Poisson count of sessions
# times their size, so its variance is about `dispersion` x the mean (index of dispersion).
DEFAULT_DISPERSION = 6.0


@dataclass(frozen=True, slots=True)
class BaselineDay:
    """The same window `days_back` days earlier: its count and that day's weekday (0 Monday)."""

    days_back: int
    weekday: int
    count: int


def weekday_factors(day_totals: Sequence[tuple[int, int]]) -> dict[int, float]:
    """Level of each weekday relative to the average day, from (weekday, events) of whole
    past days. Weekdays without a whole day are left out (the caller treats them as 1)."""
    if not day_totals:
        return {}
    mean = statistics.fmean(total for _, total in day_totals)
    if mean <= 0:
        return {}
    by_weekday: dict[int, list[int]] = {}
    for weekday, total in day_totals:
        by_weekday.setdefault(weekday, []).append(total)
    return {weekday: statistics.fmean(totals) / mean for weekday, totals in by_weekday.items()}


def seasonal_baseline(
    days: Sequence[BaselineDay], *, weekday: int, factors: Mapping[int, float]
) -> tuple[list[float], str]:
    """(expected counts for the current window, one per usable earlier day; the mode used).

    With SAME_WEEKDAY_MIN same-weekday windows (three weeks of history) those alone are the
    baseline; otherwise each earlier day's count is scaled by the ratio of the weekday levels.
    """
    same = [float(day.count) for day in days if day.weekday == weekday]
    if len(same) >= SAME_WEEKDAY_MIN:
        return same, "same weekday"
    target = factors.get(weekday, 1.0)
    scaled = []
    for day in days:
        level = factors.get(day.weekday, 1.0)
        scaled.append(day.count * target / level if level > 0 else float(day.count))
    return scaled, "weekday-scaled days"


def volume_noise(expected: float, baseline: Sequence[float], dispersion: float) -> float:
    """The scale of a z-score: the larger of the baseline's robust scatter (1.4826·MAD) and
    the session-count noise √(dispersion·expected), never below 1."""
    median = statistics.median(baseline)
    mad = statistics.median(abs(value - median) for value in baseline)
    return max(1.4826 * mad, math.sqrt(dispersion * max(expected, 1.0)), 1.0)

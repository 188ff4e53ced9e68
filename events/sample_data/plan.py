"""What a run generates: its configuration, the minute-by-minute traffic density (day/night
rhythm in each country's local time) and the split into chunks."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np

from events.sample_data.catalog import (
    COUNTRIES,
    DEVICE_WEIGHTS,
    DEVICES,
    HOUR_WEIGHTS,
    MAX_EVENTS,
    WEEKEND_FACTOR,
)

# --- configuration -----------------------------------------------------------------------


def default_end(now: dt.datetime) -> dt.datetime:
    """The anchor when --end is not given: now, floored to the minute (so never in the future)."""
    return now.astimezone(dt.UTC).replace(second=0, microsecond=0)


@dataclass(frozen=True)
class SampleConfig:
    """What to generate. `events` counts distinct events (good and bad); duplicates come on top."""

    events: int
    end: dt.datetime
    seed: int = 42
    days: int = 7
    bad_rate: float = 0.003  # under the 99.5% pass-rate SLO: the demo starts clean
    duplicate_rate: float = 0.005
    late_rate: float = 0.002
    chunk_events: int = 250_000

    def __post_init__(self) -> None:
        if not 0 <= self.events <= MAX_EVENTS:
            raise ValueError(f"events must be between 0 and {MAX_EVENTS:,}")
        if self.days < 1:
            raise ValueError("days must be >= 1")
        if self.end.tzinfo is None:
            raise ValueError("end must be timezone-aware")
        for name in ("bad_rate", "duplicate_rate", "late_rate"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.chunk_events < 1:
            raise ValueError("chunk_events must be >= 1")

    @property
    def end_ms(self) -> int:
        return int(self.end.timestamp() * 1000)

    @property
    def start_ms(self) -> int:
        return self.end_ms - self.days * 86_400_000

    @property
    def chunk_count(self) -> int:
        return max(1, math.ceil(self.events / self.chunk_events)) if self.events else 0

    @property
    def user_count(self) -> int:
        """Distinct users: about one per 14 events, so most users have a few sessions."""
        return max(len(COUNTRIES) * 3, self.events // 14)


# --- the day/night rhythm ----------------------------------------------------------------


def _minute_density(config: SampleConfig) -> tuple[np.ndarray, np.ndarray]:
    """Traffic weight per minute of the period, and P(country | hour) per UTC hour."""
    minutes = config.days * 1440
    start = config.start_ms // 1000
    utc_hour_abs = (start + np.arange(0, minutes) * 60) // 3600  # hours since epoch
    hours = np.unique(utc_hour_abs)
    hour_of_day = hours % 24
    weekday = ((hours // 24) + 3) % 7  # 1970-01-01 was a Thursday (3, Monday = 0)
    shares = np.array([share for _, share, _ in COUNTRIES])
    offsets = np.array([offset for _, _, offset in COUNTRIES])
    local = np.floor(hour_of_day[:, None] + offsets[None, :]).astype(int) % 24
    per_country = shares[None, :] * np.asarray(HOUR_WEIGHTS)[local]
    per_country *= np.where(weekday >= 5, WEEKEND_FACTOR, 1.0)[:, None]
    per_hour = per_country.sum(axis=1)
    country_given_hour = per_country / per_hour[:, None]
    density = per_hour[np.searchsorted(hours, utc_hour_abs)]
    return density, country_given_hour[np.searchsorted(hours, utc_hour_abs)]


@dataclass(frozen=True)
class RunPlan:
    """How a run is split: chunk k covers minutes [bounds[k], bounds[k+1]) and has counts[k]
    events, in proportion to the traffic expected in its window."""

    config: SampleConfig
    density: np.ndarray
    country_given_minute: np.ndarray
    bounds: np.ndarray
    counts: np.ndarray
    user_country: np.ndarray  # country index per user (users grouped by country)
    country_user_offsets: np.ndarray
    user_device: np.ndarray  # usual device per user


def run_plan(config: SampleConfig) -> RunPlan:
    density, country_given_minute = _minute_density(config)
    chunks = config.chunk_count
    bounds = np.linspace(0, len(density), chunks + 1).round().astype(np.int64)
    counts = np.zeros(chunks, dtype=np.int64)
    if chunks:
        weight = np.add.reduceat(density, bounds[:-1])
        exact = config.events * weight / weight.sum()
        counts = np.floor(exact).astype(np.int64)
        shortfall = config.events - int(counts.sum())
        counts[np.argsort(-(exact - counts), kind="stable")[:shortfall]] += 1
    rng = np.random.default_rng([config.seed, 1_000_000_007])
    shares = np.array([share for _, share, _ in COUNTRIES])
    per_country = np.maximum(1, np.round(config.user_count * shares / shares.sum())).astype(int)
    user_country = np.repeat(np.arange(len(COUNTRIES)), per_country)
    user_device = rng.choice(len(DEVICES), size=len(user_country), p=DEVICE_WEIGHTS)
    return RunPlan(
        config=config,
        density=density,
        country_given_minute=country_given_minute,
        bounds=bounds,
        counts=counts,
        user_country=user_country,
        country_user_offsets=np.concatenate([[0], np.cumsum(per_country)]),
        user_device=user_device,
    )

"""Demand forecasts for the Kubernetes agent: a seasonal baseline by hour of week, with an interval.

Load on a service repeats weekly (Monday mornings, Friday evenings), so the forecast for an hour is
what was seen at that same hour of the week in the past: the median of those samples, and their
10th to 90th percentiles as the interval. Medians and quantiles, not means, so one incident or one
load test does not move the baseline. With fewer than :data:`MIN_SEASONAL_SAMPLES` at that hour of
the week (a new workload, a short history), the forecast falls back to the recent level: the median
of the last :data:`RECENT_WINDOW` samples, with their spread as the interval.

Plain functions over ``(instant, value)`` pairs: no database, no clock.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

#: Samples at one hour of the week needed for a seasonal forecast (three past weeks at least).
MIN_SEASONAL_SAMPLES = 3
#: How many of the latest samples make the recent level.
RECENT_WINDOW = 12
#: Quantiles of the interval.
LOW_QUANTILE, HIGH_QUANTILE = 0.1, 0.9
HOURS_PER_WEEK = 7 * 24


@dataclass(frozen=True)
class Forecast:
    """Expected demand at an hour, and the interval it most likely falls in (same unit as the samples)."""

    at: datetime
    expected: float
    low: float
    high: float
    #: ``seasonal`` (same hour of past weeks) or ``recent`` (the latest level: too little history).
    method: str
    #: Samples it rests on.
    samples: int


def hour_of_week(at: datetime) -> int:
    """0 (Monday 00:00-00:59 UTC) to 167 (Sunday 23:00-23:59 UTC)."""
    at = at.astimezone(UTC)
    return at.weekday() * 24 + at.hour


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (linear between the nearest ranks; one value is its own quantile)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    position = q * (len(ordered) - 1)
    below = int(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def _summary(at: datetime, values: Sequence[float], method: str) -> Forecast:
    return Forecast(at=at, expected=statistics.median(values), low=quantile(values, LOW_QUANTILE),
                    high=quantile(values, HIGH_QUANTILE), method=method, samples=len(values))  # fmt: skip


def forecast(history: Sequence[tuple[datetime, float]], at: datetime) -> Forecast | None:
    """Demand at the hour of ``at``, from ``history`` (any order; None when there is no history at all).

    Each past hour counts once (the median of its samples), so a week sampled every minute does not
    outweigh three weeks sampled hourly.
    """
    if not history:
        return None
    hour = hour_of_week(at)
    hourly: dict[datetime, list[float]] = {}
    for when, value in history:
        if hour_of_week(when) == hour:
            hourly.setdefault(when.astimezone(UTC).replace(minute=0, second=0, microsecond=0), []).append(value)
    if len(hourly) >= MIN_SEASONAL_SAMPLES:
        return _summary(at, [statistics.median(v) for v in hourly.values()], "seasonal")
    recent = [value for _, value in sorted(history, key=lambda s: s[0])[-RECENT_WINDOW:]]
    return _summary(at, recent, "recent")


def peak(history: Sequence[tuple[datetime, float]], now: datetime, *, horizon_hours: int) -> Forecast | None:
    """The forecast with the highest upper bound over the next ``horizon_hours`` (this hour included).

    A workload is sized for the busiest hour it is about to meet, not for the present one.
    """
    hours = [now + timedelta(hours=h) for h in range(max(1, horizon_hours))]
    found = [f for f in (forecast(history, at) for at in hours) if f is not None]
    return max(found, key=lambda f: (f.high, f.expected), default=None)

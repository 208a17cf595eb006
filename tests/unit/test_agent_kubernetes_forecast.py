"""The Kubernetes agent's forecast: a seasonal baseline by hour of week, robust to outliers, with an
interval, and the recent level when the history is too short."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.agents.kubernetes_forecast import forecast, hour_of_week, peak, quantile

#: A Monday, 08:00 UTC.
MONDAY_8 = datetime(2026, 12, 7, 8, tzinfo=UTC)


def _weeks(weeks: int, level: dict[int, float], *, base: float = 100.0, every_minutes: int = 60):
    """``weeks`` of samples before MONDAY_8: ``level[hour_of_week]`` at those hours, ``base`` elsewhere."""
    start = MONDAY_8 - timedelta(weeks=weeks)
    samples, at = [], start
    while at < MONDAY_8:
        samples.append((at, level.get(hour_of_week(at), base)))
        at += timedelta(minutes=every_minutes)
    return samples


def test_hour_of_week_counts_from_monday_midnight_utc():
    assert hour_of_week(MONDAY_8) == 8
    assert hour_of_week(datetime(2026, 12, 13, 23, 30, tzinfo=UTC)) == 167
    assert hour_of_week(datetime(2026, 12, 7, 9, 30, tzinfo=UTC)) == 9


def test_the_forecast_for_an_hour_is_what_past_weeks_saw_at_that_hour_of_the_week():
    # Given three weeks where Monday 08:00 runs at 900m and every other hour at 100m
    history = _weeks(3, {8: 900.0})
    # When Monday 08:00 and Monday 03:00 are forecast
    busy, quiet = forecast(history, MONDAY_8), forecast(history, MONDAY_8 - timedelta(hours=5))
    # Then each is its own hour's baseline, from three samples (one per week)
    assert busy is not None and (busy.method, busy.samples, busy.expected) == ("seasonal", 3, 900.0)
    assert quiet is not None and quiet.expected == 100.0


def test_one_outlier_week_moves_the_median_not_the_baseline_and_widens_the_interval():
    # Given four Mondays at 08:00: 800, 900, 1000 and a load test at 5000
    history = []
    for week, value in enumerate((800.0, 900.0, 1000.0, 5000.0), start=1):
        history.append((MONDAY_8 - timedelta(weeks=week), value))
    # When Monday 08:00 is forecast
    found = forecast(history, MONDAY_8)
    # Then the expected value is the median (950, not the mean 1925) and the interval holds the spread
    assert found is not None and found.method == "seasonal" and found.expected == 950.0
    assert found.low == quantile([800, 900, 1000, 5000], 0.1) and 800 < found.low < 900
    assert 1000 < found.high < 5000 and found.low <= found.expected <= found.high


def test_each_past_hour_counts_once_however_often_it_was_sampled():
    # Given one week sampled every minute at 2000m and three older weeks sampled hourly at 500m
    history = [(at, v) for at, v in _weeks(4, {8: 500.0}) if at < MONDAY_8 - timedelta(weeks=1)]
    history += _weeks(1, {8: 2000.0}, every_minutes=1)
    # Then the forecast rests on four hours, and the three hourly weeks carry the median
    found = forecast(history, MONDAY_8)
    assert found is not None and found.samples == 4 and found.expected == 500.0


def test_a_short_history_falls_back_to_the_recent_level():
    # Given six hours of history (no past week at all)
    history = [(MONDAY_8 - timedelta(hours=h), 300.0 + 10 * h) for h in range(1, 7)]
    # When the next hour is forecast
    found = forecast(history, MONDAY_8)
    # Then it is the recent level, with the spread of the recent samples as its interval
    assert found is not None and found.method == "recent" and found.samples == 6
    assert found.expected == 335.0 and found.low < found.expected < found.high <= 360.0
    assert forecast([], MONDAY_8) is None


def test_the_peak_of_the_horizon_is_the_busiest_hour_ahead():
    # Given Mondays busy at 10:00 only
    history = _weeks(3, {10: 1500.0})
    # When sizing at 08:00 for the next 3 hours, and for the next hour only
    ahead, now_only = peak(history, MONDAY_8, horizon_hours=3), peak(history, MONDAY_8, horizon_hours=1)
    # Then the 10:00 peak is found three hours ahead, not one
    assert ahead is not None and ahead.expected == 1500.0 and ahead.at == MONDAY_8 + timedelta(hours=2)
    assert now_only is not None and now_only.expected == 100.0

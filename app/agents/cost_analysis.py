"""What the cost agent finds in billed lines: spend anomalies, idle resources, and each month's totals.

Plain logic, no I/O. :class:`Spend` folds a stream of :class:`~app.agents.cost_exports.CostLine`
into daily series per provider, account and service, monthly totals, and each resource's cost and
metered use per month (memory grows with services x days and resources, never with lines).

- **Anomaly**: a day whose spend on a service in an account stands out from the trailing days
  (``anomaly_baseline_days``): its robust score ``(x - median) / (1.4826 * MAD)`` is at least
  ``anomaly_mad`` and it exceeds the median by ``anomaly_min_cost`` or more. The median and the
  MAD (median absolute deviation) ignore the spikes of the baseline itself; the scale has a floor
  (:data:`RELATIVE_FLOOR` of the median) so that a perfectly flat series does not make every cent
  a spike. Only rises count: spend falling is no cost to cut.
- **Idle**: a resource that cost ``idle_min_cost`` or more in a month while what meters its use
  (requests, bytes, I/O, LCU) summed to ``idle_usage_max`` or less, or that its provider bills as
  idle outright (an unattached Elastic IP). Resources billed only by time (an instance's hours)
  are not judged: the export cannot tell whether they were used.
"""

from __future__ import annotations

import calendar
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from .cost_exports import CostLine

#: Defaults of the thresholds an agent's configuration may set (``thresholds`` of ``POST /agents/config``).
DEFAULTS = {
    "anomaly_mad": 4.0, "anomaly_baseline_days": 14, "anomaly_min_days": 7, "anomaly_min_cost": 1.0,
    "idle_min_cost": 1.0, "idle_usage_max": 0.0,
}  # fmt: skip
#: The least scale of the anomaly score, as a fraction of the baseline's median (5 %).
RELATIVE_FLOOR = 0.05
#: Consistency constant: 1.4826 * MAD estimates the standard deviation of normally distributed spend.
MAD_TO_SIGMA = 1.4826

SeriesKey = tuple[str, str, str]  # provider, account, service


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def days_in(month: str) -> int:
    year, number = (int(p) for p in month.split("-"))
    return calendar.monthrange(year, number)[1]


def cents(value: float) -> float:
    return round(value, 2)


@dataclass(frozen=True, kw_only=True)
class Finding:
    """Something worth an operator's look, with what acting on it would save per month (an estimate).

    ``key`` identifies it across runs: an event is emitted once per finding, not once per run.
    """

    kind: str  # cost_anomaly | idle_resource | oversized
    month: str
    provider: str
    account: str
    service: str
    resource: str
    cost: float
    estimated_monthly_savings: float
    severity: str
    title: str
    detail: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return ":".join((self.kind, self.provider, self.account, self.service, self.resource,
                         str(self.detail.get("day", self.month))))  # fmt: skip

    def as_json(self) -> dict[str, Any]:
        return {"key": self.key, "kind": self.kind, "month": self.month, "provider": self.provider,
                "account": self.account, "service": self.service, "resource": self.resource, "cost": cents(self.cost),
                "estimated_monthly_savings": cents(self.estimated_monthly_savings), "severity": self.severity,
                "title": self.title, "detail": dict(self.detail)}  # fmt: skip


@dataclass
class ResourceUse:
    cost: float = 0.0
    metered_usage: float = 0.0
    metered_lines: int = 0
    idle_marker: bool = False
    days: set[date] = field(default_factory=set)


@dataclass
class Spend:
    """Lines folded into what the findings and reports need."""

    #: Daily cost of each provider, account and service, one-off lines left out (what anomalies are found in).
    daily: dict[SeriesKey, dict[date, float]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(float)))
    #: Monthly cost of each provider, account and service, every line counted.
    monthly: dict[str, dict[SeriesKey, float]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(float)))
    resources: dict[tuple[str, str, str, str, str], ResourceUse] = field(
        default_factory=lambda: defaultdict(ResourceUse)
    )
    days: dict[str, set[date]] = field(default_factory=lambda: defaultdict(set))

    def add(self, lines: Iterable[CostLine]) -> None:
        for line in lines:
            month, key = month_of(line.day), (line.provider, line.account, line.service)
            self.monthly[month][key] += line.cost
            self.days[month].add(line.day)
            if not line.one_off:
                self.daily[key][line.day] += line.cost
            if line.resource:
                use = self.resources[(month, line.provider, line.account, line.service, line.resource)]
                use.cost += line.cost
                use.idle_marker = use.idle_marker or line.idle_marker
                use.days.add(line.day)
                if line.metered:
                    use.metered_usage += line.usage
                    use.metered_lines += 1

    def totals(self) -> dict[str, dict[str, Any]]:
        """Per month: total cost, by provider and service, by provider and account, days with data."""
        months = {}
        for month, costs in self.monthly.items():
            by_service: dict[tuple[str, str], float] = defaultdict(float)
            by_account: dict[tuple[str, str], float] = defaultdict(float)
            for (provider, account, service), cost in costs.items():
                by_service[(provider, service)] += cost
                by_account[(provider, account)] += cost
            months[month] = {
                "total_cost": cents(sum(costs.values())), "days": len(self.days[month]),
                "by_service": [{"provider": p, "service": s, "cost": cents(c)}
                               for (p, s), c in sorted(by_service.items(), key=lambda kv: -kv[1])],
                "by_account": [{"provider": p, "account": a, "cost": cents(c)}
                               for (p, a), c in sorted(by_account.items(), key=lambda kv: -kv[1])],
            }  # fmt: skip
        return months


def robust_score(value: float, baseline: list[float]) -> tuple[float, float, float]:
    """``(score, median, scale)`` of ``value`` against ``baseline`` (median and scaled MAD, floored)."""
    median = statistics.median(baseline)
    mad = statistics.median(abs(x - median) for x in baseline)
    scale = max(MAD_TO_SIGMA * mad, RELATIVE_FLOOR * abs(median), 0.01)
    return (value - median) / scale, median, scale


def anomalies(daily: Mapping[SeriesKey, Mapping[date, float]], thresholds: Mapping[str, float]) -> list[Finding]:
    """Days whose spend stands out from their trailing baseline (see the module's docstring)."""
    limits = {**DEFAULTS, **thresholds}
    window, least = int(limits["anomaly_baseline_days"]), int(limits["anomaly_min_days"])
    found = []
    for (provider, account, service), series in daily.items():
        if not series:
            continue
        first, last = min(series), max(series)
        # a day without a line of the service cost nothing on it
        values = [series.get(first + timedelta(days=i), 0.0) for i in range((last - first).days + 1)]
        for i in range(least, len(values)):
            baseline = values[max(0, i - window) : i]
            score, median, scale = robust_score(values[i], baseline)
            excess = values[i] - median
            if score < limits["anomaly_mad"] or excess < limits["anomaly_min_cost"]:
                continue
            day = first + timedelta(days=i)
            found.append(Finding(
                kind="cost_anomaly", month=month_of(day), provider=provider, account=account, service=service,
                resource="", cost=values[i], estimated_monthly_savings=excess,
                severity="high" if score >= 2 * limits["anomaly_mad"] else "medium",
                title=f"{service} spend in {account or provider} on {day}: {values[i]:.2f}, "
                      f"{values[i] / median:.1f}x its baseline of {median:.2f}" if median > 0 else
                      f"{service} spend in {account or provider} on {day}: {values[i]:.2f} from a baseline of 0",
                detail={"day": day.isoformat(), "baseline_median": cents(median), "scale": cents(scale),
                        "score": round(score, 1), "excess_cost": cents(excess), "baseline_days": len(baseline)},
            ))  # fmt: skip
    return found


def idle_resources(spend: Spend, thresholds: Mapping[str, float]) -> list[Finding]:
    """Resources that cost money in a month with ~no metered use (see the module's docstring)."""
    limits = {**DEFAULTS, **thresholds}
    found = []
    for (month, provider, account, service, resource), use in spend.resources.items():
        unused = use.metered_lines > 0 and use.metered_usage <= limits["idle_usage_max"]
        if use.cost < limits["idle_min_cost"] or not (use.idle_marker or unused):
            continue
        run_rate = use.cost / len(use.days) * days_in(month)
        why = "billed as idle" if use.idle_marker else f"metered use {use.metered_usage:g} over {len(use.days)} days"
        found.append(Finding(
            kind="idle_resource", month=month, provider=provider, account=account, service=service,
            resource=resource, cost=use.cost, estimated_monthly_savings=run_rate, severity="low",
            title=f"Idle {service} resource {resource}: {use.cost:.2f} in {month}, {why}",
            detail={"days": len(use.days), "metered_usage": use.metered_usage, "billed_as_idle": use.idle_marker,
                    "monthly_run_rate": cents(run_rate)},
        ))  # fmt: skip
    return found

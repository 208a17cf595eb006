"""The Kubernetes agent's history of each workload: one row per hour, the most it used in that hour.

PERF: a run every few minutes would otherwise add a row per workload per run, and each run reads
back what its forecast needs, so rows are hourly buckets (the run of an hour that already has one
raises it to the larger values), and a run reads only the hours it uses: the last
:data:`RECENT_DAYS` (right-sizing and the recent level) and, for each of the past :data:`WEEKS`,
the hours of the week it forecasts. A few hundred rows per workload, whatever the interval.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import reduce
from operator import or_
from typing import Any

from ..models import WorkloadSample
from .kubernetes_client import Usage, Workload

#: Days read whole: the recent level and the usage requests are right-sized to.
RECENT_DAYS = 7
#: Past weeks read at the forecast's hours of the week.
WEEKS = 4
#: Rows older than this are deleted by the run that finds them.
KEEP_DAYS = WEEKS * 7 + 7


def hour_of(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _larger(old: Mapping[str, Mapping[str, float]], new: Mapping[str, Mapping[str, float]]) -> dict[str, Any]:
    merged = {name: dict(values) for name, values in old.items()}
    for name, values in new.items():
        seen = merged.setdefault(name, {})
        for key, value in values.items():
            seen[key] = max(seen.get(key, value), value)
    return merged


def record(cluster: str, workloads: Sequence[Workload], usage: Mapping[str, Usage], now: datetime) -> None:
    """Add this run's usage to each workload's row of the hour, and drop expired rows (in the caller's transaction)."""
    hour = hour_of(now)
    keys = [w.key for w in workloads]
    existing = {r.workload: r for r in WorkloadSample.select().where(
        WorkloadSample.cluster == cluster, WorkloadSample.at == hour, WorkloadSample.workload.in_(keys))}  # fmt: skip
    new = []
    for w in workloads:
        seen, row = usage.get(w.key), existing.get(w.key)
        if row is None:
            new.append({"cluster": cluster, "workload": w.key, "at": hour, "replicas": w.replicas,
                        "cpu_m": seen.cpu_m if seen else None, "memory_bytes": seen.memory_bytes if seen else None,
                        "containers": seen.containers if seen else {}})  # fmt: skip
        elif seen is not None:
            row.replicas = max(row.replicas, w.replicas)
            row.cpu_m = max(row.cpu_m or 0.0, seen.cpu_m)
            row.memory_bytes = max(row.memory_bytes or 0.0, seen.memory_bytes)
            row.containers = _larger(row.containers or {}, seen.containers)
            row.save()
    if new:
        # another run of the same cluster may have written the hour's row meanwhile: it keeps it
        WorkloadSample.insert_many(new).on_conflict_ignore().execute()
    WorkloadSample.delete().where(WorkloadSample.cluster == cluster,
                                  WorkloadSample.at < hour - timedelta(days=KEEP_DAYS)).execute()  # fmt: skip


def read(cluster: str, keys: Sequence[str], now: datetime, *, horizon_hours: int) -> dict[str, list[WorkloadSample]]:
    """Each workload's rows that a forecast over the next ``horizon_hours`` and right-sizing use, oldest first."""
    hour = hour_of(now)
    at = WorkloadSample.at
    windows = [at >= hour - timedelta(days=RECENT_DAYS)]
    for week in range(1, WEEKS + 1):
        start = hour - timedelta(weeks=week)
        windows.append((at >= start) & (at < start + timedelta(hours=max(1, horizon_hours))))
    query = (WorkloadSample.select()
             .where(WorkloadSample.cluster == cluster, WorkloadSample.workload.in_(list(keys)), reduce(or_, windows))
             .order_by(at))  # fmt: skip
    found: dict[str, list[WorkloadSample]] = {}
    for row in query:
        found.setdefault(row.workload, []).append(row)
    return found

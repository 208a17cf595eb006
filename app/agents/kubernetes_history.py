"""The Kubernetes agent's history of each workload: one row per hour, the most it used in that hour.

PERF: a run every few minutes would otherwise add a row per workload per run, and each run reads
back what its forecast needs. So rows are hourly buckets (the run of an hour that already has one
raises it to the larger values); a run reads only the CPU of the hours its forecast uses (the last
day, and the hours of the week ahead in each of the past :data:`WEEKS`: some thirty rows per
workload), and the week of per-container use that right-sizing needs only for the workloads whose
hour it opens, once an hour, not on every run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import reduce
from operator import or_
from typing import Any

from ..models import WorkloadSample
from .kubernetes_client import Usage, Workload

#: Hours read whole for the recent level (a new workload's forecast).
RECENT_HOURS = 24
#: Days of use that requests are right-sized to.
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


def record(cluster: str, workloads: Sequence[Workload], usage: Mapping[str, Usage], now: datetime) -> set[str]:
    """Add this run's usage to each workload's row of the hour, and drop expired rows (in the caller's transaction).

    Returns:
      The workloads whose row of the hour this run created: the first run of the hour for them.
    """
    hour = hour_of(now)
    keys = [w.key for w in workloads]
    existing = {r.workload: r for r in WorkloadSample.select().where(
        WorkloadSample.cluster == cluster, WorkloadSample.at == hour, WorkloadSample.workload.in_(keys))}  # fmt: skip
    new: list[dict[str, Any]] = []
    for w in workloads:
        seen, row = usage.get(w.key), existing.get(w.key)
        if row is None:
            new.append({"cluster": cluster, "workload": w.key, "at": hour, "replicas": w.replicas,
                        "cpu_m": seen.cpu_m if seen else None, "memory_bytes": seen.memory_bytes if seen else None,
                        "containers": seen.containers if seen else {}})  # fmt: skip
        elif seen is not None:
            before = (row.replicas, row.cpu_m, row.memory_bytes, row.containers)
            row.replicas = max(row.replicas, w.replicas)
            row.cpu_m = max(row.cpu_m or 0.0, seen.cpu_m)
            row.memory_bytes = max(row.memory_bytes or 0.0, seen.memory_bytes)
            row.containers = _larger(row.containers or {}, seen.containers)
            if (row.replicas, row.cpu_m, row.memory_bytes, row.containers) != before:  # PERF: most runs raise nothing
                row.save()
    if new:
        # another run of the same cluster may have written the hour's row meanwhile: it keeps it
        WorkloadSample.insert_many(new).on_conflict_ignore().execute()
    WorkloadSample.delete().where(WorkloadSample.cluster == cluster,
                                  WorkloadSample.at < hour - timedelta(days=KEEP_DAYS)).execute()  # fmt: skip
    return {row["workload"] for row in new}


def demand(
    cluster: str, keys: Sequence[str], now: datetime, *, horizon_hours: int
) -> dict[str, list[tuple[datetime, float]]]:
    """Each workload's CPU use (millicores, by hour, oldest first) that a forecast over the next ``horizon_hours`` reads.

    The last :data:`RECENT_HOURS` (the recent level) and, in each of the past :data:`WEEKS`, the
    forecast's hours of the week.
    """
    hour = hour_of(now)
    at = WorkloadSample.at
    windows = [at >= hour - timedelta(hours=RECENT_HOURS)]
    for week in range(1, WEEKS + 1):
        start = hour - timedelta(weeks=week)
        windows.append((at >= start) & (at < start + timedelta(hours=max(1, horizon_hours))))
    query: Any = (WorkloadSample.select(WorkloadSample.workload, at, WorkloadSample.cpu_m)
             .where(WorkloadSample.cluster == cluster, WorkloadSample.workload.in_(list(keys)),
                    WorkloadSample.cpu_m.is_null(False), reduce(or_, windows))
             .order_by(at).tuples())  # fmt: skip
    found: dict[str, list[tuple[datetime, float]]] = {}
    for workload, when, cpu in query:
        found.setdefault(workload, []).append((when, cpu))
    return found


def containers(cluster: str, keys: Sequence[str], now: datetime) -> dict[str, list[dict[str, Any]]]:
    """Each workload's per-container use by hour over the last :data:`RECENT_DAYS` (what requests are sized to)."""
    if not keys:
        return {}
    query: Any = (WorkloadSample.select(WorkloadSample.workload, WorkloadSample.containers)
             .where(WorkloadSample.cluster == cluster, WorkloadSample.workload.in_(list(keys)),
                    WorkloadSample.at >= hour_of(now) - timedelta(days=RECENT_DAYS))
             .order_by(WorkloadSample.at).tuples())  # fmt: skip
    found: dict[str, list[dict[str, Any]]] = {}
    for workload, used in query:
        if used:
            found.setdefault(workload, []).append(used)
    return found

"""Kubernetes requests against use: idle and oversized workloads, and what right-sizing their requests saves.

The samples come from a file an integration names (``{"type": "kubernetes_usage", "path": ...}``,
CSV or JSON, one sample per workload and time)::

    timestamp,namespace,kind,name,cpu_request,cpu_usage,memory_request,memory_usage[,monthly_cost]
    2026-11-03T10:00:00Z,shop,Deployment,web,2,180m,4Gi,900Mi

Quantities are Kubernetes quantities (``500m``, ``2Gi``) or plain numbers (cores, bytes). A
workload's request in a month is its largest; its use is the 95th percentile of its samples. It
costs ``monthly_cost`` when the file says so, else its requests priced at ``cpu_core_month`` and
``memory_gib_month`` (thresholds; the defaults are typical on-demand list prices).

- **Idle**: CPU use under ``idle_cpu_fraction`` of the request (2 %): the whole cost is saved by removing it.
- **Oversized**: a request at least ``oversize_ratio`` times its use (2x), CPU or memory: the
  request right-sized to the use plus ``headroom`` (20 %) saves the requests' cost in proportion.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from kubernetes.utils.quantity import parse_quantity

from .cost_analysis import Finding, month_of
from .cost_exports import day_of

DEFAULTS = {"oversize_ratio": 2.0, "headroom": 0.2, "idle_cpu_fraction": 0.02, "cpu_core_month": 25.0,
            "memory_gib_month": 3.5}  # fmt: skip
REQUIRED = ("timestamp", "namespace", "kind", "name", "cpu_request", "cpu_usage", "memory_request", "memory_usage")
GIB = 1024**3


def quantity(value: Any, name: str) -> float:
    """A Kubernetes quantity or a number, as a float (cores, bytes).

    Raises:
      ValueError: it is neither (the sample is counted as skipped).
    """
    try:
        parsed = parse_quantity(value if isinstance(value, str | int | float | Decimal) else str(value))
    except ValueError:
        raise ValueError(f"{name} is no quantity") from None
    return float(parsed)


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (a sample that was seen, never an interpolation)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


@dataclass
class Workload:
    cpu_request: float = 0.0
    memory_request: float = 0.0
    cpu_usage: list[float] = field(default_factory=list)
    memory_usage: list[float] = field(default_factory=list)
    monthly_cost: float | None = None


@dataclass
class Workloads:
    """Samples folded per month and workload (``k8s:<namespace>/<kind>/<name>``, as agents name targets)."""

    by_month: dict[tuple[str, str], Workload] = field(default_factory=lambda: defaultdict(Workload))

    def add(self, rows: Iterable[Mapping[str, Any]], skipped: dict[str, int]) -> None:
        for row in rows:
            missing = [c for c in REQUIRED if row.get(c) in (None, "")]
            try:
                if missing:
                    raise ValueError(f"{missing[0]} is missing")
                month = month_of(day_of(row["timestamp"], "timestamp"))
                values = {c: quantity(row[c], c) for c in REQUIRED[4:]}
                cost = float(row["monthly_cost"]) if row.get("monthly_cost") not in (None, "") else None
            except ValueError as e:
                skipped[str(e)] = skipped.get(str(e), 0) + 1
                continue
            target = f"k8s:{row['namespace']}/{str(row['kind']).lower()}/{row['name']}"
            w = self.by_month[(month, target)]
            w.cpu_request = max(w.cpu_request, values["cpu_request"])
            w.memory_request = max(w.memory_request, values["memory_request"])
            w.cpu_usage.append(values["cpu_usage"])
            w.memory_usage.append(values["memory_usage"])
            w.monthly_cost = cost if cost is not None else w.monthly_cost

    def findings(self, thresholds: Mapping[str, float]) -> list[Finding]:
        limits = {**DEFAULTS, **thresholds}
        found = []
        for (month, target), w in sorted(self.by_month.items()):
            cpu_cost = w.cpu_request * limits["cpu_core_month"]
            memory_cost = w.memory_request / GIB * limits["memory_gib_month"]
            priced = cpu_cost + memory_cost
            cost = w.monthly_cost if w.monthly_cost is not None else priced
            cpu, memory = percentile(w.cpu_usage, 0.95), percentile(w.memory_usage, 0.95)
            common: dict[str, Any] = {"month": month, "provider": "kubernetes", "account": target.split("/")[0].removeprefix("k8s:"),
                      "service": "kubernetes", "resource": target, "cost": cost}  # fmt: skip
            detail = {"cpu_request": w.cpu_request, "cpu_p95": cpu, "memory_request_gib": round(w.memory_request / GIB, 3),
                      "memory_p95_gib": round(memory / GIB, 3), "samples": len(w.cpu_usage)}  # fmt: skip
            if w.cpu_request > 0 and cpu < limits["idle_cpu_fraction"] * w.cpu_request:
                found.append(Finding(kind="idle_resource", estimated_monthly_savings=cost, severity="low",
                                     title=f"Idle workload {target}: CPU p95 {cpu:g} of {w.cpu_request:g} cores requested",
                                     detail=detail, **common))  # fmt: skip
                continue
            ratio = limits["oversize_ratio"]
            cpu_over = cpu > 0 and w.cpu_request / cpu >= ratio
            memory_over = memory > 0 and w.memory_request / memory >= ratio
            if not (cpu_over or memory_over) or priced <= 0:
                continue
            grow = 1 + limits["headroom"]
            cpu_target = min(w.cpu_request, cpu * grow) if cpu_over else w.cpu_request
            memory_target = min(w.memory_request, memory * grow) if memory_over else w.memory_request
            right_sized = cpu_target * limits["cpu_core_month"] + memory_target / GIB * limits["memory_gib_month"]
            savings = cost * (1 - right_sized / priced)
            found.append(Finding(
                kind="oversized", estimated_monthly_savings=savings, severity="low",
                title=f"Oversized workload {target}: requests {w.cpu_request:g} cores / "
                      f"{w.memory_request / GIB:.1f} GiB, p95 use {cpu:g} cores / {memory / GIB:.1f} GiB",
                detail={**detail, "recommended_cpu_request": round(cpu_target, 3),
                        "recommended_memory_request_gib": round(memory_target / GIB, 3)},
                **common,
            ))  # fmt: skip
        return found

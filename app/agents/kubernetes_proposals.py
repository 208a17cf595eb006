"""What the Kubernetes agent proposes: scale changes for the forecast demand, and right-sized requests.

Pure logic over a :class:`~app.agents.kubernetes_client.Workload`, its CPU forecast and its usage
history. Each proposal is an :class:`~app.agents.base.AgentAction` whose steps are ``http`` PATCHes
to the API server, run by the executor, with rollback steps that write the previous values back:

- replicas, without an HPA: ``PATCH <workload>/scale`` (merge patch of ``spec.replicas``);
- with an HPA: ``PATCH`` the HPA's ``minReplicas`` / ``maxReplicas`` (merge patch): the HPA keeps
  scaling, within bounds that hold the forecast peak;
- requests: ``PATCH`` the workload's pod template (strategic merge patch: containers merge by name).

Thresholds (the agent's ``thresholds``, all optional): ``cpu_target`` (fraction of requested CPU a
pod should use at the forecast's upper bound, default 0.7), ``horizon_hours`` (how far ahead to size
for, default 2), ``min_replicas`` / ``max_replicas`` (bounds of any proposal, default 1 / 50),
``rightsize_min_samples`` (history needed before requests are judged, default 24),
``rightsize_headroom`` (above the observed need, default 0.2) and ``rightsize_change`` (smallest
relative change worth a rollout, default 0.3).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .base import AgentAction
from .kubernetes_client import Workload, format_cpu, format_memory
from .kubernetes_forecast import Forecast, quantile

DEFAULTS = {"cpu_target": 0.7, "horizon_hours": 2, "min_replicas": 1, "max_replicas": 50,
            "rightsize_min_samples": 24, "rightsize_headroom": 0.2, "rightsize_change": 0.3}  # fmt: skip
#: Smallest CPU and memory request proposed (below these, scheduling noise dominates).
MIN_CPU_M, MIN_MEMORY_BYTES = 10.0, 32 * 2**20
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"


@dataclass(frozen=True, kw_only=True)
class Target:
    """Where and how the steps reach the API server."""

    #: ``https://host:6443``.
    host: str
    #: ``{{ secret.NAME }}`` of a bearer token the executor sends (None: no Authorization header).
    token: str | None = None
    verify_tls: bool = True


def threshold(thresholds: Mapping[str, float], name: str) -> float:
    return float(thresholds.get(name, DEFAULTS[name]))


def _patch(target: Target, step_id: str, name: str, path: str, body: dict[str, Any], content_type: str,
           **extra: Any) -> dict[str, Any]:  # fmt: skip
    headers = {"Content-Type": content_type, "Accept": "application/json"}
    if target.token:
        headers["Authorization"] = f"Bearer {target.token}"
    http = {"method": "PATCH", "url": f"{target.host}{path}", "headers": headers, "json": body,
            "verify_tls": target.verify_tls}  # fmt: skip
    return {"id": step_id, "name": name, "type": "remediation", "operation": "configuration_change", "http": http,
            **extra}  # fmt: skip


def desired_replicas(workload: Workload, demand: Forecast, thresholds: Mapping[str, float]) -> int | None:
    """Replicas that keep each pod at ``cpu_target`` of its request at the forecast's upper bound.

    A workload with a CPU-scaled HPA is sized at the HPA's own target, the size the HPA will run it at.
    None when a container requests no CPU: without a request there is no capacity per pod to divide by.
    """
    per_pod = workload.cpu_request_m
    if not per_pod:
        return None
    target = (workload.autoscaler and workload.autoscaler.cpu_utilization) or threshold(thresholds, "cpu_target")
    needed = math.ceil(demand.high / (per_pod * target))
    low, high = int(threshold(thresholds, "min_replicas")), int(threshold(thresholds, "max_replicas"))
    return max(low, min(high, needed))


def _described(demand: Forecast) -> str:
    return (f"CPU forecast {demand.expected:.0f}m (interval {demand.low:.0f}m-{demand.high:.0f}m, "
            f"{demand.method} from {demand.samples} samples) at {demand.at:%a %H:00} UTC")  # fmt: skip


def scale(workload: Workload, demand: Forecast, thresholds: Mapping[str, float], target: Target) -> AgentAction | None:
    """A replicas (or HPA bounds) change when the forecast needs another size, else None."""
    wanted = desired_replicas(workload, demand, thresholds)
    if wanted is None or workload.replicas == 0:  # scaled to zero: someone turned it off on purpose
        return None
    hpa = workload.autoscaler
    if hpa is not None:
        return _bounds(workload, hpa.min_replicas, hpa.max_replicas, wanted, demand, target)
    if wanted == workload.replicas:
        return None
    path = f"{workload.path}/scale"
    up = wanted > workload.replicas
    step = _patch(target, "scale", f"Scale {workload.key} to {wanted} replicas", path,
                  {"spec": {"replicas": wanted}}, MERGE_PATCH)  # fmt: skip
    back = _patch(target, "unscale", f"Scale {workload.key} back to {workload.replicas} replicas", path,
                  {"spec": {"replicas": workload.replicas}}, MERGE_PATCH, rolls_back="scale")  # fmt: skip
    # more pods cost money but risk little; fewer pods risk the service if the forecast is wrong
    risk = "medium" if not up or wanted > 2 * workload.replicas else "low"
    return AgentAction(
        type="scale_up" if up else "scale_down", risk_level=risk,
        description=f"{'Scale up' if up else 'Scale down'} {workload.key} from {workload.replicas} to {wanted} "
                    f"replicas: {_described(demand)}",
        target_resources=(workload.resource,), steps=(step,), rollback_steps=(back,),
        estimated_impact=f"replicas {workload.replicas} -> {wanted}", key=f"{workload.key}:scale",
        confidence=0.8 if demand.method == "seasonal" else 0.6,
    )  # fmt: skip


def _bounds(
    workload: Workload, low: int, high: int, wanted: int, demand: Forecast, target: Target
) -> AgentAction | None:
    """Raise an HPA's bounds to hold the forecast peak: its minimum to pre-scale, its maximum to allow it.

    Bounds are only raised: lowering an operator's minimum is the operator's call (a rollback restores it).
    """
    new_low, new_high = max(low, wanted), max(high, wanted)
    if (new_low, new_high) == (low, high):
        return None
    assert workload.autoscaler is not None
    hpa = workload.autoscaler
    path = f"/apis/autoscaling/v2/namespaces/{workload.namespace}/horizontalpodautoscalers/{hpa.name}"
    step = _patch(target, "bounds", f"Set HPA {hpa.name} to {new_low}-{new_high} replicas", path,
                  {"spec": {"minReplicas": new_low, "maxReplicas": new_high}}, MERGE_PATCH)  # fmt: skip
    back = _patch(target, "unbounds", f"Set HPA {hpa.name} back to {low}-{high} replicas", path,
                  {"spec": {"minReplicas": low, "maxReplicas": high}}, MERGE_PATCH, rolls_back="bounds")  # fmt: skip
    effect = "; ".join(f"hpa {name} {old} -> {new}" for name, old, new in
                       (("minReplicas", low, new_low), ("maxReplicas", high, new_high)) if old != new)  # fmt: skip
    return AgentAction(
        type="scale_bounds", risk_level="medium",
        description=f"Raise the autoscaler bounds of {workload.key} to {new_low}-{new_high} replicas: {_described(demand)}",
        target_resources=(workload.resource, f"k8s:{workload.namespace}/horizontalpodautoscaler/{hpa.name}"),
        steps=(step,), rollback_steps=(back,), estimated_impact=effect, key=f"{workload.key}:scale",
        confidence=0.8 if demand.method == "seasonal" else 0.6,
    )  # fmt: skip


def rightsize(workload: Workload, history: Sequence[Mapping[str, Any]], thresholds: Mapping[str, float],
              target: Target) -> AgentAction | None:  # fmt: skip
    """Requests sized to what the containers used, when they are far off (None: too little history or close enough).

    ``history`` holds the samples' ``containers`` maps (:attr:`Usage.containers`). CPU is sized to the
    95th percentile per pod plus headroom (CPU over its request is throttled, not killed); memory to the
    largest seen plus headroom (memory over its limit is killed), and memory is never lowered below it.
    """
    if len(history) < threshold(thresholds, "rightsize_min_samples"):
        return None
    headroom, change = threshold(thresholds, "rightsize_headroom"), threshold(thresholds, "rightsize_change")
    new_requests, old_requests, effects = [], [], []
    lowers_memory = False
    for container in workload.containers:
        seen = [h[container.name] for h in history if container.name in h]
        if len(seen) < len(history) / 2:
            continue
        new: dict[str, str] = {}
        old: dict[str, str] = {}
        cpu_need = max(MIN_CPU_M, quantile([s["cpu_m"] for s in seen], 0.95) * (1 + headroom))
        if container.cpu_request_m and abs(cpu_need - container.cpu_request_m) > change * container.cpu_request_m:
            new["cpu"], old["cpu"] = format_cpu(cpu_need), str(container.cpu_request)
        memory_need = max(MIN_MEMORY_BYTES, max(s["memory_bytes"] for s in seen) * (1 + headroom))
        requested = container.memory_request_bytes
        if requested and abs(memory_need - requested) > change * requested:
            new["memory"], old["memory"] = format_memory(memory_need), str(container.memory_request)
            lowers_memory = lowers_memory or memory_need < requested
        if new:
            new_requests.append({"name": container.name, "resources": {"requests": new}})
            old_requests.append({"name": container.name, "resources": {"requests": old}})
            effects += [f"{container.name} {what} request {old[what]} -> {new[what]}" for what in new]
    if not new_requests:
        return None

    def template(containers: list[dict[str, Any]]) -> dict[str, Any]:
        return {"spec": {"template": {"spec": {"containers": containers}}}}

    step = _patch(target, "requests", f"Right-size the requests of {workload.key}", workload.path,
                  template(new_requests), STRATEGIC_MERGE_PATCH)  # fmt: skip
    back = _patch(target, "unrequests", f"Restore the requests of {workload.key}", workload.path,
                  template(old_requests), STRATEGIC_MERGE_PATCH, rolls_back="requests")  # fmt: skip
    return AgentAction(
        type="rightsize", risk_level="high" if lowers_memory else "medium",
        description=f"Right-size the requests of {workload.key} to what {len(history)} samples used "
                    "(a rolling restart of its pods)",
        target_resources=(workload.resource,), steps=(step,), rollback_steps=(back,),
        estimated_impact="; ".join(effects), key=f"{workload.key}:requests", purpose="cost",
    )  # fmt: skip


def proposals(workload: Workload, demand: Forecast | None, history: Sequence[Mapping[str, Any]],
              thresholds: Mapping[str, float], target: Target) -> list[AgentAction]:  # fmt: skip
    """Everything proposed for one workload (``history``: its samples' per-container usage, oldest first)."""
    found = []
    if demand is not None:
        found.append(scale(workload, demand, thresholds, target))
    found.append(rightsize(workload, history, thresholds, target))
    return [action for action in found if action is not None]

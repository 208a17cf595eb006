"""Which open incident an event joins, and why — or that it opens one, or closes one.

Kinds (``events.event_correlations.correlation_type``):

- ``causal``: the event's host (or its service's host) depends on an upstream device
  (``/api/v1/topology``) that is part of an open incident within the time window;
- ``time_based``: an open incident on the same host within the time window (15 min);
- ``host_based`` / ``service_based``: the same host / service within the look-back (1 h);
- ``pattern_based``: a message of the same template (similarity ≥ 0.8) within the window;
- ``resolution``: a resolution event closes the incident of the problem it resolves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .templates import similarity, template

SEVERITY_WEIGHT = {"critical": 1.0, "high": 0.75, "medium": 0.5, "low": 0.25, "info": 0.1}
CRITICALITY_WEIGHT = {"critical": 1.0, "high": 0.75, "medium": 0.5, "low": 0.25}


@dataclass(kw_only=True)
class GroupingSettings:
    """How far apart in time and how alike events may be to join one incident."""

    window: timedelta = timedelta(minutes=15)
    lookback: timedelta = timedelta(hours=1)
    similarity: float = 0.8
    #: A problem that resolves and returns more than this many times within flap_window is flapping.
    flap_changes: int = 3
    flap_window: timedelta = timedelta(minutes=30)


@dataclass
class Topology:
    """Operator-declared dependencies: host -> upstream device, service -> host; criticality of assets."""

    upstream: dict[str, str] = field(default_factory=dict)
    service_host: dict[str, str] = field(default_factory=dict)
    criticality: dict[str, str] = field(default_factory=dict)
    #: Operator-declared problem/resolution pairs of event types: resolution type -> problem types.
    resolutions: dict[str, set[str]] = field(default_factory=dict)

    def upstreams_of(self, host: str | None, service: str | None) -> list[str]:
        """Every device above the event's host (or its service's host), nearest first."""
        node = host or (self.service_host.get(service) if service else None)
        seen: list[str] = []
        while node and node in self.upstream and self.upstream[node] not in seen:
            node = self.upstream[node]
            seen.append(node)
        return seen

    def dependents_of(self, device: str) -> set[str]:
        """Every host below ``device`` (transitively); computed once per device."""
        # PERF: asked for every event; the reverse map and the answers are built lazily, once.
        cache = self.__dict__.setdefault("_below", {})
        if device in cache:
            return cache[device]
        children = self.__dict__.get("_children")
        if children is None:
            children = {}
            for host, up in self.upstream.items():
                children.setdefault(up, set()).add(host)
            self.__dict__["_children"] = children
        below: set[str] = set()
        frontier = set(children.get(device, ()))
        while frontier:
            below |= frontier
            frontier = {c for node in frontier for c in children.get(node, ())} - below
        cache[device] = below
        return below


@dataclass
class OpenIncident:
    id: str
    hosts: set[str]
    services: set[str]
    templates: list[tuple[str, ...]]
    fingerprints: set[str]
    last_event_at: datetime
    root_host: str | None = None
    link_keys: set[str] = field(default_factory=set)


@dataclass
class Placement:
    """Where :func:`choose` puts an event: the incident it joins (or none), with the kind, score and reason."""

    kind: str  # the correlation type, or "new" / "resolution" / "none"
    incident: OpenIncident | None
    score: float
    reason: str


def link_key(event: dict[str, Any]) -> str | None:
    """linkDown/linkUp of one interface of one device share this key."""
    meta = event.get("metadata") or {}
    if meta.get("trap_name") in ("linkDown", "linkUp") and meta.get("ifIndex") is not None:
        return f"{event.get('host')}#{meta['ifIndex']}"
    return None


def problem_key(host: str | None, event_type: str) -> str:
    """Key of a problem an operator-declared resolution type closes (same host, problem type)."""
    return f"{host}|{event_type}"


def resolves(event: dict[str, Any], topology: Topology | None = None) -> bool:
    meta = event.get("metadata") or {}
    declared = topology is not None and event.get("event_type") in topology.resolutions
    return bool(meta.get("resolution")) or meta.get("trap_name") == "linkUp" or declared


def problem_fingerprint(event: dict[str, Any]) -> str:
    return str(event.get("fingerprint") or "").removesuffix(":resolved")


def _resolution(event: dict[str, Any], incidents: list[OpenIncident], topology: Topology) -> Placement:
    key, fp = link_key(event), problem_fingerprint(event)
    declared = {problem_key(event.get("host"), p) for p in topology.resolutions.get(event.get("event_type") or "", ())}
    for inc in incidents:
        if (key and key in inc.link_keys) or (fp and fp in inc.fingerprints) or (declared & inc.link_keys):
            return Placement("resolution", inc, 1.0, f"{event.get('title')} resolves the incident's problem")
    return Placement("none", None, 0.0, "a resolution with no open problem")


def _causal(host: str | None, service: str | None, recent: list[OpenIncident], topology: Topology) -> Placement | None:
    for device in topology.upstreams_of(host, service):
        for inc in recent:
            if device in inc.hosts:
                return Placement(
                    "causal", inc, 0.9, f"{host or service} depends on {device}, which has an open problem"
                )
    return None


def _same_host(
    host: str, at: datetime, recent: list[OpenIncident], incidents: list[OpenIncident], topology: Topology
) -> Placement | None:
    for inc in recent:
        if host in inc.hosts:
            minutes = max(1, int((at - inc.last_event_at).total_seconds() // 60) + 1)
            return Placement("time_based", inc, 0.85, f"Events occurred within {minutes} minutes on same host")
    # the event is on an upstream device: its dependents' incident joins it, as their cause
    below = topology.dependents_of(host)
    for inc in recent:
        if inc.hosts & below:
            return Placement("causal", inc, 0.9, f"{host} is upstream of {', '.join(sorted(inc.hosts & below)[:3])}")
    for inc in incidents:
        if host in inc.hosts:
            return Placement("host_based", inc, 0.7, "Same host within the last hour")
    return None


def _same_pattern(event: dict[str, Any], recent: list[OpenIncident], cfg: GroupingSettings) -> Placement | None:
    if event.get("severity") == "info":
        return None  # routine messages repeat everywhere: by pattern alone they are not one problem
    tpl = template(str(event.get("title") or ""))
    for inc in recent:
        best = max((similarity(tpl, t) for t in inc.templates), default=0.0)
        if best >= cfg.similarity:
            return Placement(
                "pattern_based", inc, round(best, 2), f"Message matches the incident's pattern ({best:.0%} similar)"
            )
    return None


def choose(
    event: dict[str, Any], at: datetime, incidents: list[OpenIncident], topology: Topology, cfg: GroupingSettings
) -> Placement:
    """Place one event, against the open incidents (most recent first)."""
    if resolves(event, topology):
        return _resolution(event, incidents, topology)
    host, service = event.get("host"), event.get("service")
    recent = [i for i in incidents if at - i.last_event_at <= cfg.window]
    placement = _causal(host, service, recent, topology)
    if placement is None and host:
        placement = _same_host(host, at, recent, incidents, topology)
    if placement is None and service:
        placement = next(
            (
                Placement("service_based", i, 0.6, "Same service within the last hour")
                for i in incidents
                if service in i.services
            ),
            None,
        )
    return (
        placement
        or _same_pattern(event, recent, cfg)
        or Placement("new", None, 1.0, "no open incident relates to this event")
    )


def severity_score(severities: list[str], size: int, criticality: str | None) -> float:
    """0..1 from the worst severity, the incident's size and the asset's criticality."""
    import math

    worst = max((SEVERITY_WEIGHT.get(s, 0.1) for s in severities), default=0.1)
    size_part = min(1.0, math.log10(1 + size) / 2)
    crit = CRITICALITY_WEIGHT.get(criticality or "medium", 0.5)
    return round(min(1.0, 0.6 * worst + 0.2 * size_part + 0.2 * crit), 2)

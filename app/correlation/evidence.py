"""The evidence that an event belongs to an open incident, each kind weighed, and the score they add up to.

Separation is a decision like grouping: an event joins an incident only on positive evidence whose
weights add up to the join score (:attr:`GroupingSettings.join_score`). The kinds, strongest first:

- ``fingerprint``: the same problem (fingerprint, a resolution's suffix aside) was seen in the
  incident within the look-back;
- ``topology``: the event's node depends on a failing node of the incident, at any depth, or a
  failing node of the incident depends on the event's node (the event is their cause);
- ``service``: the same service, or the event's host runs one of the incident's services, or the
  event's service runs on one of the incident's hosts (per the topology);
- ``template``: the message matches one of the incident's message templates (similarity at least
  :attr:`GroupingSettings.similarity`; routine ``info`` messages never count);
- ``host``: the same host;
- ``nearby``: the event's node and a failing node of the incident hang off the same node (a common
  direct dependency) — supporting evidence only: nearby is not dependent;
- ``other_service`` (negative): the event names a service and the incident holds others, and no
  evidence ties them (no topology, service or template link): two problems, not one.

Evidence other than ``fingerprint`` counts in full within the time window of the incident (its
first to its last event) and at half weight up to the look-back, so "same host" alone joins only
within the window, and a second problem of another service on that host opens its own incident.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from .templates import similarity, template

if TYPE_CHECKING:
    from .grouping import GroupingSettings, OpenIncident

#: The kinds of evidence, in the order a reason lists them.
KINDS = ("fingerprint", "topology", "service", "template", "host", "nearby", "other_service")


class TopologyView(Protocol):
    """What grouping asks of the topology (:class:`app.topology.graph.Graph` answers it)."""

    criticality: dict[str, str]
    resolutions: dict[str, set[str]]

    def ancestors(self, node: str) -> list[tuple[str, int]]: ...

    def dependents(self, node: str) -> set[str]: ...

    def hosts_of(self, service: str) -> set[str]: ...

    def services_on(self, host: str) -> set[str]: ...


@dataclass(frozen=True, kw_only=True)
class Weights:
    """How much each kind of evidence adds to a join's score (``CORRELATION_WEIGHT_<KIND>``)."""

    fingerprint: float = 1.0
    topology: float = 0.9
    service: float = 0.6
    template: float = 0.6
    host: float = 0.5
    nearby: float = 0.3
    other_service: float = -0.4


@dataclass
class Facts:
    """What evidence is computed from, worked out once per event."""

    host: str | None
    service: str | None
    fingerprint: str
    template: tuple[str, ...]
    routine: bool
    #: The event's nodes: its host, its service and the hosts the service runs on.
    nodes: set[str]
    #: Every node the event's nodes depend on -> hops.
    ancestors: dict[str, int]
    #: The nodes the event's nodes depend on directly.
    parents: set[str]
    services_here: set[str] = field(default_factory=set)


def facts_of(event: dict[str, Any], topology: TopologyView) -> Facts:
    """The event's :class:`Facts` (one walk of the topology, cached by the graph)."""
    host, service = event.get("host"), event.get("service")
    nodes = {n for n in (host, service) if n}
    if service:
        nodes |= topology.hosts_of(service)
    ancestors: dict[str, int] = {}
    for node in sorted(nodes):
        for up, hops in topology.ancestors(node):
            if up not in nodes and hops < ancestors.get(up, 1 << 30):
                ancestors[up] = hops
    return Facts(
        host=host,
        service=service,
        fingerprint=str(event.get("fingerprint") or "").removesuffix(":resolved"),
        template=template(str(event.get("title") or "")),
        routine=event.get("severity") == "info",
        nodes=nodes,
        ancestors=ancestors,
        parents={n for n, hops in ancestors.items() if hops == 1},
        services_here=topology.services_on(host) if host else set(),
    )


@dataclass
class Evidence:
    """One piece of evidence: its kind, its weight as counted, and why, in words."""

    kind: str
    weight: float
    why: str


def gap(at: datetime, inc: OpenIncident) -> timedelta:
    """How far ``at`` lies outside the incident's span (first to last event); zero inside it."""
    return max(inc.first_event_at - at, at - inc.last_event_at, timedelta(0))


def weigh(facts: Facts, at: datetime, inc: OpenIncident, topology: TopologyView, cfg: GroupingSettings) -> list[Evidence]:
    """The evidence that the event (``facts``, received ``at``) belongs to ``inc``; empty past the look-back."""
    apart = gap(at, inc)
    if apart > cfg.lookback:
        return []
    w = cfg.weights
    found: list[Evidence] = []
    if facts.fingerprint and facts.fingerprint in inc.fingerprints:
        found.append(Evidence("fingerprint", w.fingerprint, "the same problem was seen in it"))
    # In full within the window, at half weight up to the look-back.
    near = 1.0 if apart <= cfg.window else 0.5
    link = _topology(facts, inc, topology)
    if link:
        found.append(Evidence("topology", w.topology * near, link))
    tied = bool(link)
    if facts.service and facts.service in inc.services:
        found.append(Evidence("service", w.service * near, f"same service {facts.service}"))
        tied = True
    elif shared := sorted(facts.services_here & inc.services):
        found.append(Evidence("service", w.service * near, f"{facts.host} runs {shared[0]}"))
        tied = True
    elif facts.service and (on := sorted(facts.nodes & inc.hosts)):
        found.append(Evidence("service", w.service * near, f"{facts.service} runs on {on[0]}"))
        tied = True
    if not facts.routine and facts.template:
        best = _best_similarity(facts.template, inc)
        if best >= cfg.similarity:
            found.append(Evidence("template", w.template * best * near, f"message {best:.0%} like the incident's"))
            tied = True
    if facts.host and facts.host in inc.hosts:
        minutes = max(1, int(abs((at - inc.last_event_at).total_seconds()) // 60) + 1)
        found.append(Evidence("host", w.host * near, f"events occurred within {minutes} minutes on same host"))
    if not link and (common := sorted(facts.parents & inc.parents(topology))):
        found.append(Evidence("nearby", w.nearby * near, f"next to it behind {common[0]}"))
    if not tied and facts.service and inc.services:
        others = ", ".join(sorted(inc.services)[:3])
        found.append(Evidence("other_service", w.other_service, f"another service ({facts.service}; it has {others})"))
    return found


def total(evidence: list[Evidence]) -> float:
    return round(sum(e.weight for e in evidence), 2)


def explain(evidence: list[Evidence], score: float, join_score: float) -> str:
    """The decisive evidence's reason, then every piece's weight: ``"Web-1 depends on sw-1 (1 hop), which is
    failing. Evidence: topology +0.90, host +0.50 (events occurred within 2 minutes on same host) = 1.40
    ≥ 0.50"`` (the decisive piece is the heaviest; the others say why in brackets)."""
    decisive = max(evidence, key=lambda e: e.weight)
    parts = ", ".join(
        f"{e.kind} {e.weight:+.2f}" + ("" if e is decisive else f" ({e.why})")
        for e in sorted(evidence, key=lambda e: KINDS.index(e.kind))
    )
    return f"{decisive.why[0].upper()}{decisive.why[1:]}. Evidence: {parts} = {score:.2f} ≥ {join_score:.2f}"


def _topology(facts: Facts, inc: OpenIncident, topology: TopologyView) -> str | None:
    """Why the event and the incident are on one dependency path, or None."""
    failing = [(hops, node) for node, hops in facts.ancestors.items() if node in inc.hosts or node in inc.services]
    if failing:
        hops, node = min(failing)
        return f"{_name(facts)} depends on {node} ({hops} hop{'s' if hops > 1 else ''}), which is failing"
    # PERF: dependents() is cached per node by the graph; the incident's nodes are the smaller side.
    for node in sorted(facts.nodes):
        below = topology.dependents(node)
        if below and (hit := sorted((inc.hosts | inc.services) & below)):
            return f"{', '.join(hit[:3])} depend{'s' if len(hit) == 1 else ''} on {node}"
    return None


def _name(facts: Facts) -> str:
    return facts.host or facts.service or "the event"


def _best_similarity(tpl: tuple[str, ...], inc: OpenIncident) -> float:
    if tpl in inc.template_set():
        return 1.0
    best = 0.0
    n = len(tpl)
    for other in inc.templates:
        # PERF: Drain's similarity is at most the shorter length over the longer: skip hopeless ones.
        if min(n, len(other)) < 0.5 * max(n, len(other)):
            continue
        best = max(best, similarity(tpl, other))
    return best

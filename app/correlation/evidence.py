"""The evidence that an event belongs to an open incident, each kind weighed, and the score they add up to.

Separation is a decision like grouping: an event joins an incident only on positive evidence whose
weights add up to the join score (:attr:`GroupingSettings.join_score`). The kinds, strongest first:

- ``fingerprint``: the same problem (fingerprint, a resolution's suffix aside) was seen in the
  incident within the look-back;
- ``topology``: the event's node depends on a failing node of the incident, at any depth, or a
  failing node of the incident depends on the event's node (the event is their cause);
- ``service``: the same service (a host running the incident's service is a topology link);
- ``template``: the message matches one of the incident's message templates (similarity at least
  :attr:`GroupingSettings.similarity`; routine ``info`` messages never count);
- ``host``: the same host;
- ``nearby``: the event's node and a failing node of the incident hang off the same node (a common
  direct dependency) — supporting evidence only: nearby is not dependent;
- ``other_service`` (negative): the event names a service and the incident holds others, and no
  evidence ties them (no topology, service or template link): two problems, not one.

Evidence counts in full within the time window of the incident (its first to its last event);
beyond it, up to the look-back, only the same problem counts in full and the same host or service
at half weight, so "same host" alone joins only within the window, and a second problem of another
service on that host opens its own incident. A dependency counts in full within a third of the
window (effects follow their cause within minutes), at half weight within the window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from .templates import similarity, template

if TYPE_CHECKING:
    from ..config import Settings

#: The kinds of evidence, in the order a reason lists them.
KINDS = ("fingerprint", "topology", "service", "template", "host", "nearby", "other_service")


class TopologyView(Protocol):
    """What grouping asks of the topology (:class:`app.topology.graph.Graph` answers it)."""

    criticality: dict[str, str]
    resolutions: dict[str, set[str]]

    def __contains__(self, node: object) -> bool: ...

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


@dataclass(kw_only=True)
class GroupingSettings:
    """How far apart in time and how alike events may be to join one incident (``CORRELATION_*``)."""

    #: Evidence counts in full within this span of the incident's events, at half weight beyond.
    window: timedelta = timedelta(minutes=15)
    #: Nothing joins an incident whose events are all further away than this.
    lookback: timedelta = timedelta(hours=1)
    #: Least template similarity (0..1) that counts as evidence.
    similarity: float = 0.8
    #: Least score of the evidence for a join.
    join_score: float = 0.5
    weights: Weights = field(default_factory=Weights)
    #: A root problem that returns this many times within flap_window after its resolution is flapping.
    flap_changes: int = 3
    flap_window: timedelta = timedelta(minutes=30)

    @classmethod
    def from_settings(cls, settings: Settings) -> GroupingSettings:
        """The grouping the process's settings ask for."""
        return cls(
            window=timedelta(minutes=settings.correlation_window_minutes),
            lookback=timedelta(minutes=settings.correlation_lookback_minutes),
            similarity=settings.correlation_similarity,
            join_score=settings.correlation_join_score,
            weights=Weights(**settings.correlation_weights),
            flap_changes=settings.correlation_flap_changes,
            flap_window=timedelta(minutes=settings.correlation_flap_window_minutes),
        )


@dataclass
class OpenIncident:
    """What an event is matched against: an incident's nodes, messages and problems, and its span."""

    id: str
    hosts: set[str]
    services: set[str]
    templates: list[tuple[str, ...]]
    fingerprints: set[str]
    last_event_at: datetime
    root_host: str | None = None
    link_keys: set[str] = field(default_factory=set)
    first_event_at: datetime = None  # type: ignore[assignment]  # the last event's when not given
    status: str = "open"
    root_fingerprint: str | None = None
    #: Set when the correlator closed it (a resolution): only the return of its root's problem reopens it.
    closed_at: datetime | None = None
    #: An operator works it (acknowledged or assigned): it absorbs others but is never absorbed.
    worked: bool = False
    #: All its events are routine (``info``): its nodes are not failing.
    routine: bool = False

    def __post_init__(self) -> None:
        if self.first_event_at is None:
            self.first_event_at = self.last_event_at

    def template_set(self) -> frozenset[tuple[str, ...]]:
        # PERF: exact template matches are the common case; the set is rebuilt only when templates grew.
        cached = self.__dict__.get("_template_set")
        if cached is None or cached[0] != len(self.templates):
            cached = (len(self.templates), frozenset(self.templates))
            self.__dict__["_template_set"] = cached
        return cached[1]

    def parents(self, topology: TopologyView) -> set[str]:
        """The nodes the incident's hosts depend on directly (updated only when its hosts changed)."""
        # PERF: hosts are only ever added: only the new ones' parents are looked up (rebuilding for
        # every host added made placing an event cost as much as the incident's size).
        cached = self.__dict__.get("_parents")
        if cached is not None and len(cached[0]) == len(self.hosts) and cached[2] is topology:
            return cached[3]
        seen: set[str] = set()
        direct: set[str] = set()
        if cached is not None and cached[2] is topology and cached[0] <= self.hosts:
            seen, direct = cached[0], cached[1]
        for host in self.hosts - seen:
            direct.update(n for n, hops in topology.ancestors(host) if hops == 1)
        seen |= self.hosts
        cached = (seen, direct, topology, direct - self.hosts)
        self.__dict__["_parents"] = cached
        return cached[3]


@dataclass
class Facts:
    """What evidence is computed from, worked out once per event."""

    host: str | None
    service: str | None
    fingerprint: str
    template: tuple[str, ...]
    routine: bool
    #: The event's own node: its service when the topology declares it, else its host.
    nodes: set[str]
    #: Every node the event's nodes depend on -> hops.
    ancestors: dict[str, int]
    #: The nodes the event's host depends on directly.
    parents: set[str]


def facts_of(event: dict[str, Any], topology: TopologyView) -> Facts:
    """The event's :class:`Facts` (walks of the topology, cached by the graph)."""
    host, service = event.get("host"), event.get("service")
    declared = bool(service and service in topology)
    # The event's own node: its service when the topology declares it (a service's error on a host
    # is the service's problem, not the host's), else its host.
    own = service if declared else host
    nodes = {n for n in (own,) if n}
    ancestors: dict[str, int] = {}
    for up, hops in topology.ancestors(host) if host else ():
        ancestors.setdefault(up, hops)
    if declared and service:
        # What the service depends on but through its other hosts (a database, the database's hosts).
        elsewhere = topology.hosts_of(service) - {host}
        for up, hops in topology.ancestors(service):
            if up != host and up not in elsewhere and up not in ancestors and not _only_through(up, elsewhere, topology):
                ancestors[up] = hops
    ancestors.pop(own or "", None)
    return Facts(
        host=host,
        service=service,
        fingerprint=str(event.get("fingerprint") or "").removesuffix(":resolved"),
        template=template(str(event.get("title") or "")),
        routine=event.get("severity") == "info",
        nodes=nodes,
        ancestors=ancestors,
        parents={n for n, hops in topology.ancestors(host) if hops == 1} if host else set(),
    )


def _only_through(node: str, hosts: set[str], topology: TopologyView) -> bool:
    """Whether ``node`` is above one of ``hosts`` (so reached through a host the event is not on)."""
    return any(node == up for h in hosts for up, _ in topology.ancestors(h))


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
    """The evidence that the event (``facts``, received ``at``) belongs to ``inc``; empty past the look-back.

    A routine (``info``) event says little: neither its template nor the topology counts, and the
    same host counts at half. An incident of routine events only has no failing node: the topology
    never leads to it, and its host counts at half.
    """
    apart = gap(at, inc)
    if apart > cfg.lookback:
        return []
    w = cfg.weights
    found: list[Evidence] = []
    if facts.fingerprint and facts.fingerprint in inc.fingerprints:
        found.append(Evidence("fingerprint", w.fingerprint, "the same problem was seen in it"))
    # In full within the window, at half weight up to the look-back.
    within = apart <= cfg.window
    near = 1.0 if within else 0.5
    # Effects follow their cause within minutes: a dependency counts in full within a third of the
    # window, at half weight within it, and not at all beyond.
    causal = 1.0 if apart <= cfg.window / 3 else 0.5
    link = None if inc.routine or facts.routine or not within else _topology(facts, inc, topology)
    if link:
        found.append(Evidence("topology", w.topology * causal, link[1]))
    tied = bool(link)
    if facts.service and facts.service in inc.services:
        found.append(Evidence("service", w.service * near, f"same service {facts.service}"))
        tied = True
    if within and not facts.routine and facts.template:
        best = _best_similarity(facts.template, inc)
        if best >= cfg.similarity:
            found.append(Evidence("template", w.template * best, f"message {best:.0%} like the incident's"))
            tied = True
    if facts.host and facts.host in inc.hosts:
        minutes = max(1, int(abs((at - inc.last_event_at).total_seconds()) // 60) + 1)
        half = 0.5 if facts.routine or inc.routine else 1.0
        found.append(Evidence("host", w.host * near * half, f"events occurred within {minutes} minutes on same host"))
    if causal == 1.0 and not link and not facts.routine and not inc.routine and (common := sorted(facts.parents & inc.parents(topology))):
        found.append(Evidence("nearby", w.nearby, f"next to it behind {common[0]}"))
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


def _topology(facts: Facts, inc: OpenIncident, topology: TopologyView) -> tuple[str, str] | None:
    """``("below", why)`` when the event's node depends on a failing node of the incident, ``("above", why)``
    when a failing node of the incident depends on the event's node, else None."""
    failing = [(hops, node) for node, hops in facts.ancestors.items() if node in inc.hosts or node in inc.services]
    if failing:
        hops, node = min(failing)
        return "below", f"{_name(facts)} depends on {node} ({hops} hop{'s' if hops > 1 else ''}), which is failing"
    # PERF: dependents() is cached per node by the graph; the incident's nodes are the smaller side.
    for node in sorted(facts.nodes):
        below = topology.dependents(node)
        if below and (hit := sorted((inc.hosts & below) | (inc.services & below))):
            return "above", f"{', '.join(hit[:3])} depend{'s' if len(hit) == 1 else ''} on {node}"
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

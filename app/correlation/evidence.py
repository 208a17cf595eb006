"""The evidence that an event belongs to an open incident, each kind weighed, and the score they add up to.

Separation is a decision like grouping: an event joins an incident only on positive evidence whose
weights add up to the join score (:attr:`GroupingSettings.join_score`). Evidence is *pairwise*: it
ties the event to one event of the incident that shares something with it close enough in time,
each kind within its own window. The kinds, strongest first:

- ``fingerprint``: the same problem (fingerprint, a resolution's suffix aside), within the look-back;
- ``topology``: the event's node depends on the node of a failing event of the incident, at any
  depth, or that node depends on the event's node (the event is their cause), within the causal window.
  A network device (switch, router, firewall, load balancer) failing explains its dependents'
  *connectivity* symptoms only (down, unreachable, timeouts, refused connections: :func:`is_effect`):
  a link going down while a deploy fails or an alert storms on a host behind it is not their cause;
- ``service``: the same *named* service within the window. A service is named by the topology (a
  declared service or database) or by a monitoring source that says ``service`` (a webhook's
  ``service``, an alert's ``service``/``app`` label, PagerDuty's ``component``) — not by a syslog
  program name (kernel, sshd, cron) nor a scrape job, which many unrelated events share;
- ``template``: message templates at least :attr:`GroupingSettings.similarity` alike, within the
  template window (routine ``info`` messages never count);
- ``entity``: one message names the address the other comes from or names too (a client's
  "could not connect to 10.0.0.5" and the alert of 10.0.0.5; one attacker's address), within the entity
  window: a complaint and the failure it names come together;
- ``host``: the same host within the host window (the routine window when either is ``info``), between
  events of one *subject* (:func:`subject_of`): a host that cannot be reached (down, unreachable,
  rebooting) is the network's or the host's whole problem, an event naming something else (a
  certificate's name, an attacker's address) is about that thing; neither says anything about another
  problem that happens to be on the host at the time;
- ``other_service`` (negative): the same host, but the two name different services: two problems
  on one host, not one;
- ``nearby`` is kept for its weight's setting only: two nodes behind one switch are not dependent.

Because each kind ties two events, within a window of their own times, the incidents are the
connected groups of events that evidence ties: whichever order and batches the events come in,
the same events end up together (:mod:`.grouping` merges incidents an event ties together). An
incident keeps, per key an event can be tied by, the times its events had it
(:attr:`OpenIncident.keys`), so matching never reads events and an event is matched against the
incidents that share a key with it only (:class:`.index.Candidates`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from .subjects import NETWORK_KINDS, is_effect, mentions_of, subject_of
from .templates import similarity, template

if TYPE_CHECKING:
    from ..config import Settings

#: The kinds of evidence, in the order a reason lists them.
KINDS = ("fingerprint", "topology", "service", "template", "entity", "host", "nearby", "other_service")
#: Intervals kept per key of an incident (the most recent).
KEEP_INTERVALS = 24
#: Alert labels that name a service (a scrape ``job`` or ``container`` does not).
_SERVICE_LABELS = ("service", "app", "application")


class TopologyView(Protocol):
    """What grouping asks of the topology (:class:`app.topology.graph.Graph` answers it)."""

    criticality: dict[str, str]
    resolutions: dict[str, set[str]]

    def __contains__(self, node: object) -> bool: ...

    def ancestors(self, node: str) -> list[tuple[str, int]]: ...

    def kind_of(self, node: str) -> str | None: ...

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
    entity: float = 0.6
    host: float = 0.5
    nearby: float = 0.3
    other_service: float = -0.4


@dataclass(kw_only=True)
class GroupingSettings:
    """How far apart in time and how alike events may be to join one incident (``CORRELATION_*``)."""

    #: The same named service ties events this far apart.
    window: timedelta = timedelta(minutes=15)
    #: An address or name one names and the other names or is (a client's complaint and the server's alert).
    entity_window: timedelta = timedelta(minutes=5)
    #: The same problem (fingerprint) ties events this far apart; nothing ties events further apart.
    lookback: timedelta = timedelta(hours=1)
    #: A dependency (topology) ties events this far apart: effects follow their cause within minutes.
    causal_window: timedelta = timedelta(minutes=3)
    #: The same host ties events this far apart ...
    host_window: timedelta = timedelta(minutes=5)
    #: ... and this far when either is routine (``info``).
    routine_window: timedelta = timedelta(minutes=2)
    #: Alike messages tie events this far apart.
    template_window: timedelta = timedelta(minutes=8)
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
        minutes = {
            name: timedelta(minutes=getattr(settings, f"correlation_{name}_minutes"))
            for name in ("causal_window", "entity_window", "host_window", "routine_window", "template_window")
        }
        known = set(Weights.__dataclass_fields__)
        return cls(
            window=timedelta(minutes=settings.correlation_window_minutes),
            lookback=timedelta(minutes=settings.correlation_lookback_minutes),
            similarity=settings.correlation_similarity,
            join_score=settings.correlation_join_score,
            weights=Weights(**{k: v for k, v in settings.correlation_weights.items() if k in known}),
            flap_changes=settings.correlation_flap_changes,
            flap_window=timedelta(minutes=settings.correlation_flap_window_minutes),
            **minutes,
        )

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        self.__dict__.pop("_gaps", None)  # a window changed: work them out again

    def window_of(self, kind: str) -> float:
        """Seconds two events may lie apart for evidence of ``kind`` (a key's kind, see :func:`key_kind`)."""
        return float(getattr(self, _WINDOW_OF_KIND[kind]).total_seconds())

    def gaps(self) -> dict[str, float]:
        """Key prefix (see :func:`key_kind`) -> :meth:`window_of` its kind, and kind -> its window.

        PERF: worked out once (again when a setting changes), not per key an event leaves or is weighed by.
        """
        gaps: dict[str, float] | None = self.__dict__.get("_gaps")
        if gaps is None:
            gaps = {kind: self.window_of(kind) for kind in _WINDOW_OF_KIND}
            gaps.update({prefix: gaps[kind] for prefix, kind in _PREFIX_KIND.items()})
            self.__dict__["_gaps"] = gaps
        return gaps


#: Kind of evidence (see :func:`key_kind`) -> the :class:`GroupingSettings` window it is judged within.
_WINDOW_OF_KIND = {"fingerprint": "lookback", "topology": "causal_window", "service": "window", "entity": "entity_window",
                   "template": "template_window", "host": "host_window", "routine": "routine_window",
                   "link": "lookback"}  # fmt: skip


def key_kind(key: str) -> str:
    """The kind of a key an incident keeps (its prefix): see :func:`Facts.emits`."""
    return _PREFIX_KIND[key[0]]


#: Key prefix -> the kind of evidence (and window) it stands for.
_PREFIX_KIND = {"f": "fingerprint", "s": "service", "t": "template", "h": "host", "r": "routine", "n": "topology",
                "a": "topology", "v": "topology", "w": "topology", "x": "entity", "l": "link"}  # fmt: skip


@dataclass
class OpenIncident:
    """What an event is matched against: an incident's nodes, problems, keys and their times, and its span."""

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
    #: Key an event can be tied by -> the spans (epoch seconds ``[first, last]``) its events had it in.
    keys: dict[str, list[list[float]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.first_event_at is None:
            self.first_event_at = self.last_event_at

    def template_set(self) -> frozenset[tuple[str, ...]]:
        # PERF: the set is rebuilt only when templates grew.
        cached = self.__dict__.get("_template_set")
        if cached is None or cached[0] != len(self.templates):
            cached = (len(self.templates), frozenset(self.templates))
            self.__dict__["_template_set"] = cached
        return cached[1]

    def keep(self, key: str, ts: float, gap_s: float) -> None:
        """Remember that an event at ``ts`` had ``key`` (spans closer than ``gap_s`` are one)."""
        spans = self.keys.get(key)
        if spans is None:
            self._new_key(key, [[ts, ts]])
            return
        add_time(spans, ts, gap_s)

    def host_keys(self, host: str) -> list[str]:
        """The ``h``/``r`` keys of ``host`` (one per named service seen with it)."""
        return self._subjects().get(("h", host), [])

    def template_keys(self, tpl: str) -> list[str]:
        """The ``t`` keys of the template ``tpl`` (one per parent of the hosts it was seen on)."""
        return self._subjects().get(("t", tpl), [])

    def _subjects(self) -> dict[tuple[str, str], list[str]]:
        # PERF: a map of host (or template) -> its keys, built once and kept up to date by _new_key.
        by: dict[tuple[str, str], list[str]] | None = self.__dict__.get("_subjects_map")
        if by is None:
            by = {}
            for key in self.keys:
                if key[0] in "hrt":
                    by.setdefault(subject(key), []).append(key)
            self.__dict__["_subjects_map"] = by
        return by

    def _new_key(self, key: str, spans: list[list[float]]) -> None:
        self.keys[key] = spans
        by = self.__dict__.get("_subjects_map")
        if by is not None and key[0] in "hrt":
            by.setdefault(subject(key), []).append(key)

    def absorb_keys(self, other: OpenIncident, cfg: GroupingSettings) -> None:
        for key, spans in other.keys.items():
            mine = self.keys.get(key)
            if mine is None:
                self._new_key(key, [list(span) for span in spans])
                continue
            gap = cfg.window_of(key_kind(key))
            for first, last in spans:
                add_span(mine, first, last, gap)


def subject(key: str) -> tuple[str, str]:
    """What a host key (``h``/``r``: ``host|service``) or a template key (``t``: ``template@parent``) is about."""
    if key[0] == "t":
        return "t", key[2 : key.rindex("@")]
    return "h", key[2 : key.index("|")]


def add_time(spans: list[list[float]], ts: float, gap_s: float) -> None:
    """Add ``ts`` to sorted, disjoint ``spans``, joining those it brings within ``gap_s`` of each other."""
    last = spans[-1]
    if last[0] - gap_s <= ts <= last[1] + gap_s:  # PERF: events come mostly in order: the last span takes them
        last[0], last[1] = min(last[0], ts), max(last[1], ts)
        _join_back(spans, gap_s)
    elif ts > last[1]:
        spans.append([ts, ts])
    else:
        add_span(spans, ts, ts, gap_s)


def add_span(spans: list[list[float]], first: float, last: float, gap_s: float) -> None:
    """Add the span ``[first, last]`` to sorted, disjoint ``spans``, joining those closer than ``gap_s``."""
    spans.append([first, last])
    spans.sort()
    merged = [spans[0]]
    for span in spans[1:]:
        if span[0] - merged[-1][1] <= gap_s:
            merged[-1][1] = max(merged[-1][1], span[1])
        else:
            merged.append(span)
    spans[:] = merged


def _join_back(spans: list[list[float]], gap_s: float) -> None:
    while len(spans) > 1 and spans[-1][0] - spans[-2][1] <= gap_s:
        last = spans.pop()
        spans[-1][0], spans[-1][1] = min(spans[-1][0], last[0]), max(spans[-1][1], last[1])


def distance(spans: list[list[float]], ts: float) -> float:
    """Seconds from ``ts`` to the nearest time in ``spans``."""
    best = float("inf")
    for first, last in spans:
        if first <= ts <= last:
            return 0.0
        best = min(best, first - ts if ts < first else ts - last)
    return best


@dataclass
class Facts:
    """What evidence is computed from, worked out once per event (before the correlator's lock)."""

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
    #: The service the event names as a service (see the module's doc), or None.
    named_service: str | None = None
    #: Addresses the message names, other than its own host.
    mentions: set[str] = field(default_factory=set)
    #: The event says a problem ended (:func:`resolves`).
    recovery: bool = False
    #: What the event is about on its host (:func:`subject_of`): ``""``, ``"down"`` or ``"names <what>"``.
    subject: str = ""
    #: Ancestors that are network devices, and the event is no connectivity symptom (:func:`is_effect`):
    #: their failure does not explain it, so it is tied to them by no ``topology`` evidence.
    unexplained: set[str] = field(default_factory=set)
    #: The keys the event leaves on its incident (see :meth:`emits`).
    keys: list[str] = field(default_factory=list)
    #: The (key, kind) pairs looked up for its evidence (:func:`probes`), when worked out already.
    lookups: list[tuple[str, str]] | None = None

    def probed(self) -> list[tuple[str, str]]:
        """:func:`probes` of these facts, worked out once (PERF: both finding and weighing incidents use them)."""
        if self.lookups is None:
            self.lookups = probes(self)
        return self.lookups

    def emits(self) -> list[str]:
        """The keys an event leaves on its incident, by prefix: ``f`` fingerprint, ``s`` named service,
        ``t`` template (``template@parent``, one per direct parent of its host, none known: ``template@``),
        ``h``/``r`` host (``host|named service|subject``; ``r`` also for routine events), ``n`` own node and ``a``
        ancestor (failing nodes only), ``v`` own node and ``w`` ancestor of a recovery, ``x`` a name mentioned."""
        keys = [f"f:{self.fingerprint}"] if self.fingerprint else []
        if self.named_service:
            keys.append(f"s:{self.named_service}")
        if self.host:
            tag = f"{self.host}|{self.named_service or ''}|{self.subject}"
            keys.append(f"r:{tag}")
            if not self.routine:
                keys.append(f"h:{tag}")
        if self.recovery:
            keys += [f"v:{n}" for n in sorted(self.nodes)]
            keys += [f"w:{n}" for n in sorted(self.ancestors)]
        if not self.routine:
            if self.template:
                tpl = " ".join(self.template)
                keys += [f"t:{tpl}@{p}" for p in sorted(self.parents)] or [f"t:{tpl}@"]
            keys += [f"n:{n}" for n in sorted(self.nodes)]
            keys += [f"a:{n}" for n in sorted(self.ancestors) if n not in self.unexplained]
            keys += [f"x:{m}" for m in sorted(self.mentions)]
        return keys


def resolves(event: dict[str, Any], topology: TopologyView | None = None) -> bool:
    """Whether ``event`` says a problem ended: a resolution (Alertmanager ``resolved``, a PagerDuty resolve),
    a linkUp (or the syslog line of an interface coming up), or a type an operator declared the resolution of another."""
    meta = event.get("metadata") or {}
    declared = topology is not None and event.get("event_type") in topology.resolutions
    link_up = meta.get("trap_name") == "linkUp" or event.get("event_type") == "connectivity_restored"
    return bool(meta.get("resolution")) or link_up or declared


def named_service(event: dict[str, Any], topology: TopologyView) -> str | None:
    """The event's service when it is one (declared, or named as a service by its source), else None."""
    service = event.get("service")
    if not service:
        return None
    if service in topology:
        return str(service)
    meta = event.get("metadata") or {}
    if "facility" in meta or "appname" in meta:
        return None  # a syslog program name
    labels = meta.get("labels")
    if isinstance(labels, dict):
        return str(service) if any(labels.get(k) == service for k in _SERVICE_LABELS) else None
    return str(service)


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
            if (
                up != host
                and up not in elsewhere
                and up not in ancestors
                and not _only_through(up, elsewhere, topology)
            ):
                ancestors[up] = hops
    ancestors.pop(own or "", None)
    title = str(event.get("title") or "")
    mentions = mentions_of(event, title)
    about = subject_of(title, mentions)
    facts = Facts(
        host=host,
        service=service,
        fingerprint=str(event.get("fingerprint") or "").removesuffix(":resolved"),
        template=template(title),
        routine=event.get("severity") == "info",
        nodes=nodes,
        ancestors=ancestors,
        parents={n for n, hops in topology.ancestors(host) if hops == 1} if host else set(),
        named_service=named_service(event, topology),
        mentions=mentions,
        recovery=resolves(event, topology),
        subject=about,
        unexplained=set()
        if is_effect(title, about)
        else {n for n in ancestors if topology.kind_of(n) in NETWORK_KINDS},
    )
    facts.keys = facts.emits()
    facts.lookups = probes(facts)
    return facts


def _only_through(node: str, hosts: set[str], topology: TopologyView) -> bool:
    """Whether ``node`` is above one of ``hosts`` (so reached through a host the event is not on)."""
    return any(node == up for h in hosts for up, _ in topology.ancestors(h))


def probes(facts: Facts) -> list[tuple[str, str]]:
    """(key, kind) pairs to look up in incidents for the event's evidence (templates aside: they are alike, not equal)."""
    found: list[tuple[str, str]] = []
    if facts.fingerprint:
        found.append((f"f:{facts.fingerprint}", "fingerprint"))
    if facts.named_service:
        found.append((f"s:{facts.named_service}", "service"))
    if facts.recovery:
        found += [(f"v:{n}", "recovered_below") for n in sorted(facts.ancestors)]
        found += [(f"w:{n}", "recovered_above") for n in sorted(facts.nodes)]
    if not facts.routine:
        # Below a failing node (an ancestor is another event's own node), or above one (the event's
        # own node is an ancestor of another event's node).
        found += [(f"n:{n}", "below") for n in sorted(facts.ancestors) if n not in facts.unexplained]
        found += [(f"a:{n}", "above") for n in sorted(facts.nodes)]
        found += [(f"x:{m}", "entity") for m in sorted(facts.mentions)]
        if facts.host:
            # Messages naming this host, by address or by name (either way round: see :func:`weigh`).
            found.append((f"x:{facts.host}", "entity"))
    return found


@dataclass
class Evidence:
    """One piece of evidence: its kind, its weight as counted, and why, in words."""

    kind: str
    weight: float
    why: str


def weigh(
    facts: Facts, at: datetime, inc: OpenIncident, topology: TopologyView, cfg: GroupingSettings
) -> list[Evidence]:
    """The evidence that the event (``facts``, received ``at``) belongs to ``inc``: each kind once, at its best."""
    ts = at.timestamp()
    w = cfg.weights
    found: dict[str, Evidence] = {}
    gaps = cfg.gaps()

    def near(key: str, kind: str) -> bool:
        spans = inc.keys.get(key)
        return spans is not None and distance(spans, ts) <= gaps[kind]

    for key, kind in facts.probed():
        if kind in ("below", "above", "recovered_below", "recovered_above"):
            if "topology" not in found and near(key, "topology"):
                node = key[2:]
                hops = facts.ancestors.get(node, 0)
                why = {"below": f"{_name(facts)} depends on {node} ({hops} hop{'s' if hops > 1 else ''}), which is failing",
                       "above": f"its failing dependents depend on {node}",
                       "recovered_below": f"{_name(facts)} depends on {node}, which recovered",
                       "recovered_above": f"its dependents recovered with {node}"}[kind]  # fmt: skip
                found["topology"] = Evidence("topology", w.topology, why)
        elif kind not in found and near(key, kind):
            why = {"fingerprint": "the same problem was seen in it", "service": f"same service {facts.named_service}",
                   "entity": f"names {key[2:]}, as the incident does"}[kind]  # fmt: skip
            found[kind] = Evidence(kind, getattr(w, kind), why)
    for address in sorted(facts.mentions) if not facts.routine and "entity" not in found else ():
        # The message names a host the incident has failing events on.
        if any(key[0] == "h" and near(key, "entity") for key in inc.host_keys(address)):
            found["entity"] = Evidence("entity", w.entity, f"names {address}, a host of the incident")
            break
    if not facts.routine and facts.template:
        best = _best_similarity(facts.template, inc, facts, ts, cfg)
        if best >= cfg.similarity:
            found["template"] = Evidence("template", w.template * best, f"message {best:.0%} like the incident's")
    if facts.host:
        _host(facts, ts, inc, cfg, found)
    return sorted(found.values(), key=lambda e: KINDS.index(e.kind))


def _host(facts: Facts, ts: float, inc: OpenIncident, cfg: GroupingSettings, found: dict[str, Evidence]) -> None:
    """The same host (within the host window, the routine one for routine events), about the same subject
    (:func:`subject_of`), unless the services differ."""
    if not facts.host:
        return
    w = cfg.weights
    prefix = f"{facts.host}|"
    mine = facts.named_service or ""
    other: str | None = None
    for key in inc.host_keys(facts.host):
        if key[0] == "h" and facts.routine:
            continue
        theirs, sep, about = key[2 + len(prefix) :].rpartition("|")
        if not sep:  # a key kept before subjects were (``host|service``)
            theirs, about = about, facts.subject
        if about != facts.subject:
            continue
        spans = inc.keys[key]
        kind = "host" if key[0] == "h" and not facts.routine else "routine"
        apart = distance(spans, ts)
        if apart > cfg.gaps()[kind]:
            continue
        if mine and theirs and theirs != mine:
            other = theirs
            continue
        minutes = max(1, int(apart // 60) + 1)
        found["host"] = Evidence("host", w.host, f"events occurred within {minutes} minutes on same host")
        return
    if other is not None and not set(found) - {"other_service"}:
        found["host"] = Evidence("host", w.host, "events occurred on same host")
        found["other_service"] = Evidence("other_service", w.other_service, f"another service ({mine}; it has {other})")


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


def _name(facts: Facts) -> str:
    return facts.host or facts.service or "the event"


def _best_similarity(tpl: tuple[str, ...], inc: OpenIncident, facts: Facts, ts: float, cfg: GroupingSettings) -> float:
    """The best similarity of ``tpl`` to a template the incident had within the template window, on a host
    behind the same node as the event's (or either's unknown): two hosts known to hang off different
    nodes raising the same alert at once are two problems."""
    window = cfg.window_of("template")
    best = 0.0
    n = len(tpl)
    for other in (tpl, *inc.templates):
        # PERF: Drain compares lines of one length only.
        if len(other) != n or best >= 1.0:
            continue
        score = 1.0 if other == tpl else similarity(tpl, other)
        if score > best and score >= cfg.similarity and _template_near(" ".join(other), inc, facts, ts, window):
            best = score
    return best


def _template_near(tpl: str, inc: OpenIncident, facts: Facts, ts: float, window: float) -> bool:
    """Whether the incident had ``tpl`` within ``window`` of ``ts`` behind no known node, or behind one of the
    event's parents (any, when it has none)."""
    if facts.parents:
        # PERF: the keys looked up, not each of the template's keys (one per parent) parsed.
        # (A key's parent is what follows its last "@": a parent holding one is never a key's.)
        keys: list[str] = [key for p in ("", *facts.parents) if "@" not in p and (key := f"t:{tpl}@{p}") in inc.keys]
    else:
        keys = inc.template_keys(tpl)
    return any(distance(inc.keys[key], ts) <= window for key in keys)

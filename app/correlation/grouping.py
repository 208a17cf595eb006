"""Which open incident an event joins, and why — or that it opens one, closes one, or reopens one.

An event joins an incident only on positive evidence (:mod:`.evidence`) whose weights add up to
the join score; it opens an incident of its own otherwise. When it has that evidence for several
incidents that started together (within :attr:`GroupingSettings.merge_window` of each other), they
are one problem seen in parts (effects on hosts behind a switch that arrived before the switch's
own trap): they are merged into the oldest, so the partition does not depend on which of the parts
the events reached first. Incidents that started further apart are two problems the event touches
both of (a host of a maintenance underway going down during an outage): the event joins one, and
says so (see :func:`_together`). The root of an incident is its deepest failing ancestor (the node
the others depend on), whichever event arrived first, and names the incident.

Kinds (``events.event_correlations.correlation_type``), by the evidence that weighed most:
``causal`` (topology), ``pattern_based`` (fingerprint, template), ``service_based``,
``time_based`` (same host within the window), ``host_based`` (same host, later);
``resolution``: a resolution event (linkUp or the device's syslog line of the interface coming up,
Alertmanager ``resolved``, an operator-declared pair)
of the incident's root closes the whole incident, of another of its problems only joins it;
``recurrence``: the root's problem returned within the flap window after its incident was closed:
the incident is reopened (and marked ``flapping`` when that happened often, see :mod:`.store`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..topology.graph import Graph as Topology
from .candidates import Candidates
from .evidence import (
    SCOPE,
    Evidence,
    Facts,
    GroupingSettings,
    OpenIncident,
    TopologyView,
    Weights,
    explain,
    facts_of,
    service_wide,
    total,
    weigh,
)
from .subjects import LINK_EVENT_TYPES, link_key

__all__ = [
    "Candidates",
    "GroupingSettings",
    "OpenIncident",
    "Placement",
    "Topology",
    "Weights",
    "LINK_EVENT_TYPES",
    "choose",
    "link_key",
    "severity_score",
]

SEVERITY_WEIGHT = {"critical": 1.0, "high": 0.75, "medium": 0.5, "low": 0.25, "info": 0.1}
CRITICALITY_WEIGHT = {"critical": 1.0, "high": 0.75, "medium": 0.5, "low": 0.25}
#: Correlation type of a join, by the kind of evidence that weighed most in it.
TYPE_OF_EVIDENCE = {"fingerprint": "pattern_based", "topology": "causal", "service": "service_based",
                    "template": "pattern_based", "host": "time_based", "nearby": "causal", "entity": "pattern_based"}  # fmt: skip


@dataclass
class Placement:
    """Where :func:`choose` puts an event: the incident it joins (or none), with the kind, score and reason."""

    kind: str  # the correlation type, or "new" / "none"
    incident: OpenIncident | None
    score: float
    reason: str
    #: Other incidents the event has the evidence to join: merged into ``incident``.
    also: list[OpenIncident] = field(default_factory=list)
    #: The event is the incident's new root (a failing node the incident's nodes depend on).
    roots: bool = False
    #: A resolution of the incident's root: the incident closes.
    closes: bool = False
    #: The return of a closed incident's root problem: the incident reopens.
    reopens: bool = False
    evidence: list[Evidence] = field(default_factory=list)


def configured() -> GroupingSettings:
    """The grouping this process's settings ask for (the defaults before :func:`app.runtime.bootstrap`)."""
    from ..config import get_settings

    try:
        return GroupingSettings.from_settings(get_settings())
    except RuntimeError:
        return GroupingSettings()


def link_keys_of(event: dict[str, Any]) -> list[str]:
    """:func:`link_key`, and the ``device#ifIndex`` key incidents kept before interfaces were named."""
    keys = [key] if (key := link_key(event)) is not None else []
    meta = event.get("metadata") or {}
    if keys and meta.get("trap_name") and meta.get("ifDescr") and meta.get("ifIndex") is not None:
        keys.append(f"{event.get('host')}#{meta['ifIndex']}")
    return keys


def problem_key(host: str | None, event_type: str) -> str:
    """Key of a problem an operator-declared resolution type closes (same host, problem type)."""
    return f"{host}|{event_type}"


def problem_fingerprint(event: dict[str, Any]) -> str:
    return str(event.get("fingerprint") or "").removesuffix(":resolved")


def choose(
    event: dict[str, Any],
    at: datetime,
    incidents: Candidates | list[OpenIncident],
    topology: TopologyView,
    cfg: GroupingSettings,
    facts: Facts | None = None,
) -> Placement:
    """Place one event (received ``at``) against the incidents the correlator holds, most recent first.

    ``incidents`` holds the live ones and those the correlator closed within the flap window
    (``closed_at`` set): only the return of their root's problem reopens one, and a routine event
    tied to one (a resolved alert, a device's "changed state to up") joins it without reopening it.
    ``facts`` are the event's (:func:`.evidence.facts_of`), when worked out already.
    """
    index = incidents if isinstance(incidents, Candidates) else Candidates(incidents, similarity_floor=cfg.similarity)
    facts = facts or facts_of(event, topology)
    recovery = facts.recovery
    if recovery:
        resolution = _resolution(event, index, topology)
        if resolution.kind != "none":
            return resolution
    else:
        returned = _recurrence(event, at, index, cfg)
        if returned is not None:
            return returned
    joinable: list[tuple[OpenIncident, list[Evidence], float]] = []
    trailing: list[tuple[OpenIncident, list[Evidence], float]] = []
    for inc in index.near(facts):
        if inc.closed_at is not None and not facts.routine:
            continue
        found = weigh(facts, at, inc, topology, cfg)
        score = total(found)
        if not found or score < cfg.join_score:
            continue
        if inc.closed_at is not None:
            trailing.append((inc, found, score))
        else:
            joinable.append((inc, found, score))
    if not facts.routine and any(e.planned for _, found, _ in joinable for e in found):
        # The host announced its reboot, then went down: that reboot explains it, whatever else it looks like
        # (the same alert on hosts of an outage under way); it joins the reboot's incident and merges no other.
        joinable = [j for j in joinable if any(e.planned for e in j[1])]
    joinable = _without_bystanders(joinable, facts)
    if facts.routine and (joinable or trailing):
        # A routine message (a resolution, a device's "changed state to up") joins the incident its evidence
        # is strongest for, open or closed, and merges none: it is no sign that two problems are one.
        best = max(score for _, _, score in (*joinable, *trailing))
        joinable = [j for j in joinable if j[2] == best]
        trailing = [t for t in trailing if t[2] == best][:1] if not joinable else []
        # Of those, the one holding its host's problem nearest in time: a resolution ends the problem under way on its
        # host, not one its host had in an earlier incident (a switch's hosts cut off twice within the hour).
        joinable = sorted(joinable, key=_nearest_problem)[:1]
    if not joinable and trailing:
        inc, found, score = trailing[0]
        reason = explain(found, score, cfg.join_score) + ": it follows the incident's resolution, which stays closed"
        return Placement(_kind(found, cfg), inc, score, reason, evidence=found)
    if not joinable and recovery:
        return Placement("none", None, 0.0, "a resolution with no open problem")
    if not joinable:
        return Placement(
            "new", None, 1.0, "no open incident relates to this event (no evidence reached the join score)"
        )
    # The oldest incident of those merged takes the event (and the others), so the outcome does not depend
    # on which part of a problem formed first; an incident operators work is never absorbed into another.
    joinable.sort(key=lambda j: (not j[0].worked, j[0].first_event_at, j[0].id))
    inc, found, score, also, apart = _together(joinable, cfg)
    reason = explain(found, score, cfg.join_score)
    if also:
        reason += f". It also relates to {_count(also)}, merged into this one"
    if apart:
        minutes = f"{cfg.merge_window.total_seconds() / 60:g}"
        reason += (f". It also relates to {_count(apart)}, not merged: "
                   f"{'they' if len(apart) > 1 else 'it'} started more than {minutes} minutes apart from this one")  # fmt: skip
    group = [inc, *also]
    # PERF: set operations that walk the smaller side, not a copy of every node of the group per event.
    roots = bool(
        not facts.routine
        and facts.nodes
        and not any(node in i.hosts or node in i.services for node in facts.ancestors for i in group)
        # Another event of the root's own node (the database's later lines on its other host) is no deeper cause:
        # the first one that rooted the incident names it.
        and not any(i.root_host == n or i.root_host in topology.hosts_of(n) for n in facts.nodes for i in group)
        and any(
            not (i.hosts.isdisjoint(below) and i.services.isdisjoint(below))
            for n in facts.nodes
            if (below := topology.dependents(n))
            for i in group
        )
    )
    return Placement(_kind(found, cfg), inc, score, reason, also=also, roots=roots, evidence=found)


#: Evidence an event has for an incident less than this below its best is nearly as good (see :func:`_together`).
CLOSE_SCORE = 0.5

Joinable = tuple[OpenIncident, list[Evidence], float]


def _without_bystanders(joinable: list[Joinable], facts: Facts) -> list[Joinable]:
    """``joinable`` less the incidents a problem of a named service on a host is tied to by its host alone, when it is
    tied by its service to an incident holding that service's problems on other hosts: the service fails as a whole
    (a release's bug on each of its hosts), and a problem of the host naming no service (the kernel's conntrack table
    full, a queue's depth) is no part of it (the mirror of :func:`.evidence.service_wide`) — unless the service's
    own program said it there (its exceptions in the host's syslog, which name no service but are the release's), or
    the host's incident holds routine messages only (a replica's promotion lines, part of its cluster's failover).
    PERF: walks the keys of such incidents only."""
    service, host = facts.named_service, facts.host
    if facts.routine or not service or not host or len(joinable) < 2:
        return joinable
    wide = any(
        any(e.kind == "service" for e in found) and service_wide(inc, service, host) for inc, found, _ in joinable
    )
    if not wide:
        return joinable
    program = f"{SCOPE}{facts.program()}"
    return [
        j
        for j in joinable
        if j[0].routine
        or any(e.kind != "host" for e in j[1])
        or any(k[0] == "t" and k.endswith(program) for k in j[0].keys)
    ]


def _together(
    joinable: list[Joinable], cfg: GroupingSettings
) -> tuple[OpenIncident, list[Evidence], float, list[OpenIncident], list[OpenIncident]]:
    """The incident an event joins, with its evidence and score; the incidents merged into it; and those the event
    relates to that stay apart. ``joinable`` (incident, evidence, score) is sorted: worked first, then oldest.

    Evidence an event has for two incidents says it belongs with each, not that they are one problem: a
    host of a maintenance rebooting during an outage has the host's evidence for the maintenance and the
    outage's "has been down" message, a database's "PostgreSQL is down on rigel-5" names a host of a
    network outage. What decides is the two incidents' own relation: the parts of one problem start
    together (effects before their cause's trap, one deploy's failures on several hosts, each part within
    minutes of the others), two problems an event happens to touch started apart (the maintenance a
    quarter of an hour before, the failover an hour ago that the same fingerprint recalls). So incidents
    that started within ``merge_window`` of each other are merged; the others stay apart.

    The event joins, of the incidents its evidence is nearly the best for (less than :data:`CLOSE_SCORE` below),
    the one that started last — it is news of the problem under way, not of the older one it recalls —
    with the incidents that started within ``merge_window`` of that one; the oldest of them takes it.
    Other relations between the incidents (a topology path between their nodes, a service, fingerprint
    or template in common) and strong evidence for both were tried as reasons to merge too: each let
    false merges back in (a switch's trap explains a failover's clients as well as the outage's hosts;
    three failovers of one cluster share their fingerprint) and lowered the F1 on the tuning seeds.
    """
    if len(joinable) == 1:
        inc, found, score = joinable[0]
        return inc, found, score, [], []
    best = max(score for _, _, score in joinable)
    near = [j for j in joinable if round(best - j[2], 2) < CLOSE_SCORE]
    # max() keeps the first of equals: ``joinable``'s order decides ties, whatever order the events came in.
    anchor = max(near, key=lambda j: (j[0].first_event_at, j[2]))
    window = cfg.merge_window
    group = [j for j in joinable if j is anchor or abs(j[0].first_event_at - anchor[0].first_event_at) <= window]
    inc, found, score = group[0]
    also = [other for other, _, _ in group[1:] if not other.worked]
    apart = [other for other, _, _ in joinable if all(other is not g[0] for g in group)]
    return inc, found, score, also, apart


def _nearest_problem(joinable: Joinable) -> tuple[bool, float, datetime, str]:
    """Order of the incidents a routine event is tied to equally: worked first, then the one whose problem of the
    event's host its ``host`` evidence ties it to is nearest in time, then the oldest."""
    inc, found, _ = joinable
    apart = min((e.apart_s for e in found if e.kind == "host"), default=float("inf"))
    return not inc.worked, apart, inc.first_event_at, inc.id


def _count(incidents: list[OpenIncident]) -> str:
    return f"{len(incidents)} other incident{'s' if len(incidents) > 1 else ''}"


def _kind(found: list[Evidence], cfg: GroupingSettings) -> str:
    decisive = max(found, key=lambda e: e.weight)
    kind = TYPE_OF_EVIDENCE.get(decisive.kind, "time_based")
    if kind == "time_based" and decisive.weight < cfg.weights.host:
        kind = "host_based"
    return kind


def resolution_keys(event: dict[str, Any], topology: TopologyView) -> list[str]:
    """The keys (``f:`` fingerprint, ``l:`` interface or problem) under which a resolution finds its problems."""
    keys = [f"f:{fp}"] if (fp := problem_fingerprint(event)) else []
    keys += [f"l:{key}" for key in link_keys_of(event)]
    host = event.get("host")
    keys += [f"l:{problem_key(host, p)}" for p in sorted(topology.resolutions.get(event.get("event_type") or "", ()))]
    return keys


def _resolves_root(event: dict[str, Any], inc: OpenIncident, topology: TopologyView) -> bool | None:
    """Whether ``event`` resolves the root problem of ``inc`` (True), another of its problems (False), or none (None)."""
    fp, host = problem_fingerprint(event), event.get("host")
    key = next((k for k in link_keys_of(event) if k in inc.link_keys), None)
    declared = {problem_key(host, p) for p in topology.resolutions.get(event.get("event_type") or "", ())}
    if not (key or (fp and fp in inc.fingerprints) or (declared & inc.link_keys)):
        return None
    if inc.root_host is None and inc.root_fingerprint is None:
        return True  # an incident from before roots were kept: any of its problems' resolution closes it
    if fp and fp == inc.root_fingerprint:
        return True
    return bool(host and host == inc.root_host and (key or (declared & inc.link_keys)))


def _resolution(event: dict[str, Any], index: Candidates, topology: TopologyView) -> Placement:
    title = event.get("title")
    partial: OpenIncident | None = None
    after: OpenIncident | None = None
    for inc in index.linked(resolution_keys(event, topology)):
        root = _resolves_root(event, inc, topology)
        if root is None:
            continue
        if inc.closed_at is not None:
            after = after or inc
            continue
        if not root:
            partial = partial or inc
            continue
        if inc.status == "flapping":
            return Placement("resolution", inc, 1.0, f"{title} resolves the incident's cause, but it is flapping: "
                             "it stays flapping until an operator resolves it or it stays quiet")  # fmt: skip
        return Placement("resolution", inc, 1.0, f"{title} resolves the incident's cause", closes=True)
    if partial is not None:
        return Placement("resolution", partial, 1.0, f"{title} resolves one of the incident's problems, not its cause "
                         f"({partial.root_host or 'its root'}): it stays open")  # fmt: skip
    if after is not None:
        return Placement("resolution", after, 1.0, f"{title} resolves one of the incident's problems, after its cause "
                         "was resolved: it stays closed")  # fmt: skip
    return Placement("none", None, 0.0, "a resolution with no open problem")


def _recurrence(event: dict[str, Any], at: datetime, index: Candidates, cfg: GroupingSettings) -> Placement | None:
    fp, host, links = problem_fingerprint(event), event.get("host"), link_keys_of(event)
    keys = ([f"f:{fp}"] if fp else []) + [f"l:{key}" for key in links]
    for inc in index.linked(keys):
        if inc.closed_at is None or at - inc.closed_at > cfg.flap_window or at < inc.closed_at:
            continue
        same = (fp and fp == inc.root_fingerprint) or (host == inc.root_host and not inc.link_keys.isdisjoint(links))
        if same:
            minutes = max(1, math.ceil((at - inc.closed_at).total_seconds() / 60))
            return Placement("recurrence", inc, 1.0, f"{event.get('title')}: the incident's cause returned "
                             f"{minutes} minutes after its resolution", reopens=True)  # fmt: skip
    return None


def severity_score(severities: list[str], size: int, criticality: str | None) -> float:
    """0..1 from the worst severity, the incident's size and the asset's criticality."""
    worst = max((SEVERITY_WEIGHT.get(s, 0.1) for s in severities), default=0.1)
    size_part = min(1.0, math.log10(1 + size) / 2)
    crit = CRITICALITY_WEIGHT.get(criticality or "medium", 0.5)
    return round(min(1.0, 0.6 * worst + 0.2 * size_part + 0.2 * crit), 2)

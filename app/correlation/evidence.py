"""The evidence that an event belongs to an open incident, each kind weighed, and the score they add up to.

Separation is a decision like grouping: an event joins an incident only on positive evidence whose
weights add up to the join score (:attr:`GroupingSettings.join_score`). Evidence is *pairwise*: it
ties the event to one event of the incident that shares something with it close enough in time,
each kind within its own window. The kinds, strongest first:

- ``fingerprint``: the same problem (fingerprint, a resolution's suffix aside), within the look-back;
- ``topology``: the event's node depends on the node of a failing event of the incident, at any
  depth, or that node depends on the event's node (the event is their cause), within the causal window.
  A network device (switch, router, firewall, load balancer) failing explains its dependents'
  *connectivity* symptoms only (down, unreachable, timeouts, but not a refused connection, which what it
  tried to reach answered, nor a host announcing its own reboot: :func:`.subjects.is_effect`):
  a link going down while a deploy fails or an alert storms on a host behind it is not their cause. A failing
  database, and what it runs on or is reached through (its hosts, their switches), explains only what its
  dependents say about reaching it (timeouts, refused connections).
  Where no topology places a host, a device's interface going down and the host going down or unreachable
  within the causal window are tied too (``k`` keys, :attr:`.facts.Facts.undeclared_cut`; a host's own exporter
  said down, ``job="node"``, is the host), unless the hosts went down as they announced (a maintenance's reboots);
- ``service``: the same *named* service within the window. A service is named by the topology (a
  declared service or database) or by a monitoring source that says ``service`` (a webhook's
  ``service``, an alert's ``service``/``app`` label, PagerDuty's ``component``) — not by a syslog
  program name (kernel, sshd, cron) nor a scrape job, which many unrelated events share. A message
  naming a thing (the database host a client cannot reach, a certificate) is about that thing: the
  service ties it only to messages naming the same (:meth:`.facts.Facts.service_key`);
- ``template``: message templates at least :attr:`GroupingSettings.similarity` alike, within the
  template window (routine ``info`` messages never count), sent by the same program when both name
  one (the same words from two services' releases are two problems: :func:`.facts.in_scope`), and not about
  addresses the incident does not name (two attackers: :func:`_about_other_things`);
- ``entity``: one message names the address the other comes from or names too (a client's
  "could not connect to 10.0.0.5" and the alert of 10.0.0.5; one attacker's address), within the entity
  window: a complaint and the failure it names come together — but a refused connection (the host it names
  answered) and that host found unreachable are two problems (``y`` and ``u`` keys);
- ``host``: the same host within the host window (the routine window when either is ``info``), between
  events of one *subject* (:func:`subject_of`): a host that cannot be reached (down, unreachable,
  rebooting) is the network's or the host's whole problem, an event naming something else (a
  certificate's name, an attacker's address) is about that thing, an interface going down or up is
  about that interface (a port flapping is not the device's uplink going down), a host announcing its reboot
  explains its being found down after it (:attr:`Evidence.planned`), not before, nor once the host came back (its
  down alert resolved: its going down again is news); none says anything
  about another problem that happens to be on the host at the time, nor does a message naming no service about
  a service's problem on several hosts (a release failing across them: :func:`service_wide`);
- ``other_service`` (negative): the same host, but the two name different services: two problems
  on one host, not one;
- ``nearby`` is kept for its weight's setting only: two nodes behind one switch are not dependent.

What an event's evidence is computed from (its :class:`.facts.Facts`) lives in :mod:`.facts`, the
windows and weights in :mod:`.windows`; this module weighs an event against an incident.

Because each kind ties two events, within a window of their own times, the incidents are the
connected groups of events that evidence ties: whichever order and batches the events come in,
the same events end up together (:mod:`.grouping` merges incidents an event ties together). An
incident keeps, per key an event can be tied by, the times its events had it
(:attr:`OpenIncident.keys`), so matching never reads events and an event is matched against the
incidents that share a key with it only (:class:`.index.Candidates`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from .facts import SCOPE, Facts, TopologyView, facts_of, in_scope, named_service, probes, resolves
from .subjects import CUT_OFF, PLANNED, is_address, one_problem
from .templates import similarity
from .windows import _PREFIX_KIND, _WINDOW_OF_KIND, KINDS, GroupingSettings, Weights, key_kind

__all__ = [
    "KINDS",
    "SCOPE",
    "_PREFIX_KIND",
    "_WINDOW_OF_KIND",
    "Evidence",
    "Facts",
    "GroupingSettings",
    "OpenIncident",
    "TopologyView",
    "Weights",
    "explain",
    "facts_of",
    "in_scope",
    "key_kind",
    "named_service",
    "probes",
    "resolves",
    "service_wide",
    "subject",
    "total",
    "weigh",
]

#: Intervals kept per key of an incident (the most recent).
KEEP_INTERVALS = 24


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
class Evidence:
    """One piece of evidence: its kind, its weight as counted, and why, in words."""

    kind: str
    weight: float
    why: str
    #: The host's, found down after it announced its reboot: the reboot explains it (see :func:`.grouping.choose`).
    planned: bool = False
    #: The host's: seconds from the event to the incident's problem of its host it is tied to.
    apart_s: float = float("inf")


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

    # A routine message that resolves nothing (the hourly cron line, a replica's promotion log) repeats what it
    # said before: the same fingerprint ties it within the routine window only, not over the look-back.
    repeats = "routine" if facts.routine and not facts.recovery else "fingerprint"
    for key, kind in facts.probed():
        if kind in ("below", "above", "recovered_below", "recovered_above"):
            if kind == "above" and _another_link_down(facts, inc):
                continue
            if "topology" not in found and near(key, "topology"):
                node = key[2:]
                hops = facts.ancestors.get(node, 0)
                why = {"below": f"{_name(facts)} depends on {node} ({hops} hop{'s' if hops > 1 else ''}), which is failing",
                       "above": f"its failing dependents depend on {node}",
                       "recovered_below": f"{_name(facts)} depends on {node}, which recovered",
                       "recovered_above": f"its dependents recovered with {node}"}[kind]  # fmt: skip
                found["topology"] = Evidence("topology", w.topology, why)
        elif kind == "cut":
            if "topology" not in found and near(key, "topology"):
                _cut(key, inc, ts, cfg, found)
        elif kind not in found and near(key, repeats if kind == "fingerprint" else kind):
            why = {"fingerprint": "the same problem was seen in it", "service": f"same service {_service(key)}",
                   "entity": f"names {key[2:]}, as the incident does"}[kind]  # fmt: skip
            found[kind] = Evidence(kind, getattr(w, kind), why)
    for address in sorted(facts.mentions) if not facts.routine and "entity" not in found else ():
        # The message names a host the incident has failing events on.
        if facts.answered and near(f"u:{address}", "entity"):
            continue  # it answered, says the message; cannot be reached, says the incident: two problems of it
        if any(key[0] == "h" and near(key, "entity") for key in inc.host_keys(address)):
            found["entity"] = Evidence("entity", w.entity, f"names {address}, a host of the incident")
            break
    if facts.template and facts.weighs_template() and not _about_other_things(facts, inc, ts, gaps["template"]):
        best = _best_similarity(facts.template, inc, facts, ts, cfg)
        if best >= cfg.similarity:
            found["template"] = Evidence("template", w.template * best, f"message {best:.0%} like the incident's")
    if facts.host:
        _host(facts, ts, inc, cfg, found)
    return sorted(found.values(), key=lambda e: KINDS.index(e.kind))


def _host(facts: Facts, ts: float, inc: OpenIncident, cfg: GroupingSettings, found: dict[str, Evidence]) -> None:
    """The same host (within the host window, the routine one for routine events, the look-back for a resolution
    and the host's problems), about the same subject (:func:`subject_of`), unless the services differ."""
    if not facts.host:
        return
    w = cfg.weights
    prefix = f"{facts.host}|"
    mine = facts.named_service or ""
    other: str | None = None
    # The host's announced reboot first: what explains its going down.
    for key in sorted(inc.host_keys(facts.host), key=lambda k: not k.endswith(PLANNED)):
        if key[0] == "h" and facts.routine and not facts.recovery:
            continue
        theirs, sep, about = key[2 + len(prefix) :].rpartition("|")
        if not sep:  # a key kept before subjects were (``host|service``)
            theirs, about = about, facts.subject
        if not one_problem(about, facts.subject):
            continue
        spans = inc.keys[key]
        kind = "host" if key[0] == "h" and not facts.routine else "routine"
        if facts.recovery and key[0] == "h":
            # A resolution ends a problem of its host that may have begun long before: it looks back as far as
            # the same problem would (its firing may have come from another monitor, in other words).
            kind = "fingerprint"
        apart = distance(spans, ts)
        if apart > cfg.gaps()[kind]:
            continue
        planned = PLANNED in (about, facts.subject) and about != facts.subject
        if planned and (spans[0][0] > ts if about == PLANNED else spans[-1][1] < ts):
            continue  # a reboot announced after the host was found down explains none of that
        if facts.subject == "down" and about in ("down", PLANNED) and _back_since(inc, facts.host, spans, ts):
            continue  # the host came back since it went down (or rebooted): its going down again is news
        if mine and theirs and theirs != mine:
            other = theirs
            continue
        if theirs and not mine and service_wide(inc, theirs, facts.host):
            continue  # the incident's problem on the host is its service's, failing on other hosts too
        minutes = max(1, int(apart // 60) + 1)
        why = f"events occurred within {minutes} minutes on same host"
        if planned:
            why += ", down after it announced its reboot"
        elif about != facts.subject:
            why += ", cut off (it cannot be reached, and cannot reach what it names)"
        found["host"] = Evidence("host", w.host, why, planned=planned, apart_s=apart)
        return
    if other is not None and not set(found) - {"other_service"}:
        found["host"] = Evidence("host", w.host, "events occurred on same host")
        found["other_service"] = Evidence("other_service", w.other_service, f"another service ({mine}; it has {other})")


def service_wide(inc: OpenIncident, service: str, host: str) -> bool:
    """Whether the incident holds problems of ``service`` on a host other than ``host``: the service fails as a whole
    (a release's bug on each of its hosts), which a message on one of its hosts naming no service (the kernel's
    conntrack table full, a queue's depth, a routine notice) is not tied to by the host alone. PERF: only for such a
    message and a host key of the incident naming a service."""
    tag = f"|{service}|"
    return any(
        other != host and any(key[0] == "h" and tag in key for key in keys)
        for (kind, other), keys in inc._subjects().items()
        if kind == "h"
    )


def _back_since(inc: OpenIncident, host: str, spans: list[list[float]], ts: float) -> bool:
    """Whether the incident saw ``host`` recover (its down alert resolved, say) before ``ts`` and after it last went
    down or announced its reboot before ``ts`` (``spans``: of that key)."""
    recovered = inc.keys.get(f"v:{host}")
    seen = [min(last, ts) for first, last in spans if first <= ts]
    if not recovered or not seen:
        return False
    since = max(seen)
    return any(first < ts and last >= since for first, last in recovered)


def _another_link_down(facts: Facts, inc: OpenIncident) -> bool:
    """Whether the event is an interface of its device going down and the incident holds another interface of that
    device going down: that one explains the failures below the device; this is another link (a port flapping
    after the uplink went down). Two interfaces going down together are still tied by their words."""
    if not facts.subject.startswith("link ") or facts.recovery or not facts.host:
        return False
    return any(
        key[0] == "h" and (about := key.rpartition("|")[2]).startswith("link ") and about != facts.subject
        for key in inc.host_keys(facts.host)
    )


def _cut(key: str, inc: OpenIncident, ts: float, cfg: GroupingSettings, found: dict[str, Evidence]) -> None:
    """An undeclared cut (``k`` key ``key`` near): a link going down and hosts no topology places going down with it
    (unless they went down as they announced: a maintenance's reboots, which no link going down explains)."""
    if key == "k:link":
        why = "its host went down or unreachable as a network link went down, and no topology says where it hangs"
    elif not _rebooted_only(inc, ts, cfg.gaps()["topology"]):
        why = "a network link went down as hosts no topology places went down or unreachable"
    else:
        return
    found["topology"] = Evidence("topology", cfg.weights.topology, why)


def _rebooted_only(inc: OpenIncident, ts: float, window_s: float) -> bool:
    """Whether every host the incident found down within ``window_s`` of ``ts`` had announced its reboot before: a
    maintenance's hosts going down, which their reboots explain (no link going down does). PERF: walks the
    incident's hosts, only for a link going down that an incident's undeclared hosts going down may explain."""
    for (kind, _), keys in inc._subjects().items():
        if kind != "h":
            continue
        downs = [inc.keys[k] for k in keys if k[0] == "h" and k.endswith("|down")]
        if not any(distance(spans, ts) <= window_s for spans in downs):
            continue
        reboots = [inc.keys[k][0][0] for k in keys if k[0] == "h" and k.endswith(f"|{PLANNED}")]
        if not reboots or any(spans[0][0] < min(reboots) for spans in downs):
            return False
    return True


def _about_other_things(facts: Facts, inc: OpenIncident, ts: float, window_s: float) -> bool:
    """Whether the message is about the addresses it names (an attacker's, a client's) and the incident names none
    of them within ``window_s``: the same words about other peers are other problems (two attackers' password
    guesses), so its template is no evidence. A host cut off, whatever it cannot reach, is still one cut; names
    (certificates expiring together, say) are left to the words."""
    if not facts.mentions or not facts.subject.startswith("names ") or facts.subject.endswith(CUT_OFF):
        return False
    addresses = [m for m in facts.mentions if is_address(m)]
    if not addresses:
        return False
    for name in addresses:
        for key in (f"x:{name}", f"y:{name}"):
            spans = inc.keys.get(key)
            if spans is not None and distance(spans, ts) <= window_s:
                return False
    return True


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


def _service(key: str) -> str:
    """The service an ``s`` or ``j`` key names (see :meth:`.facts.Facts.service_key`)."""
    return key[2:].partition("|")[0]


def _name(facts: Facts) -> str:
    return facts.host or facts.service or "the event"


def _best_similarity(tpl: tuple[str, ...], inc: OpenIncident, facts: Facts, ts: float, cfg: GroupingSettings) -> float:
    """The best similarity of ``tpl`` to a template the incident had within the template window, on a host
    behind the same node as the event's (or either's unknown): two hosts known to hang off different
    nodes raising the same alert at once are two problems. A resolution nothing was open for
    (:meth:`.facts.Facts.weighs_template`) looks back as far as the same problem would."""
    window = cfg.window_of("fingerprint" if facts.routine else "template")
    if not facts.routine and facts.subject.startswith("link "):
        # An interface going down: the same words from another device's interface are the same cut only when
        # they went down together (the uplinks below a failed router); minutes apart, they are two links (a
        # port flapping, then an outage elsewhere).
        window = min(window, cfg.window_of("topology"))
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
    """Whether the incident had ``tpl`` within ``window`` of ``ts`` in the event's scope (:func:`in_scope`)."""
    program = facts.program()
    keys = inc.template_keys(tpl)
    return any(
        in_scope(key[key.rindex("@") + 1 :], facts.parents, program) and distance(inc.keys[key], ts) <= window
        for key in keys
    )

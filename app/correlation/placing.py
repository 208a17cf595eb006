"""Applying placements to incidents: joins, new incidents, merges, re-rooting, closing, reopening, flapping.

Called under the correlator's lock by :mod:`.store`, which reads the events and writes what this
module changed. An incident's matching state (:class:`.grouping.OpenIncident`) is kept on its row
(hosts, services, templates, fingerprints, interface keys), so matching never reads events.

Incidents the correlator closed (a resolution of their cause) stay candidates for the flap window:
when their cause's problem returns they reopen, and the returns are counted on the incident's
activity (``events.incident_activity``, shown on its timeline); the ``flap_changes``-th return
within the window marks the incident ``flapping``. A flapping incident is not closed by the
resolutions that follow: it stays flapping (its events trigger no rules) until an operator
resolves it or the clock finds it idle.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ..db import is_postgres
from ..models import EventCorrelation, Incident, IncidentActivity, ProcessedEvent
from ..notifications import follow
from .evidence import _PREFIX_KIND as _KINDS
from .evidence import Facts, facts_of
from .grouping import (
    Candidates,
    GroupingSettings,
    OpenIncident,
    Placement,
    Topology,
    choose,
    link_key,
    problem_fingerprint,
    problem_key,
    severity_score,
)
from .templates import template

logger = logging.getLogger(__name__)

#: Templates and fingerprints kept per incident for matching.
KEEP = 50
#: Spans kept per key of an incident (the most recent).
KEEP_INTERVALS = 24
#: Keys kept per incident (the most recent); see :func:`kept_keys`.
KEEP_KEYS = 2000
#: Statuses of incidents that take new events: an acknowledged one is still being worked. Resolved
#: and closed ones take none (a new matching event opens a new incident), but for the return of the
#: cause of one the correlator closed, within the flap window.
LIVE_STATUSES = ("open", "flapping", "acknowledged")
#: Who the incidents' activity names for the correlator's own changes.
ACTOR = "correlator"
_SEVERITY_ORDER = ("info", "low", "medium", "high", "critical")

Changed = dict[str, tuple[Incident, OpenIncident]]


def matching_state(row: Incident) -> OpenIncident:
    """What :func:`app.correlation.grouping.choose` matches an event against, from the incident's row."""
    inc = OpenIncident(
        id=str(row.id),
        hosts=set(row.hosts or []),
        services=set(row.services or []),
        templates=[tuple(t) for t in row.templates or []],
        fingerprints=set(row.fingerprints or []),
        last_event_at=row.last_event_at,
        first_event_at=row.opened_at or row.last_event_at,
        link_keys=set(row.link_keys or []),
        status=row.status,
        root_host=row.root_host,
        root_fingerprint=row.root_fingerprint,
        closed_at=row.closed_at if row.status == "closed" else None,
        worked=bool(row.status == "acknowledged" or row.assignee),
        routine=row.severity == "info",
        # PERF: the row's keys as decoded (fresh per batch), not copied.
        keys=dict(row.match_keys or {}),
    )
    if not inc.keys and row.event_count:
        _legacy_keys(inc)
    inc.row = row  # type: ignore[attr-defined]
    return inc


def _legacy_keys(inc: OpenIncident) -> None:
    """Keys for an incident saved before they were kept: its problems, services and hosts at its last event."""
    ts = inc.last_event_at.timestamp()
    keys = (
        [f"f:{fp}" for fp in inc.fingerprints] + [f"s:{s}|" for s in inc.services] + [f"l:{k}" for k in inc.link_keys]
    )
    keys += [f"{p}:{h}|" for h in inc.hosts for p in ("h", "r")]
    inc.keys = {key: [[ts, ts]] for key in keys}


def grow(row: Incident, inc: OpenIncident, event: dict[str, Any], at: datetime, *, facts: Facts | None = None,
         topology: Topology | None = None, cfg: GroupingSettings | None = None,
         links: list[str] | None = None) -> None:  # fmt: skip
    """Add ``event`` (received ``at``) to the incident's matching state and worst severity.

    The nodes and messages of a routine (``info``) event are kept only while the incident holds
    nothing else: a routine message does not make its node a failing one, nor its template a
    problem's (routine messages repeat everywhere). Its keys (:meth:`.evidence.Facts.emits`) are
    kept with their times.

    Parameters:
        facts: the event's, when worked out already (else from ``topology``, or none).
        links: its ``l:`` keys (:func:`_link_keys`), when worked out already.
    """
    cfg = cfg or GroupingSettings()
    facts = facts or facts_of(event, topology or Topology())
    routine = event["severity"] == "info"
    if routine and not inc.routine:
        _remember(inc, event)
    else:
        _add_nodes(inc, event, facts)
        if not routine:
            inc.routine = False
    ts = at.timestamp()
    gaps = cfg.gaps()
    for key in facts.keys:
        inc.keep(key, ts, gaps[key[0]])
    for key in links if links is not None else [f"l:{k}" for k in _link_keys(event)]:
        inc.keep(key, ts, gaps["l"])
    inc.last_event_at = max(inc.last_event_at, at)
    inc.first_event_at = min(inc.first_event_at, at)
    if _SEVERITY_ORDER.index(event["severity"]) > _SEVERITY_ORDER.index(row.severity):
        row.severity = event["severity"]


def _link_keys(event: dict[str, Any]) -> list[str]:
    keys = [problem_key(event.get("host"), event.get("event_type") or "")]
    if (key := link_key(event)) is not None:
        keys.append(key)
    return keys


def _add_nodes(inc: OpenIncident, event: dict[str, Any], facts: Facts | None = None) -> None:
    if event.get("host"):
        inc.hosts.add(event["host"])
    if event.get("service"):
        inc.services.add(event["service"])
    if len(inc.templates) < KEEP:
        tpl = facts.template if facts is not None else template(str(event.get("title") or ""))
        if tpl not in inc.template_set():
            inc.templates.append(tpl)
    _remember(inc, event)


def _remember(inc: OpenIncident, event: dict[str, Any]) -> None:
    """Keep what a resolution or a return of the event's problem is matched on."""
    if len(inc.fingerprints) < KEEP * 4:
        inc.fingerprints.add(problem_fingerprint(event))
    if (key := link_key(event)) is not None:
        inc.link_keys.add(key)
    if len(inc.link_keys) < KEEP * 4:
        inc.link_keys.add(problem_key(event.get("host"), event.get("event_type") or ""))


def finish(row: Incident, inc: OpenIncident, topology: Topology, cfg: GroupingSettings | None = None) -> None:
    """Copy what matching needs onto the row, once per batch (not per event); keys past the look-back are dropped."""
    row.match_keys = kept_keys(inc, cfg or GroupingSettings())
    row.hosts, row.services = sorted(inc.hosts), sorted(inc.services)
    row.templates, row.fingerprints, row.link_keys = (
        [list(t) for t in inc.templates],
        sorted(inc.fingerprints),
        sorted(inc.link_keys),
    )
    row.last_event_at = inc.last_event_at
    row.opened_at = min(row.opened_at, inc.first_event_at) if row.opened_at else inc.first_event_at
    levels = ["low", "medium", "high", "critical"]
    crit = max((topology.criticality.get(h, "medium") for h in inc.hosts), key=levels.index, default=None)
    row.severity_score = severity_score([row.severity], row.event_count, crit)


def kept_keys(inc: OpenIncident, cfg: GroupingSettings) -> dict[str, list[list[float]]]:
    """The keys worth keeping on the row: those an event may still be tied by (within their kind's window of
    the incident's last event, with the flap window to spare), at most :data:`KEEP_KEYS` of them, the most recent.

    PERF: an incident of thousands of events (a storm over an estate) would otherwise carry tens of
    thousands of keys from batch to batch; its recent keys hold the evidence new events find.
    """
    last = inc.last_event_at.timestamp() - cfg.flap_window.total_seconds()
    # PERF: the time a key's last span must reach, per key prefix (cfg.gaps() maps each to its kind's window).
    since = {prefix: last - cfg.gaps()[prefix] for prefix in _KINDS}
    kept = {
        key: spans if len(spans) <= KEEP_INTERVALS else spans[-KEEP_INTERVALS:]
        for key, spans in inc.keys.items()
        if spans[-1][1] >= since[key[0]]
    }
    if len(kept) > KEEP_KEYS:
        # PERF: positions sorted by a C key (a Python one per key was a third of this); stable, as sorting the keys
        # by a lambda was: keys of one time stay in the incident's order.
        names, spans_of = list(kept), list(kept.values())
        lasts = [spans[-1][1] for spans in spans_of]
        recent = sorted(range(len(names)), key=lasts.__getitem__, reverse=True)[:KEEP_KEYS]
        kept = {names[k]: spans_of[k] for k in recent}
    return kept


def new_incident(event: dict[str, Any], at: datetime) -> Incident:
    """A new open incident rooted at ``event`` (received ``at``), holding no event yet."""
    return Incident(
        id=uuid.uuid4(),
        status="open",
        title=str(event.get("title") or event["event_type"])[:500],
        root_event_id=event["id"],
        root_fingerprint=problem_fingerprint(event),
        root_host=event.get("host") or event.get("service"),
        severity=event["severity"],
        event_count=0,
        hosts=[],
        services=[],
        templates=[],
        fingerprints=[],
        link_keys=[],
        match_keys={},
        opened_at=at,
        last_event_at=at,
    )


class Batch:
    """The placements of one batch: the incidents it changed, its events' incidents and the links to record.

    Parameters:
        incidents: the candidates (:func:`.held.candidates`), or their index (:meth:`.held.HeldIncidents.take`);
            the batch adds those it opens.
        flush: called before stamped events are moved from one incident to another (a merge), so
            that every event decided before carries its incident's id (see :func:`.store.write_out`).
    """

    def __init__(self, incidents: Candidates | list[OpenIncident], topology: Topology, cfg: GroupingSettings,
                 *, flush: Callable[[], None] | None = None) -> None:  # fmt: skip
        if not isinstance(incidents, Candidates):
            incidents = Candidates(incidents, similarity_floor=cfg.similarity)
        self.incidents = incidents
        self.topology, self.cfg, self.flush = topology, cfg, flush
        self.changed: Changed = {}
        self.assigned: dict[str, str] = {}
        self.links: list[dict[str, Any]] = []
        self._created: set[str] = set()
        self._flushed = False

    def place(self, event: dict[str, Any], at: datetime) -> bool:
        """Place one event; False when it stays uncorrelated (a resolution with no open problem)."""
        facts = facts_for(event, self.topology)
        placement = choose(event, at, self.incidents, self.topology, self.cfg, facts)
        if placement.kind == "none":
            return False
        if placement.kind == "new":
            row = new_incident(event, at)
            inc = matching_state(row)
            inc.routine = True  # until a problem joins (grow)
            self.incidents.add(inc)
            self._created.add(inc.id)
        else:
            assert placement.incident is not None
            inc = placement.incident
            row = inc.row  # type: ignore[attr-defined]
        for other in placement.also:
            self._absorb(row, inc, other, at, placement.reason)
        row.event_count += 1
        self._grow(row, inc, event, at, facts)
        if placement.roots:
            # The event's node is what the incident's nodes depend on: it is the cause, and names the incident.
            row.root_event_id, row.title = event["id"], str(event.get("title") or event["event_type"])[:500]
            row.root_fingerprint = problem_fingerprint(event)
            row.root_host = inc.root_host = event.get("host") or event.get("service")
            inc.root_fingerprint = row.root_fingerprint
        if placement.closes:
            self._close(row, inc, event, at)
        if placement.reopens:
            self._reopen(row, inc, event, at, placement)
        self.changed[inc.id] = (row, inc)
        self.assigned[event["id"]] = inc.id
        if placement.kind != "new":
            self.links.append({"correlation_id": row.id, "correlation_type": placement.kind, "primary_event_id": row.root_event_id,
                               "related_event_ids": [event["id"]], "correlation_score": min(placement.score, 9.99),
                               "correlation_reason": placement.reason})  # fmt: skip
        return True

    def repeat(self, event: dict[str, Any], at: datetime) -> bool:
        """``event``, placed already, occurred again ``at``: de-duplication folded the occurrence into it.

        A flapping link's linkDown and linkUp are two stored events whose occurrences the normalizer
        counts, so only a change of state counts here: the return of the cause of the incident its
        resolution closed reopens it (flapping at the ``flap_changes``-th return, :meth:`_reopen`), and
        the return of that resolution closes it again (not a flapping one, as in :meth:`place`). A
        flapping incident only takes the occurrence as its last event, so that the link's next
        messages find it. An occurrence no later than the incident's last change of state (or, for a
        flapping one, its last event) changes nothing: a redelivered batch counts no flap twice.
        Returns whether the incident changed.
        """
        inc = self.incidents.by_id.get(self.assigned.get(event["id"]) or event.get("correlation_id") or "")
        if inc is None:
            return False  # not a candidate: closed by an operator, or quiet for longer than the windows
        row: Incident = inc.row  # type: ignore[attr-defined]
        facts = facts_for(event, self.topology)
        if inc.status == "flapping":
            if at <= inc.last_event_at:
                return False
            self._grow(row, inc, event, at, facts)
            self.changed[inc.id] = (row, inc)
            return True
        placement = choose(event, at, self.incidents, self.topology, self.cfg, facts)
        if placement.incident is not inc or not (placement.closes or placement.reopens):
            return False
        if row.status_changed_at is not None and at <= row.status_changed_at:
            return False
        self._grow(row, inc, event, at, facts)
        if placement.closes:
            self._close(row, inc, event, at)
        else:
            self._reopen(row, inc, event, at, placement)
        self.changed[inc.id] = (row, inc)
        return True

    def _grow(self, row: Incident, inc: OpenIncident, event: dict[str, Any], at: datetime, facts: Facts) -> None:
        # PERF: only the keys new to the incident are indexed (those it holds are indexed already).
        held, links = inc.keys, [f"l:{k}" for k in _link_keys(event)]
        new = [key for key in (*facts.keys, *links) if key not in held]
        grow(row, inc, event, at, facts=facts, cfg=self.cfg, links=links)
        for key in new:
            self.incidents.index_key(inc.id, key)

    def _close(self, row: Incident, inc: OpenIncident, event: dict[str, Any], at: datetime) -> None:
        """A resolution of the incident's cause closes it (it stays a candidate for the flap window)."""
        row.status, row.closed_at, row.closed_by_event_id = "closed", at, event["id"]
        row.status_changed_at = at
        inc.status, inc.closed_at = "closed", at
        follow.incident_changed(row.id, "closed", actor=ACTOR, now=at)  # resolve where it was paged

    def _reopen(
        self, row: Incident, inc: OpenIncident, event: dict[str, Any], at: datetime, placement: Placement
    ) -> None:
        """The cause of an incident the correlator closed returned: reopen it, flapping at the ``flap_changes``-th time."""
        since = at - self.cfg.flap_window
        returns = 1 + (
            IncidentActivity.select()
            .where(
                (IncidentActivity.incident_id == row.id)
                & (IncidentActivity.actor == ACTOR)
                & (IncidentActivity.from_status == "closed")
                & (IncidentActivity.at >= since)
            )  # fmt: skip
            .count()
        )
        flapping = returns >= self.cfg.flap_changes
        status = "flapping" if flapping else "open"
        minutes = round(self.cfg.flap_window.total_seconds() / 60)
        text = f"{event.get('title')} returned after its resolution ({returns} time{'s' if returns > 1 else ''} in {minutes} minutes)"
        if flapping:
            text += ": flapping"
            logger.info("Incident %r is flapping: its cause returned %d times in %d minutes.", inc.id, returns, minutes)
        row.status, row.status_changed_at, row.closed_at, row.closed_by_event_id = status, at, None, None
        inc.status, inc.closed_at = status, None
        IncidentActivity.create(incident_id=row.id, at=at, kind="status", actor=ACTOR, person=ACTOR, from_status="closed",
                                to_status=status, text=text, details={"event_id": event["id"], "returns": returns})  # fmt: skip
        placement.reason = f"{placement.reason}{': flapping' if flapping else ''}"

    def _absorb(self, row: Incident, inc: OpenIncident, other: OpenIncident, at: datetime, why: str) -> None:
        """Merge ``other`` into ``inc``: one problem seen in parts. Its events and links move; it is closed."""
        source: Incident = other.row  # type: ignore[attr-defined]
        self.incidents.remove(other)
        inc.absorb_keys(other, self.cfg)
        for key in other.keys:
            self.incidents.index_key(inc.id, key)
        inc.hosts |= other.hosts
        inc.services |= other.services
        for tpl in other.templates:
            if len(inc.templates) < KEEP and tpl not in inc.template_set():
                inc.templates.append(tpl)
        inc.fingerprints |= other.fingerprints
        inc.link_keys |= other.link_keys
        inc.routine = inc.routine and other.routine
        inc.first_event_at = min(inc.first_event_at, other.first_event_at)
        inc.last_event_at = max(inc.last_event_at, other.last_event_at)
        row.event_count += source.event_count
        if _SEVERITY_ORDER.index(source.severity) > _SEVERITY_ORDER.index(row.severity):
            row.severity = source.severity
        if self._above(other.root_host, inc.root_host):
            # the absorbed part holds the deeper cause: it roots the whole
            row.root_event_id, row.title, row.root_fingerprint = (
                source.root_event_id,
                source.title,
                source.root_fingerprint,
            )
            row.root_host = inc.root_host = other.root_host
            inc.root_fingerprint = other.root_fingerprint
        for event_id, incident_id in self.assigned.items():
            if incident_id == other.id:
                self.assigned[event_id] = inc.id
        for lk in self.links:
            if str(lk["correlation_id"]) == other.id:
                lk["correlation_id"] = row.id
        if other.id in self._created:
            self.changed.pop(other.id, None)  # never saved: nothing else to move
            return
        moved = source.event_count
        source.status, source.closed_at, source.status_changed_at, source.event_count = "closed", at, at, 0
        source.merged_into = row.id  # as :meth:`_moved` saves it (a process may keep the row, see .held)
        self.changed[other.id] = (source, OpenIncident(id=other.id, hosts=set(), services=set(), templates=[],
                                                      fingerprints=set(), last_event_at=source.last_event_at))  # fmt: skip
        self._moved(row.id, source.id, moved, at, why)

    def _moved(self, target: Any, source: Any, moved: int, at: datetime, why: str) -> None:
        """Write the merge of the saved incident ``source`` into ``target`` (``moved`` events): its events and links
        move, it points at ``target``, both timelines say so, and the source's closing is followed where it was paged."""
        if self.flush is not None and not self._flushed:
            self.flush()
            self._flushed = True
        ProcessedEvent.update(correlation_id=target).where(ProcessedEvent.correlation_id == source).execute()
        EventCorrelation.update(correlation_id=target).where(EventCorrelation.correlation_id == source).execute()
        Incident.update(merged_into=target).where(Incident.id == source).execute()
        details = {"sources": [str(source)], "events_moved": moved}
        IncidentActivity.create(
            incident_id=target, at=at, kind="merge", actor=ACTOR, person=ACTOR, text=why, details=details
        )
        IncidentActivity.create(incident_id=source, at=at, kind="merge", actor=ACTOR, person=ACTOR, text=why,
                                details={"merged_into": str(target)})  # fmt: skip
        follow.incident_changed(source, "closed", actor=ACTOR, now=at)
        logger.info("Merged incident %r into %r: an event relates to both.", str(source), str(target))

    def _above(self, a: str | None, b: str | None) -> bool:
        """Whether node ``b`` depends on node ``a`` (``a`` is further up the dependency chain)."""
        return bool(a and b and a != b and any(node == a for node, _ in self.topology.ancestors(b)))


def facts_for(event: dict[str, Any], topology: Topology) -> Facts:
    """The event's facts, worked out once per topology (PERF: :func:`.store.correlate_batch` does it before the lock)."""
    cached = event.get("_facts")
    if cached is None or cached[0] is not topology:
        cached = (topology, facts_of(event, topology))
        event["_facts"] = cached
    return cached[1]


def flush_decisions(write_out: Callable[[list[str]], int], pending: Callable[[], set[str]]) -> Callable[[], None]:
    """A :class:`Batch` ``flush`` that writes out every decision not yet written (PostgreSQL; none on SQLite)."""

    def flush() -> None:
        if is_postgres():
            write_out(sorted(pending()))

    return flush

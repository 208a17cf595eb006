"""The correlator's storage side: load open incidents and topology, apply decisions, record why.

One batch is one transaction. On PostgreSQL the transaction first takes an
advisory lock, so correlator processes decide one batch at a time and several
processes give the incidents one would: an event may relate to any open
incident (by host, service, upstream device or pattern), so no narrower key
could keep two batches from racing over the same incident.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime
from typing import Any

import orjson

from ..db import TimestampField, database, in_transaction, is_postgres, uuid_in
from ..models import EventCorrelation, Incident, ProcessedEvent, TopologyLink
from .decide import (
    OpenIncident,
    Settings,
    Topology,
    choose,
    link_key,
    problem_fingerprint,
    problem_key,
    severity_score,
)
from .templates import template

logger = logging.getLogger(__name__)

#: Advisory lock key of the correlator (any constant; it only needs to be the same in every process).
LOCK_KEY = 7_271_001
#: Templates and fingerprints kept per incident for matching.
KEEP = 50
_SEVERITY_ORDER = ("info", "low", "medium", "high", "critical")
_topology: tuple[float, Topology] | None = None


def load_topology(*, max_age_s: float = 10.0) -> Topology:
    global _topology
    now = time.monotonic()
    if _topology is not None and now - _topology[0] < max_age_s:
        return _topology[1]
    topology = Topology()
    for link in TopologyLink.select():
        if link.kind == "host" and link.upstream:
            topology.upstream[link.node] = link.upstream
        elif link.kind == "service" and link.upstream:
            topology.service_host[link.node] = link.upstream
        elif link.kind == "resolution" and link.upstream:
            topology.resolutions.setdefault(link.node, set()).add(link.upstream)
        if link.criticality:
            topology.criticality[link.node] = link.criticality
    _topology = (now, topology)
    return topology


def _at(event: dict[str, Any]) -> datetime:
    return event["received_at"]


#: Columns the correlator reads, under the names :func:`app.correlation.decide.choose` uses.
_COLUMNS: dict[str, Any] = {
    "id": ProcessedEvent.id, "host": ProcessedEvent.source_host, "service": ProcessedEvent.source_service,
    "title": ProcessedEvent.title, "severity": ProcessedEvent.severity, "event_type": ProcessedEvent.event_type,
    "fingerprint": ProcessedEvent.fingerprint, "metadata": ProcessedEvent.event_data,
    "received_at": ProcessedEvent.received_at, "correlation_id": ProcessedEvent.correlation_id,
}  # fmt: skip


def _load(event_ids: list[str]) -> list[dict[str, Any]]:
    # PERF: plain dicts of the needed columns; model instances cost more than the correlation itself.
    where = uuid_in(ProcessedEvent.id, event_ids)
    query: Any = (
        ProcessedEvent.select(*(c.alias(k) for k, c in _COLUMNS.items()))
        .where(where)
        .order_by(ProcessedEvent.received_at)
    )
    events: list[dict[str, Any]] = []
    row: dict[str, Any]
    for row in query.dicts():
        row["id"] = str(row["id"])
        row["correlation_id"] = str(row["correlation_id"]) if row["correlation_id"] else None
        row["received_at"] = (
            TimestampField().python_value(row["received_at"])
            if isinstance(row["received_at"], str)
            else row["received_at"]
        )
        events.append(row)
    return events


def _insert_links(links: list[dict[str, Any]]) -> None:
    if not links:
        return
    if is_postgres():
        # PERF: one statement for the batch; peewee's insert_many builds it several times slower.
        from psycopg2.extras import execute_values

        values = [(str(lk["correlation_id"]), lk["correlation_type"], lk["primary_event_id"] and str(lk["primary_event_id"]),
                   orjson.dumps(lk["related_event_ids"]).decode(), lk["correlation_score"], lk["correlation_reason"]) for lk in links]  # fmt: skip
        execute_values(
            database.cursor(),
            "INSERT INTO events.event_correlations (correlation_id, correlation_type, primary_event_id, related_event_ids,"
            " correlation_score, correlation_reason, created_at) VALUES %s",
            values,
            template="(%s::uuid, %s, %s::uuid, %s::jsonb, %s, %s, now())",
            page_size=1000,
        )
        return
    for k in range(0, len(links), 500):
        EventCorrelation.insert_many(links[k : k + 500]).execute()


def _open(row: Incident) -> OpenIncident:
    inc = OpenIncident(
        id=str(row.id),
        hosts=set(row.hosts or []),
        services=set(row.services or []),
        templates=[tuple(t) for t in row.templates or []],
        fingerprints=set(row.fingerprints or []),
        last_event_at=row.last_event_at,
        link_keys=set(row.link_keys or []),
    )
    inc.row = row  # type: ignore[attr-defined]
    return inc


def _grow(row: Incident, inc: OpenIncident, event: dict[str, Any], at: datetime) -> None:
    if event.get("host"):
        inc.hosts.add(event["host"])
    if event.get("service"):
        inc.services.add(event["service"])
    if len(inc.templates) < KEEP:
        tpl = template(str(event.get("title") or ""))
        if tpl not in inc.templates:
            inc.templates.append(tpl)
    if len(inc.fingerprints) < KEEP * 4:
        inc.fingerprints.add(problem_fingerprint(event))
    if (key := link_key(event)) is not None:
        inc.link_keys.add(key)
    if len(inc.link_keys) < KEEP * 4:
        inc.link_keys.add(problem_key(event.get("host"), event.get("event_type") or ""))
    inc.last_event_at = max(inc.last_event_at, at)
    if _SEVERITY_ORDER.index(event["severity"]) > _SEVERITY_ORDER.index(row.severity):
        row.severity = event["severity"]


def _finish(row: Incident, inc: OpenIncident, topology: Topology) -> None:
    """Copy what matching needs onto the row, once per batch (not per event)."""
    row.hosts, row.services = sorted(inc.hosts), sorted(inc.services)
    row.templates, row.fingerprints, row.link_keys = (
        [list(t) for t in inc.templates],
        sorted(inc.fingerprints),
        sorted(inc.link_keys),
    )
    row.last_event_at = inc.last_event_at
    levels = ["low", "medium", "high", "critical"]
    crit = max((topology.criticality.get(h, "medium") for h in inc.hosts), key=levels.index, default=None)
    row.severity_score = severity_score([row.severity], row.event_count, crit)


def _new_incident(event: dict[str, Any], at: datetime, cfg: Settings) -> Incident:
    fingerprint = problem_fingerprint(event)
    recent_closures = (
        Incident.select()
        .where((Incident.root_fingerprint == fingerprint) & (Incident.closed_at >= at - cfg.flap_window))
        .count()
    )
    return Incident(
        id=uuid.uuid4(),
        status="flapping" if recent_closures >= cfg.flap_changes else "open",
        title=str(event.get("title") or event["event_type"])[:500],
        root_event_id=event["id"],
        root_fingerprint=fingerprint,
        severity=event["severity"],
        event_count=0,
        hosts=[],
        services=[],
        templates=[],
        fingerprints=[],
        link_keys=[],
        opened_at=at,
        last_event_at=at,
    )


def _save_incidents(rows: list[Incident]) -> None:
    """Insert or update the batch's incidents in one statement (PERF: not one UPDATE per incident)."""
    if not rows:
        return
    fields = [f for f in Incident._meta.sorted_fields if f.name != "id"]
    data = [{f.name: getattr(row, f.name) for f in Incident._meta.sorted_fields} for row in rows]
    for k in range(0, len(data), 500):
        Incident.insert_many(data[k : k + 500]).on_conflict(conflict_target=[Incident.id], preserve=fields).execute()


def _assign(assigned: dict[str, str]) -> None:
    """Stamp each event with its incident's id (PERF: one statement for the batch on PostgreSQL)."""
    if not assigned:
        return
    if is_postgres():
        from psycopg2.extras import execute_values

        execute_values(
            database.cursor(),
            "UPDATE events.processed_events AS p SET correlation_id = v.cid::uuid"
            " FROM (VALUES %s) AS v(id, cid) WHERE p.id = v.id::uuid",
            list(assigned.items()),
            page_size=1000,
        )
        return
    by_incident: dict[str, list[str]] = {}
    for event_id, incident_id in assigned.items():
        by_incident.setdefault(incident_id, []).append(event_id)
    for incident_id, ids in by_incident.items():
        ProcessedEvent.update(correlation_id=incident_id).where(ProcessedEvent.id.in_(ids)).execute()


def correlate_batch(event_ids: list[str], *, cfg: Settings | None = None) -> dict[str, str]:
    """Correlate the stored events ``event_ids``; returns event id -> correlation id (incident).

    Events that already carry a correlation id (a redelivered batch) are left as they are.
    """
    cfg = cfg or Settings()

    # PERF: the events are read before the lock is taken (they do not change but for their
    # correlation id, which is read again under the lock), so the lock is held for less time.
    loaded = in_transaction(lambda: _load(event_ids))

    def work() -> dict[str, str]:
        events = loaded
        if is_postgres():
            database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            correlated = dict(
                database.execute_sql(
                    "SELECT id::text, correlation_id::text FROM events.processed_events"
                    " WHERE id = ANY(%s::uuid[]) AND correlation_id IS NOT NULL",
                    ([e["id"] for e in events],),
                ).fetchall()
            )
            for e in events:
                e["correlation_id"] = correlated.get(e["id"], e["correlation_id"])
        done = {e["id"]: e["correlation_id"] for e in events if e["correlation_id"]}
        events = [e for e in events if not e["correlation_id"]]
        if not events:
            return done
        since = _at(events[0]) - cfg.lookback
        open_rows = (
            Incident.select()
            .where(Incident.status.in_(["open", "flapping"]) & (Incident.last_event_at >= since))
            .order_by(Incident.last_event_at.desc())
        )
        incidents = [_open(r) for r in open_rows]
        topology = load_topology()
        changed: dict[str, tuple[Incident, OpenIncident]] = {}
        assigned: dict[str, str] = {}
        links: list[dict[str, Any]] = []
        for event in events:
            at = _at(event)
            decision = choose(event, at, incidents, topology, cfg)
            if decision.kind == "none":
                continue
            if decision.kind == "new":
                row = _new_incident(event, at, cfg)
                inc = _open(row)
                incidents.insert(0, inc)
            else:
                assert decision.incident is not None
                inc = decision.incident
                row = inc.row  # type: ignore[attr-defined]
            row.event_count += 1
            _grow(row, inc, event, at)
            if decision.kind == "causal" and event.get("host") and inc.hosts & topology.dependents_of(event["host"]):
                row.root_event_id, row.title = event["id"], str(event.get("title"))[:500]  # the cause is the root
            if decision.kind == "resolution":
                row.status, row.closed_at, row.closed_by_event_id = "closed", at, event["id"]
                incidents.remove(inc)
            changed[str(row.id)] = (row, inc)
            assigned[event["id"]] = str(row.id)
            if decision.kind != "new":
                links.append({"correlation_id": row.id, "correlation_type": decision.kind, "primary_event_id": row.root_event_id,
                              "related_event_ids": [event["id"]], "correlation_score": decision.score,
                              "correlation_reason": decision.reason})  # fmt: skip
        _insert_links(links)
        for row, inc in changed.values():
            _finish(row, inc, topology)
        _save_incidents([row for row, _ in changed.values()])
        _assign(assigned)
        return {**done, **assigned}

    return in_transaction(work)


def flapping_incidents(correlation_ids: list[str]) -> set[str]:
    """Which of these incidents are flapping (their events must not re-trigger rules)."""
    ids = sorted({c for c in correlation_ids if c})  # a batch's events share a few incidents
    if not ids:
        return set()
    return {
        str(r.id) for r in Incident.select(Incident.id).where(Incident.id.in_(ids) & (Incident.status == "flapping"))
    }

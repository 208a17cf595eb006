"""Reading incidents and correlations back (used by the HTTP API).

The topology moved to :mod:`app.topology.store`; its two functions are still importable from here.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import orjson
import peewee

from ..db import in_transaction, is_postgres
from ..errors import InvalidInput
from ..events.query import event_json
from ..events.schema import SEVERITIES
from ..models import EventCorrelation, Incident, ProcessedEvent
from ..paging import check_page
from ..present import iso
from ..topology.store import replace_topology, topology_json

#: Every status of an incident, in the order of its lifecycle (``flapping`` is worked like ``open``).
STATUSES = ("open", "flapping", "acknowledged", "resolved", "closed")

__all__ = ["STATUSES", "event_correlations", "get_incident", "has_host", "incident_json", "list_incidents",
           "replace_topology", "topology_json"]  # fmt: skip


def incident_json(row: Incident) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "correlation_id": str(row.id),
        "status": row.status,
        "title": row.title,
        "severity": row.severity,
        "severity_score": row.severity_score,
        "event_count": row.event_count,
        "root_event_id": str(row.root_event_id),
        "hosts": row.hosts or [],
        "services": row.services or [],
        "opened_at": iso(row.opened_at),
        "last_event_at": iso(row.last_event_at),
        "closed_at": iso(row.closed_at),
        "closed_by_event_id": str(row.closed_by_event_id) if row.closed_by_event_id else None,
        "assignee": row.assignee,
        "acknowledged_at": iso(row.acknowledged_at),
        "acknowledged_by": row.acknowledged_by,
        "resolved_at": iso(row.resolved_at),
        "resolved_by": row.resolved_by,
        "status_changed_at": iso(row.status_changed_at),
        "merged_into": str(row.merged_into) if row.merged_into else None,
    }


def has_host(host: str) -> peewee.Node:
    """``host`` is among an incident's hosts (a JSON list), in the database: no row is read to filter."""
    if is_postgres():
        return peewee.NodeList((Incident.hosts, peewee.SQL("@> %s::jsonb", [orjson.dumps([host]).decode()])))
    # SQLite keeps the list as JSON text: the host's JSON string, quotes included, is in it
    # (instr, not LIKE: LIKE would pass the pattern through the JSON field's converter, and treat _ and % as wildcards)
    return peewee.fn.instr(Incident.hosts, peewee.Value(orjson.dumps(host).decode(), converter=False)) > 0


def list_incidents(*, status: str | None, severity: str | None, host: str | None, since: datetime | None,
                   limit: int, offset: int, assignee: str | None = None) -> dict[str, Any]:  # fmt: skip
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)}", field="status")
    if severity is not None and severity not in SEVERITIES:
        raise InvalidInput(f"severity must be one of {', '.join(SEVERITIES)}", field="severity")
    check_page(limit, offset)

    def work() -> dict[str, Any]:
        query = Incident.select()
        if status:
            query = query.where(Incident.status == status)
        if severity:
            query = query.where(Incident.severity == severity)
        if assignee:
            query = query.where(Incident.assignee == assignee)
        if since:
            query = query.where(Incident.last_event_at >= since)
        if host:
            query = query.where(has_host(host))
        total = query.count()
        page = list(query.order_by(Incident.last_event_at.desc(), Incident.id).limit(limit).offset(offset))
        return {
            "incidents": [incident_json(r) for r in page],
            "total_count": total,
            "has_more": offset + len(page) < total,
        }

    return in_transaction(work)


def get_incident(key: uuid.UUID) -> dict[str, Any] | None:
    """The incident with id ``key``, its events and correlations; None when there is none."""

    def work() -> dict[str, Any] | None:
        row = Incident.get_or_none(Incident.id == key)
        if row is None:
            return None
        events = (
            ProcessedEvent.select().where(ProcessedEvent.correlation_id == key).order_by(ProcessedEvent.received_at)
        )
        links = EventCorrelation.select().where(EventCorrelation.correlation_id == key).order_by(EventCorrelation.id)
        return {
            **incident_json(row),
            "events": [event_json(e) for e in events],
            "correlations": [_correlation_json(c) for c in links],
        }

    return in_transaction(work)


def _correlation_json(row: EventCorrelation) -> dict[str, Any]:
    return {
        "correlation_type": row.correlation_type,
        "related_event_ids": row.related_event_ids or [],
        "correlation_score": float(row.correlation_score) if row.correlation_score is not None else None,
        "correlation_reason": row.correlation_reason,
        "created_at": iso(row.created_at),
    }


def event_correlations(key: uuid.UUID) -> dict[str, Any] | None:
    """The spec's shape: ``{primary_event, correlations, correlation_summary}``."""

    def work() -> dict[str, Any] | None:
        event = ProcessedEvent.get_or_none(ProcessedEvent.id == key)
        if event is None:
            return None
        correlations: list[dict[str, Any]] = []
        related: list[ProcessedEvent] = []
        if event.correlation_id:
            related = list(
                ProcessedEvent.select()
                .where((ProcessedEvent.correlation_id == event.correlation_id) & (ProcessedEvent.id != key))
                .order_by(ProcessedEvent.received_at)
            )
            by_id = {str(e.id): event_json(e) for e in related}
            for link in EventCorrelation.select().where(EventCorrelation.correlation_id == event.correlation_id):
                ids = [i for i in (link.related_event_ids or []) if i != str(key)]
                if str(link.primary_event_id) != str(key) and str(key) not in (link.related_event_ids or []):
                    continue
                entry = _correlation_json(link)
                entry["related_events"] = [by_id[i] for i in ids if i in by_id] or (
                    [by_id[str(link.primary_event_id)]] if str(link.primary_event_id) in by_id else []
                )
                correlations.append(entry)
        times = [event.received_at, *(e.received_at for e in related)]
        span = (max(times) - min(times)).total_seconds() / 60 if related else 0
        scores = [c["correlation_score"] for c in correlations if c["correlation_score"] is not None]
        return {
            "primary_event": event_json(event),
            "correlation_id": str(event.correlation_id) if event.correlation_id else None,
            "correlations": correlations,
            "correlation_summary": {
                "total_related_events": len(related),
                "highest_correlation_score": max(scores, default=None),
                "correlation_timespan_minutes": round(span, 1),
            },
        }

    return in_transaction(work)

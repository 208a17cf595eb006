"""Moving events between incidents: the storage side of an operator's merge and split.

Called inside the caller's transaction, after :func:`app.correlation.store.hold_lock`, by
:mod:`app.incidents.lifecycle`, which records who moved what and why. Events carry their
incident's id (``correlation_id``), and so do the records of why they were grouped
(``event_correlations``): both move; the incidents' counters and what matching needs are
rebuilt from the events they hold afterwards.
"""

from __future__ import annotations

import uuid
from typing import Any

from ..db import uuid_in
from ..errors import InvalidInput
from ..models import EventCorrelation, Incident, ProcessedEvent
from ..timeutil import now
from .grouping import problem_fingerprint
from .placing import finish, grow, matching_state
from .store import load_events, load_topology


def recount(row: Incident) -> list[dict[str, Any]]:
    """Rebuild the counters of ``row`` and what matching needs from the events that carry its id now.

    PERF: reads every event of the incident, which only the rare moves of an operator pay for.
    An incident left with no event keeps its title and root. The caller saves the row.

    Returns:
      The incident's events, oldest first.
    """
    events = load_events(ProcessedEvent.correlation_id == row.id)
    row.event_count = len(events)
    if events:
        row.severity = events[0]["severity"]
    row.hosts, row.services, row.templates, row.fingerprints, row.link_keys = [], [], [], [], []
    inc = matching_state(row)
    for event in events:
        grow(row, inc, event, event["received_at"])
    if events:
        inc.last_event_at = events[-1]["received_at"]
        row.opened_at = min(row.opened_at, events[0]["received_at"])
    finish(row, inc, load_topology())
    return events


def move_into(target: Incident, sources: list[Incident]) -> int:
    """Move every event of ``sources``, and the records of why they were grouped, to ``target``.

    Saves the target and the sources with their counters rebuilt (the sources' to none).

    Returns:
      How many events moved.
    """
    ids = [row.id for row in sources]
    moved = ProcessedEvent.update(correlation_id=target.id).where(ProcessedEvent.correlation_id.in_(ids)).execute()
    EventCorrelation.update(correlation_id=target.id).where(EventCorrelation.correlation_id.in_(ids)).execute()
    for row in (target, *sources):
        recount(row)
        row.save()
    return int(moved)


def split_off(source: Incident, event_ids: list[str]) -> Incident:
    """Move ``event_ids`` of ``source`` to a new open incident rooted at the oldest of them.

    The records of why events were grouped move when they relate only moved events. When the
    source's root moves, its oldest remaining event becomes its root.

    Raises:
      InvalidInput: an event is not one of the incident's (``event_ids``), or the split would
        leave the incident with no event.

    Returns:
      The new incident, saved.
    """
    wanted = set(event_ids)
    events = load_events(uuid_in(ProcessedEvent.id, sorted(wanted)) & (ProcessedEvent.correlation_id == source.id))
    found = {e["id"] for e in events}
    missing = sorted(wanted - found)
    if missing:
        raise InvalidInput(f"event {missing[0]} is not one of incident {source.id}'s events", field="event_ids")
    staying = (ProcessedEvent.correlation_id == source.id) & ~uuid_in(ProcessedEvent.id, sorted(found))
    if not ProcessedEvent.select().where(staying).exists():
        raise InvalidInput("a split must leave the incident at least one event", field="event_ids")
    root, at = events[0], now()
    row = Incident(
        id=uuid.uuid4(), status="open", title=str(root.get("title") or root["event_type"])[:500],
        root_event_id=root["id"], root_fingerprint=problem_fingerprint(root), root_host=root.get("host") or root.get("service"),
        severity=root["severity"],
        event_count=0, hosts=[], services=[], templates=[], fingerprints=[], link_keys=[],
        opened_at=root["received_at"], last_event_at=root["received_at"], status_changed_at=at,
    )  # fmt: skip
    row.save(force_insert=True)
    ProcessedEvent.update(correlation_id=row.id).where(uuid_in(ProcessedEvent.id, sorted(found))).execute()
    moving = [
        link.id
        for link in EventCorrelation.select(EventCorrelation.id, EventCorrelation.related_event_ids).where(
            EventCorrelation.correlation_id == source.id
        )
        if link.related_event_ids and set(link.related_event_ids) <= found
    ]
    if moving:
        EventCorrelation.update(correlation_id=row.id).where(EventCorrelation.id.in_(moving)).execute()
    recount(row)
    row.save()
    remaining = recount(source)
    if str(source.root_event_id) in found:
        source.root_event_id, source.title = remaining[0]["id"], str(remaining[0]["title"])[:500]
    source.save()
    return row

"""Occurrences de-duplication folded into events placed already, that may change their incident's state.

The normalizer folds a repeat of an event within its de-duplication window into the stored one
(its ``occurrences`` and ``last_seen_at`` move) and hands the stored event's id on again. A
flapping link is two such events, its linkDown and its linkUp, each occurring again and again:
their incident must reopen (and be marked ``flapping``) and close as they return, though both
were placed when first seen (:meth:`.placing.Batch.repeat`).

PERF: most folded events are repeats of a problem whose incident is open (an alert storm): they
change nothing, and a batch of only those must not queue for the correlator's lock. So this
module picks, before the lock and with one read of their incidents, the occurrences that may
change one; the batch decides them under the lock.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..db import database, uuid_in
from ..models import Incident
from .grouping import GroupingSettings, Topology
from .placing import facts_for


class _Row(NamedTuple):
    """What :func:`state_changes` reads of an incident."""

    status: Any
    closed_at: Any
    closed_by_event_id: Any
    status_changed_at: Any
    last_event_at: Any


#: Statuses a resolution's return closes (a flapping incident stays flapping, see :mod:`.placing`).
_CLOSABLE = ("open", "acknowledged")


def again(event: dict[str, Any]) -> bool:
    """Whether the event occurred again after it was first received (de-duplication folded a repeat into it)."""
    seen = event.get("last_seen_at")
    return seen is not None and seen > event["received_at"]


def state_changes(events: list[dict[str, Any]], topology: Topology, cfg: GroupingSettings) -> list[dict[str, Any]]:
    """The events placed already whose last occurrence may reopen or close their incident.

    A problem's, when its incident is one the correlator closed before that occurrence, within the
    flap window; a resolution's, when its incident was reopened (its status changed) before it;
    any, when its incident is flapping and that occurrence is later than its last event.
    """
    placed = [e for e in events if e.get("correlation_id") and again(e)]
    if not placed:
        return []
    # PERF: rows as the driver returns them (timestamps converted as the model would), not model instances.
    fields: tuple[Any, ...] = (Incident.status, Incident.closed_at, Incident.closed_by_event_id, Incident.status_changed_at,
              Incident.last_event_at)  # fmt: skip
    query = Incident.select(Incident.id, *fields).where(
        uuid_in(Incident.id, sorted({e["correlation_id"] for e in placed}))
    )
    rows = {
        str(Incident.id.python_value(key)): _Row(
            *(f.python_value(v) if v is not None else None for f, v in zip(fields, values, strict=True))
        )
        for key, *values in database.execute(query).fetchall()
    }
    out = []
    for event in placed:
        row, seen = rows.get(event["correlation_id"]), event["last_seen_at"]
        if row is None:
            continue
        if row.status == "flapping":
            if seen > row.last_event_at:
                out.append(event)  # the link keeps flapping: its incident's last event moves
            continue
        # PERF: the event's facts (is it a resolution?) only when its incident's state may change.
        if row.status in _CLOSABLE:
            if row.status_changed_at is not None and seen > row.status_changed_at:
                if facts_for(event, topology).recovery:
                    out.append(event)
        elif row.status == "closed" and row.closed_by_event_id is not None and row.closed_at is not None:
            if row.closed_at < seen <= row.closed_at + cfg.flap_window and not facts_for(event, topology).recovery:
                out.append(event)
    return out

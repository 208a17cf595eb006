"""The candidates of a batch: the incidents its events may join, and those a correlator process keeps between batches.

PERF: every batch places its events against the candidates (live incidents, and those the
correlator closed within the flap window), each carrying the keys its events left: thousands for
a large incident. Reading and decoding them anew per batch costs more than placing a batch's
events into them. A process keeps the rows as its last batch saved them; under the correlator's
lock the next batch reads only each candidate's row version (``xmin``, which PostgreSQL changes on
every write of a row, by any writer) and re-reads in full the rows whose version differs: those
another process, an operator or the clock changed since, or that this process never read. So no
writer of incidents needs to know about this cache, and a batch sees exactly the rows it would read.

Rows are taken out of the cache while a batch uses them (it changes them in place) and put back,
with their new versions, only once its transaction committed: a batch that fails leaves nothing
behind, and two threads of a process never share a row.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

import orjson
from peewee import SQL

from ..db import JSONField, is_postgres, uuid_in
from ..models import Incident
from .grouping import OpenIncident
from .placing import LIVE_STATUSES, matching_state


def candidates(since: datetime, flap_since: datetime) -> list[OpenIncident]:
    """The live incidents with an event since ``since``, and those the correlator closed since ``flap_since``."""
    where = candidate_filter(since, flap_since)
    if not is_postgres():
        query = Incident.select().where(where).order_by(Incident.last_event_at.desc())
        return [matching_state(r) for r in query]
    return [matching_state(r) for r in read_incidents(where)]


def candidate_filter(since: datetime, flap_since: datetime) -> Any:
    """Which incidents :func:`candidates` reads (a peewee expression)."""
    live = Incident.status.in_(LIVE_STATUSES) & (Incident.last_event_at >= since)
    dormant = ((Incident.status == "closed") & Incident.closed_by_event_id.is_null(False)
               & (Incident.closed_at >= flap_since) & Incident.merged_into.is_null())  # fmt: skip
    return live | dormant


def read_incidents(where: Any, *extra: Any) -> list[Incident]:
    """The incidents ``where`` holds, most recent first, with the ``extra`` columns (PostgreSQL).

    PERF: JSON columns read as text and decoded by orjson, not by the driver's json (an incident of
    thousands of events carries thousands of keys).
    """
    fields = Incident._meta.sorted_fields
    texts = [f.name for f in fields if isinstance(f, JSONField)]
    columns = [f.cast("text").alias(f.column_name) if isinstance(f, JSONField) else f for f in fields]
    rows = list(Incident.select(*columns, *extra).where(where).order_by(Incident.last_event_at.desc()))
    for row in rows:
        for name in texts:
            value = getattr(row, name)
            if isinstance(value, str):
                setattr(row, name, orjson.loads(value))
    return rows


#: A row and its version (``xmin`` as text) when it was read or saved.
Versioned = tuple[str, Incident]


class HeldIncidents:
    """Incident rows as this process last read or saved them, by id, with their versions."""

    def __init__(self) -> None:
        self._rows: dict[str, Versioned] = {}
        self._mutex = threading.Lock()

    def take(self, since: datetime, flap_since: datetime) -> tuple[list[OpenIncident], dict[str, Versioned]]:
        """The candidates :func:`candidates` would read, and their versioned rows (for :meth:`put`).

        Call under the correlator's lock, in the batch's transaction.
        """
        where = candidate_filter(since, flap_since)
        query: Any = Incident.select(Incident.id, SQL("xmin::text")).where(where).tuples()
        versions = {str(incident_id): xmin for incident_id, xmin in query}
        with self._mutex:
            kept, self._rows = self._rows, {}  # rows no batch wants now are dropped (not candidates any more)
        taken = {i: kept[i] for i in versions if i in kept and kept[i][0] == versions[i]}
        missing = [i for i in versions if i not in taken]
        if missing:
            for row in read_incidents(uuid_in(Incident.id, missing), SQL("xmin::text").alias("row_version")):
                taken[str(row.id)] = (row.row_version, row)  # type: ignore[attr-defined]
        rows = sorted((row for _, row in taken.values()), key=lambda r: r.last_event_at, reverse=True)
        return [matching_state(row) for row in rows], taken

    def put(self, rows: dict[str, Versioned]) -> None:
        """Keep ``rows`` (after the transaction that read or saved them committed)."""
        for _, row in rows.values():
            row.match_keys = as_jsonb(row.match_keys)
        with self._mutex:
            self._rows.update(rows)

    def clear(self) -> None:
        with self._mutex:
            self._rows = {}


def as_jsonb(keys: dict[str, Any]) -> dict[str, Any]:
    """``keys`` in the order PostgreSQL's ``jsonb`` gives an object's keys back (shorter first, then bytewise).

    Which of an incident's keys is weighed first words its reasons (:func:`.evidence.weigh`): a kept row
    must give them in the order a read one does.
    """
    order = sorted(keys, key=lambda k: (len(k.encode()), k.encode()))
    if order == list(keys):
        return keys
    return {k: keys[k] for k in order}


def versions_of(incident_ids: list[str]) -> dict[str, str]:
    """The row versions of these incidents as the current transaction sees them (after it saved them)."""
    if not incident_ids:
        return {}
    query: Any = Incident.select(Incident.id, SQL("xmin::text")).where(uuid_in(Incident.id, incident_ids)).tuples()
    return {str(incident_id): xmin for incident_id, xmin in query}

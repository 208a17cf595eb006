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

import functools
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson
from peewee import SQL, UUIDField

from ..db import JSONField, TimestampField, database, is_postgres, uuid_in
from ..models import Incident
from .grouping import Candidates, OpenIncident
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


def read_incidents(where: Any, *, versioned: bool = False) -> list[Incident]:
    """The incidents ``where`` holds, most recent first (PostgreSQL); ``versioned``: each with its ``row_version``.

    PERF: rows built from the cursor's tuples, converting only the columns whose driver value is not the
    model's (uuids, instants, JSON as text decoded by orjson): peewee's rows cost more than the statement
    (a batch of another process re-reads the hundreds of incidents the last one changed).
    """
    fields = Incident._meta.sorted_fields
    columns: list[Any] = [f.cast("text") if isinstance(f, JSONField) else f for f in fields]
    if versioned:
        columns.append(SQL("xmin::text"))
    sql, params = Incident.select(*columns).where(where).order_by(Incident.last_event_at.desc()).sql()
    names, converters = _conversions()
    rows = []
    for values in database.execute_sql(sql, params).fetchall():
        data = dict(zip(names, values, strict=False))  # (the version, when read, comes last)
        for name, convert in converters:
            value = data[name]
            if value is not None:
                data[name] = convert(value)
        row = Incident(__no_default__=1)
        row.__data__ = data
        if versioned:
            row.row_version = values[-1]  # type: ignore[attr-defined]
        rows.append(row)
    return rows


@functools.cache
def _conversions() -> tuple[list[str], list[tuple[str, Callable[[Any], Any]]]]:
    """The names of :class:`Incident`'s fields, and the converter of each whose driver value is not the model's."""
    fields = Incident._meta.sorted_fields
    converters: list[tuple[str, Callable[[Any], Any]]] = []
    for f in fields:
        if isinstance(f, JSONField):
            converters.append((f.name, orjson.loads))
        elif isinstance(f, UUIDField | TimestampField):
            converters.append((f.name, f.python_value))
    return [f.name for f in fields], converters


#: Out-of-date entries the process's index may hold before it is built anew, however few incidents are live.
_MIN_REBUILD = 1_000

#: A row and its version (``xmin`` as text) when it was read or saved.
Versioned = tuple[str, Incident]


class HeldIncidents:
    """Incident rows as this process last read or saved them, by id, with their versions."""

    def __init__(self) -> None:
        self._rows: dict[str, Versioned] = {}
        #: PERF: the matching state of each row as read, by row id, with its version: a batch's candidates are
        #: thousands, the incidents it changes a few hundred, and working the state out costs more than placing.
        self._states: dict[str, tuple[str, OpenIncident]] = {}
        #: The states :meth:`take` handed out, kept by :meth:`put` for the rows that come back as they were.
        self._lent: dict[str, tuple[str, OpenIncident]] = {}
        self._mutex = threading.Lock()
        #: The index of the states lent (:meth:`_index`), and how many states it indexed were replaced since built.
        self._base: Candidates | None = None
        self._replaced = 0
        #: The index :meth:`take` last returned (an overlay over :attr:`_base`), until :meth:`put`.
        self._overlay: Candidates | None = None
        #: Rows the last batch saved, by id: the state it changed (which :attr:`_base` indexes as lent), the
        #: keys its overlay indexed for the incident since, and the row saved (see :meth:`_index`).
        self._grown: dict[str, tuple[OpenIncident, list[str], Incident]] = {}

    def take(
        self, since: datetime, flap_since: datetime, *, similarity_floor: float = 0.8
    ) -> tuple[Candidates, dict[str, Versioned]]:
        """The candidates :func:`candidates` would read, indexed, and their versioned rows (for :meth:`put`).

        Call in the batch's transaction, one batch of the process at a time (the index it returns
        overlays the process's, which the next call updates).
        """
        where = candidate_filter(since, flap_since)
        versions = row_versions(where)
        with self._mutex:
            kept, self._rows = self._rows, {}  # rows no batch wants now are dropped (not candidates any more)
            states, self._states = self._states, {}
            grown, self._grown = self._grown, {}
        taken = {i: kept[i] for i in versions if i in kept and kept[i][0] == versions[i]}
        missing = [i for i in versions if i not in taken]
        if missing:
            for row in read_incidents(uuid_in(Incident.id, missing), versioned=True):
                taken[str(row.id)] = (row.row_version, row)  # type: ignore[attr-defined]
        lent: dict[str, tuple[str, OpenIncident]] = {}
        for i, (version, row) in taken.items():
            state = states.get(i)
            lent[i] = state if state is not None and _as_read(state, version, row) else (version, matching_state(row))
        ordered = sorted(taken, key=lambda i: taken[i][1].last_event_at, reverse=True)
        incidents = [lent[i][1] for i in ordered]
        index = Candidates(
            incidents, similarity_floor=similarity_floor, base=self._index(lent, similarity_floor, grown)
        )
        with self._mutex:
            self._lent, self._overlay = lent, index
        return index, taken

    def _index(
        self,
        lent: dict[str, tuple[str, OpenIncident]],
        floor: float,
        grown: dict[str, tuple[OpenIncident, list[str], Incident]],
    ) -> Candidates:
        """The process's index, holding every state of ``lent`` (PERF: only the states new since are indexed).

        States it indexed that are no longer lent (their incidents changed or left the candidates) stay
        in it until they outnumber the live ones; then it is built anew. PERF: the state of a row this
        process's last batch saved replaces the one that batch changed without being indexed anew: its
        keys are those the index holds for the incident, and those the batch added (``grown``).
        """
        base = self._base
        if base is not None and base.floor == floor:
            for i, (_, state) in lent.items():
                held = base.by_id.get(i)
                if held is state:
                    continue
                was = grown.get(i)
                if held is not None and was is not None and was[0] is held and getattr(state, "row", None) is was[2]:
                    base.by_id[i] = state  # its keys: the changed state's as indexed, and those the batch added
                    for key in was[1]:
                        base.index_key(i, key)
                    continue
                self._replaced += held is not None
                base.add(state)
            if self._replaced + len(base.by_id) - len(lent) <= max(len(lent), _MIN_REBUILD):
                return base
        self._base, self._replaced = Candidates((s for _, s in lent.values()), similarity_floor=floor), 0
        return self._base

    def put(self, rows: dict[str, Versioned]) -> None:
        """Keep ``rows`` (after the transaction that read or saved them committed)."""
        with self._mutex:
            lent, self._lent = self._lent, {}
            overlay, self._overlay = self._overlay, None
        # A state stays with its row when the batch left both as read (a row it saved has a new version).
        kept = {i: lent[i] for i, (version, row) in rows.items() if _as_read(lent.get(i), version, row)}
        added = _added_keys(overlay) if overlay is not None else {}
        grown: dict[str, tuple[OpenIncident, list[str], Incident]] = {}
        for i, (_, row) in rows.items():
            if i not in kept:
                row.match_keys = as_jsonb(row.match_keys)  # PERF: a row as read is in that order already
                state = lent.get(i)
                # (A row saved with no keys reads as the keys of an old row, :func:`.placing._legacy_keys`: indexed anew.)
                if (
                    state is not None
                    and getattr(state[1], "row", None) is row
                    and (row.match_keys or not row.event_count)
                ):
                    grown[i] = (state[1], added.get(i, []), row)
        with self._mutex:
            self._rows.update(rows)
            self._states.update(kept)
            self._grown = grown

    def clear(self) -> None:
        with self._mutex:
            self._rows, self._states, self._lent = {}, {}, {}
            self._base, self._replaced, self._overlay, self._grown = None, 0, None, {}


def _added_keys(overlay: Candidates) -> dict[str, list[str]]:
    """Incident id -> the keys ``overlay`` (a batch's index) indexed for it: those its events added."""
    added: dict[str, list[str]] = {}
    for key, ids in overlay._index.items():
        for i in ids:
            added.setdefault(i, []).append(key)
    return added


def _as_read(state: tuple[str, OpenIncident] | None, version: str, row: Incident) -> bool:
    """Whether ``state`` is the matching state of ``row`` at ``version`` (worked out from it, as read)."""
    return state is not None and state[0] == version and getattr(state[1], "row", None) is row


def as_jsonb(keys: dict[str, Any]) -> dict[str, Any]:
    """``keys`` in the order PostgreSQL's ``jsonb`` gives an object's keys back (shorter first, then bytewise).

    Which of an incident's keys is weighed first words its reasons (:func:`.evidence.weigh`): a kept row
    must give them in the order a read one does.
    """
    # UTF-8 keeps code point order, so bytewise is the strings' own order; only lengths differ past ASCII.
    order = sorted(keys)
    if all(map(str.isascii, order)):
        order.sort(key=len)  # PERF: stable, and both sorts keyed in C (a Python key was 12 % of a correlator)
    else:
        order.sort(key=lambda k: len(k.encode()))
    if order == list(keys):
        return keys
    return {k: keys[k] for k in order}


def versions_of(incident_ids: list[str]) -> dict[str, str]:
    """The row versions of these incidents as the current transaction sees them (after it saved them)."""
    if not incident_ids:
        return {}
    return row_versions(uuid_in(Incident.id, incident_ids))


def row_versions(where: Any) -> dict[str, str]:
    """Incident id -> row version (``xmin``), as text, of the incidents ``where`` holds (PostgreSQL).

    PERF: read through the cursor, as text: thousands of candidates per batch, where peewee's rows
    and UUID conversions cost more than the statement.
    """
    sql, params = Incident.select(Incident.id.cast("text"), SQL("xmin::text")).where(where).sql()
    return dict(database.execute_sql(sql, params).fetchall())

"""The correlator's storage side: load open incidents and topology, apply placements, record why.

Open, flapping and acknowledged incidents take new events (:data:`LIVE_STATUSES`); a resolution
event closes any of them. Incidents an operator resolved or closed take none: a new matching event
opens a new incident. Operators' changes (:mod:`app.incidents.lifecycle`) take this module's lock
too (:func:`hold_lock`), so a batch never writes back an incident changed since it read it.

On PostgreSQL a batch is decided in one transaction that first takes an advisory lock, so
correlator processes decide one batch at a time and several processes give the incidents one
would: an event may relate to any open incident (by host, service, upstream device or pattern),
so no narrower key could keep two batches from racing over the same incident. Only the decision
is serialized: reading the events and computing their templates happen before the lock, and so
does placing them (:mod:`.rehearsal`): under the lock a batch only checks that no incident its
placements relied on changed since (else it places them again there, re-reading only the incidents
changed since its process's last batch saved them, :mod:`.held`); the
decision saves the incidents it changed and records its placements in one row
(:class:`app.models.CorrelationDecision`); stamping the events with their incidents' ids and
recording why (most of a batch's writes) happen in a second transaction after the lock, which
deletes that row. Until then its events count as correlated, and whichever transaction deletes
the row writes it out: the batch itself, its redelivery after a crash, a batch whose events it
claimed, or an operator's change (:func:`hold_lock`). On SQLite (one writer) a batch is one
transaction.

Because batches take turns, a backlog of many small batches (the receivers send small ones, and
more of them while the database is away) drains at the pace of the per-batch cost, not the
per-event one. So a batch that arrives late (its newest event received more than
:data:`CLAIM_AFTER_S` ago) also claims, under the lock, up to ``claim`` events not yet correlated
that were received after its oldest, in order: the messages that carry them find them correlated
and only hand them on to the rule evaluator. Each message still hands its own events on, so the
evaluator gets every event id once correlated, whichever batch correlated it.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

import orjson

from ..db import database, in_transaction, is_postgres, uuid_in
from ..errors import TransientError
from ..models import CorrelationDecision, EventCorrelation, Incident, ProcessedEvent
from ..topology.store import load_graph
from .folded import again, state_changes
from .grouping import Candidates, GroupingSettings, OpenIncident, Topology, configured
from .held import HeldIncidents, Versioned, candidate_filter, candidates, row_versions, versions_of
from .placing import LIVE_STATUSES, Batch, facts_for, finish, flush_decisions, grow, matching_state
from .rehearsal import OUTCOMES, Rehearsal, Rehearsing, Unsure, check

__all__ = ["LIVE_STATUSES", "correlate_batch", "finish", "grow", "hold_lock", "load_events", "load_topology",
           "matching_state"]  # fmt: skip

logger = logging.getLogger(__name__)

#: Advisory lock key of the correlator (any constant; it only needs to be the same in every process).
LOCK_KEY = 7_271_001
#: Events not yet correlated a late batch claims (besides its own); see :func:`correlate_batch`.
#: About 0.2 ms each under the lock, against 15-25 ms of fixed cost per batch.
CLAIM = 1000
#: Seconds after which a batch counts as late: the pipeline is behind and claiming pays.
CLAIM_AFTER_S = 5.0
#: Columns only operators write (app/incidents/lifecycle.py): a batch's upsert never overwrites them.
_OPERATORS_COLUMNS = frozenset({"assignee", "acknowledged_at", "acknowledged_by", "resolved_at", "resolved_by",
                                "merged_into"})  # fmt: skip
_topology: tuple[float, Topology] | None = None
#: The incidents this process's last batches saved (see :mod:`.held`).
_held = HeldIncidents()
#: A decision as recorded (:class:`app.models.CorrelationDecision`): event id -> incident id, and the links.
Decision = tuple[dict[str, str], list[dict[str, Any]]]
#: Whether each of this process's last rehearsals stood (see :func:`_rehearsing`).
_stood: deque[bool] = deque(maxlen=8)
#: Batches since this process last rehearsed one.
_since_rehearsal = 0
#: While most rehearsals do not stand, one batch in this many is rehearsed (to notice when they would again).
PROBE_EVERY = 8
#: One batch of a process at a time between its rehearsal and its decision: the next one rehearses on
#: the rows the last one saved (two at once would each read every candidate the other holds).
_turn = threading.RLock()


def load_topology(*, max_age_s: float = 10.0) -> Topology:
    """The topology's graph (:class:`app.topology.graph.Graph`), its version re-checked at most every ``max_age_s``.

    The graph itself is rebuilt only when the version changed (:func:`app.topology.store.load_graph`).
    """
    global _topology
    now = time.monotonic()
    if _topology is not None and now - _topology[0] < max_age_s:
        return _topology[1]
    topology = load_graph(max_age_s=0)
    _topology = (now, topology)
    return topology


def _at(event: dict[str, Any]) -> datetime:
    return event["received_at"]


#: Columns the correlator reads, under the names :func:`app.correlation.grouping.choose` uses.
_COLUMNS: dict[str, Any] = {
    "id": ProcessedEvent.id, "host": ProcessedEvent.source_host, "service": ProcessedEvent.source_service,
    "title": ProcessedEvent.title, "severity": ProcessedEvent.severity, "event_type": ProcessedEvent.event_type,
    "fingerprint": ProcessedEvent.fingerprint, "metadata": ProcessedEvent.event_data,
    "received_at": ProcessedEvent.received_at, "correlation_id": ProcessedEvent.correlation_id,
    "last_seen_at": ProcessedEvent.last_seen_at,
}  # fmt: skip


def _load(event_ids: list[str]) -> list[dict[str, Any]]:
    return load_events(uuid_in(ProcessedEvent.id, event_ids))


def _load_with_repeats(
    event_ids: list[str], cfg: GroupingSettings
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The events, and those of them whose last occurrence may change their incident (:func:`.folded.state_changes`)."""
    loaded = _load(event_ids)
    return loaded, state_changes(loaded, load_topology(), cfg) if any(map(again, loaded)) else []


def load_events(where: Any, *, limit: int | None = None) -> list[dict[str, Any]]:
    """The events ``where`` holds, oldest first (at most ``limit``)."""
    # PERF: rows as the driver returns them (metadata as text, for orjson), not model instances
    # nor peewee's per-value conversions: they cost more than the correlation itself.
    columns = [c.cast("text") if k == "metadata" else c for k, c in _COLUMNS.items()]
    query = ProcessedEvent.select(*columns).where(where).order_by(ProcessedEvent.received_at).limit(limit)
    uuid_value, time_value = ProcessedEvent.id.python_value, ProcessedEvent.received_at.python_value
    events: list[dict[str, Any]] = []
    for row in database.execute(query).fetchall():
        event = dict(zip(_COLUMNS, row, strict=True))
        event["id"] = str(uuid_value(event["id"]))
        event["correlation_id"] = str(uuid_value(event["correlation_id"])) if event["correlation_id"] else None
        event["received_at"] = time_value(event["received_at"])
        event["last_seen_at"] = time_value(event["last_seen_at"])
        event["metadata"] = orjson.loads(event["metadata"]) if event["metadata"] else None
        events.append(event)
    return events


def _insert_links(links: list[dict[str, Any]]) -> None:
    if not links:
        return
    if is_postgres():
        # PERF: one statement with one array per column: peewee's insert_many, or a VALUES list
        # of the batch's rows, costs more to build and to parse.
        columns = (
            [str(lk["correlation_id"]) for lk in links],
            [lk["correlation_type"] for lk in links],
            [lk["primary_event_id"] and str(lk["primary_event_id"]) for lk in links],
            [orjson.dumps(lk["related_event_ids"]).decode() for lk in links],
            [lk["correlation_score"] for lk in links],
            [lk["correlation_reason"] for lk in links],
        )
        database.execute_sql(
            "INSERT INTO events.event_correlations (correlation_id, correlation_type, primary_event_id, related_event_ids,"
            " correlation_score, correlation_reason, created_at)"
            " SELECT c, t, p, r::jsonb, s, w, now()"
            " FROM unnest(%s::uuid[], %s::text[], %s::uuid[], %s::text[], %s::float8[], %s::text[])"
            " WITH ORDINALITY AS v(c, t, p, r, s, w, n) ORDER BY n",
            columns,
        )
        return
    for k in range(0, len(links), 500):
        EventCorrelation.insert_many(links[k : k + 500]).execute()


def _save_incidents(rows: list[Incident], *, prepared: bytes | None = None) -> None:
    """Insert or update the batch's incidents in one statement (PERF: not one UPDATE per incident).

    ``prepared``: the statement :func:`_saving` made of these rows (PostgreSQL), when made already.
    """
    if not rows:
        return
    if is_postgres():
        cursor = database.cursor()
        try:
            cursor.execute(prepared or _saving(rows))  # no parameters: the values are bound ('%' is no placeholder)
        finally:
            cursor.close()
        return
    fields = [f for f in Incident._meta.sorted_fields if f.name != "id" and f.name not in _OPERATORS_COLUMNS]
    data = [{f.name: getattr(row, f.name) for f in Incident._meta.sorted_fields} for row in rows]
    for k in range(0, len(data), 500):
        Incident.insert_many(data[k : k + 500]).on_conflict(conflict_target=[Incident.id], preserve=fields).execute()


#: PostgreSQL type of each kind of :class:`app.models.Incident` column.
_PG_TYPES = {"UUIDField": "uuid", "CharField": "text", "DoubleField": "float8", "IntegerField": "int4",
             "JSONField": "jsonb", "TimestampField": "timestamptz"}  # fmt: skip
_UPSERT: str | None = None


def _upsert() -> str:
    """The statement saving incidents: one JSON array per column, zipped into rows; operators' columns kept on update."""
    global _UPSERT
    if _UPSERT is None:
        fields = Incident._meta.sorted_fields
        names = [f.column_name for f in fields]
        types = [_PG_TYPES[type(f).__name__] for f in fields]
        arrays = ", ".join(
            "jsonb_array_elements(%s::jsonb)" if t == "jsonb" else "json_array_elements_text(%s::json)" for t in types
        )
        values = ", ".join(f"c{k}" if t in ("jsonb", "text") else f"c{k}::{t}" for k, t in enumerate(types))
        kept = [n for f, n in zip(fields, names, strict=True) if n != "id" and f.name not in _OPERATORS_COLUMNS]
        _UPSERT = (
            f"INSERT INTO events.incidents ({', '.join(names)}) SELECT {values}"
            f" FROM ROWS FROM ({arrays}) AS v({', '.join(f'c{k}' for k in range(len(names)))})"
            f" ON CONFLICT (id) DO UPDATE SET {', '.join(f'{n} = EXCLUDED.{n}' for n in kept)}"
        )
    return _UPSERT


def _saving(rows: list[Incident]) -> bytes:
    """The statement saving ``rows`` (PostgreSQL), its values bound: PERF, made before the lock when it can be.

    PERF: each column goes as one JSON array (orjson writes uuids, instants and floats as the server reads them
    back), so the statement binds one string per column: binding each value of each column as a literal
    (psycopg2's arrays) cost three times as much, for the same rows saved.
    """
    values = [row.__data__ for row in rows]  # as the fields' getters give them (None for a value never set)
    columns = [
        orjson.dumps([data.get(f.name) for data in values], option=orjson.OPT_NAIVE_UTC).decode()
        for f in Incident._meta.sorted_fields
    ]
    cursor = database.cursor()
    try:
        return bytes(cursor.mogrify(_upsert(), columns))
    finally:
        cursor.close()


def _assign(assigned: dict[str, str]) -> int:
    """Stamp each event not yet correlated with its incident's id; returns how many were stamped.

    PERF: one statement for the batch on PostgreSQL.
    """
    if not assigned:
        return 0
    if is_postgres():
        # num_nulls() rather than "correlation_id IS NULL", which the planner may answer from the
        # index on correlation_id: that reads every event not yet correlated (a whole backlog)
        # where looking the batch's events up by id reads 500.
        cursor = database.execute_sql(
            "UPDATE events.processed_events AS p SET correlation_id = v.cid"
            " FROM unnest(%s::uuid[], %s::uuid[]) AS v(id, cid) WHERE p.id = v.id AND num_nulls(p.correlation_id) = 1",
            (list(assigned), list(assigned.values())),
        )
        return int(cursor.rowcount)
    by_incident: dict[str, list[str]] = {}
    for event_id, incident_id in assigned.items():
        by_incident.setdefault(incident_id, []).append(event_id)
    return sum(
        ProcessedEvent.update(correlation_id=incident_id)
        .where(ProcessedEvent.id.in_(ids) & ProcessedEvent.correlation_id.is_null())
        .execute()
        for incident_id, ids in by_incident.items()
    )


class _Raced(TransientError):
    """An event of the batch was correlated by another delivery between its read and its stamping (SQLite)."""


def correlate_batch(
    event_ids: list[str],
    *,
    cfg: GroupingSettings | None = None,
    claim: int = 0,
    claim_after_s: float = CLAIM_AFTER_S,
    rehearsed: Callable[[], None] | None = None,
) -> dict[str, str]:
    """Correlate the stored events ``event_ids``; returns event id -> correlation id (incident) for them.

    Events that already carry a correlation id (a redelivered batch, or events a late batch
    claimed) are left as they are. On return every event of ``event_ids`` that was placed carries
    its incident's id (it is ready for the rule evaluator).

    Parameters:
      claim: On PostgreSQL, when the batch is late (its newest event received more than
        ``claim_after_s`` seconds ago), also correlate up to this many events not yet correlated
        that were received after the batch's oldest, in order: a backlog of small batches then
        drains at the per-event cost. Claiming stops before a claimed event that would stay
        uncorrelated (a resolution with no open problem): that event and those after it are left
        for their own messages to decide, as without a claim. 0 claims nothing.
      claim_after_s: Seconds, see ``claim``.
      rehearsed: Called between the batch's rehearsal and its decision under the lock (tests: another
        process's batch meanwhile).
    """
    cfg = cfg or configured()
    # PERF: the events are read before the lock is taken (they do not change but for their
    # correlation id, which is checked again under the lock).
    # With them, those placed already that occurred again since (de-duplication folded them) and may
    # reopen or close their incident.
    loaded, repeats = in_transaction(partial(_load_with_repeats, event_ids, cfg))
    if loaded and all(e["correlation_id"] for e in loaded) and not repeats:
        # PERF: a batch another one claimed (or a redelivery): nothing to decide, no need to queue for the lock.
        return {e["id"]: e["correlation_id"] for e in loaded}
    if not (claim > 0 and loaded and is_postgres() and _late(loaded, claim_after_s)):
        claim = 0
    # PERF: the events a late batch may claim are read before the lock too; under it, only whether
    # another batch took them meanwhile is checked.
    candidates = in_transaction(partial(_candidates, loaded, claim)) if claim else []
    if not is_postgres():
        # SQLite has one writer anyway: decide and write in one transaction.
        try:
            return in_transaction(partial(_correlate_at_once, loaded, cfg, recheck=False, repeats=repeats))
        except _Raced:
            logger.info("Events of a batch of %d were correlated meanwhile; deciding the batch again.", len(loaded))
            return in_transaction(partial(_correlate_at_once, loaded, cfg, recheck=True, repeats=repeats))
    with _turn:
        # PERF: placed before the lock (:mod:`.rehearsal`); under it only checked, when nothing it relied on changed.
        rehearsal = None
        if _rehearsing():
            rehearsal = in_transaction(partial(_rehearse, loaded, cfg, candidates=candidates, repeats=repeats))
        else:
            _prepare(loaded + candidates)
        if rehearsed is not None:
            rehearsed()
        try:
            placed, decisions, rows, made = in_transaction(
                partial(_decide, loaded, cfg, candidates=candidates, repeats=repeats, rehearsal=rehearsal)
            )
        except BaseException:
            if rehearsal is not None:
                _held.put(rehearsal.clean_rows())
            raise
        _held.put(rows)  # committed: the next batch of this process need not read these incidents again
    # Outside the lock: other batches are being decided meanwhile.
    in_transaction(partial(write_out, decisions, made=made))
    return placed


def _prepare(events: list[dict[str, Any]]) -> None:
    """PERF: work out, before the lock, the events' facts (templates, topology walks, keys) placing them needs.

    Not before the process's turn (:data:`_turn`), but in it: a batch waiting for its turn may find its
    events claimed by the one before it (a late batch claims the next ones'), and the facts of the batches
    waiting (thousands of objects each) only grew what the garbage collector's full collections scan.
    """
    topology = load_topology()
    for event in events:
        facts_for(event, topology)


def _late(events: list[dict[str, Any]], after_s: float) -> bool:
    newest = max(_at(e) for e in events)
    return (datetime.now(UTC) - newest).total_seconds() > after_s


def _candidates(events: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` events not yet stamped, received from the oldest of ``events`` on, not among them."""
    own = {e["id"] for e in events}
    since = min(_at(e) for e in events)
    rows = load_events(
        ProcessedEvent.correlation_id.is_null() & (ProcessedEvent.received_at >= since), limit=limit + len(own)
    )
    return [e for e in rows if e["id"] not in own][:limit]


def _pending() -> dict[str, tuple[str, str]]:
    """Events decided but not yet written out: event id -> (decision id, incident id)."""
    rows: Any = CorrelationDecision.select(CorrelationDecision.id, CorrelationDecision.assigned).tuples()
    pending: dict[str, tuple[str, str]] = {}
    for decision_id, assigned in rows:
        decision = str(decision_id)  # PERF: once per decision, not per event (a late batch's decides 1,500)
        for event_id, incident_id in orjson.loads(assigned).items():
            pending[event_id] = (decision, incident_id)
    return pending


def _decisions() -> set[str]:
    """The ids of the decisions not yet written out."""
    rows: Any = CorrelationDecision.select(CorrelationDecision.id).tuples()
    return {str(decision_id) for (decision_id,) in rows}


def _stamped(event_ids: list[str]) -> dict[str, str]:
    """Which of these events carry a correlation id now, and which."""
    query: Any = ProcessedEvent.select(ProcessedEvent.id, ProcessedEvent.correlation_id).where(
        uuid_in(ProcessedEvent.id, event_ids) & ProcessedEvent.correlation_id.is_null(False)
    )
    return {str(event_id): str(cid) for event_id, cid in query.tuples()}


def _inputs(
    loaded: list[dict[str, Any]], candidates: list[dict[str, Any]], repeats: list[dict[str, Any]]
) -> tuple[dict[str, str], list[str], list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """What the batch has to decide now: which of its events were placed (and by which decisions not yet
    written out), the events to place (with the ``candidates`` no batch took, oldest first), the repeats
    to decide (with their incidents as of now), the claimed events and the batch's own to place.
    """
    # In this order: a decision deleted (written out) after the first read has stamped its events before the second.
    pending = _pending()
    stamped = _stamped([e["id"] for e in loaded + candidates])
    done = {i: stamped.get(i) or pending[i][1] for i in (e["id"] for e in loaded) if i in stamped or i in pending}
    theirs = sorted({pending[i][0] for i in done if i in pending and i not in stamped})
    events = [e for e in loaded if e["id"] not in done]
    # Their incident as of now (a merge may have moved them since they were read).
    repeats = [dict(e, correlation_id=done[e["id"]]) for e in repeats if e["id"] in done]
    own = [e["id"] for e in events]
    claimed = [e for e in candidates if e["id"] not in stamped and e["id"] not in pending]
    if claimed and (own or repeats):
        events = sorted(events + claimed, key=_at)
    return done, theirs, events, repeats, claimed, own


def _what(
    events: list[dict[str, Any]], claimed: list[dict[str, Any]], repeats: list[dict[str, Any]]
) -> tuple[Any, ...]:
    """What a batch decides, to compare a rehearsal's with the decision's."""
    return (
        tuple(e["id"] for e in events),
        tuple(e["id"] for e in claimed),
        tuple((e["id"], e["correlation_id"], e["last_seen_at"]) for e in repeats),
    )


def _window(
    events: list[dict[str, Any]], repeats: list[dict[str, Any]], cfg: GroupingSettings
) -> tuple[datetime, datetime]:
    """Since when the batch's candidates had an event, and since when the closed ones were closed."""
    first = min([_at(e) for e in events[:1]] + [e["last_seen_at"] for e in repeats])
    return first - cfg.lookback, first - cfg.flap_window


def _rehearse(
    loaded: list[dict[str, Any]],
    cfg: GroupingSettings,
    *,
    candidates: list[dict[str, Any]],
    repeats: list[dict[str, Any]],
) -> Rehearsal | None:
    """Place the batch before the lock against the candidates as they are now (:mod:`.rehearsal`); reads only.

    None when there is nothing to place.
    """
    _, _, events, repeats, claimed, own = _inputs(loaded, candidates, repeats)
    if not own and not repeats:
        return None
    topology = load_topology()
    every = [*repeats, *filter(again, events)]
    _prepare([*events, *every])  # only the events still to place (see there)
    since, flap_since = _window(events, every, cfg)
    incidents, taken = _held.take(since, flap_since, similarity_floor=cfg.similarity)
    rehearsal = Rehearsal(_what(events, claimed, repeats), topology, since, flap_since, taken)
    batch = Rehearsing(incidents, topology, cfg, flush=flush_decisions(write_out, _decisions))
    rehearsal.batch = batch
    try:
        _place(events, batch, claimed={e["id"] for e in claimed}, repeats=every)
    except Unsure as e:
        rehearsal.unsure = str(e)
        return rehearsal
    for row, inc in batch.changed.values():
        finish(row, inc, topology, cfg)
    if batch.changed:
        rehearsal.saving = _saving([row for row, _ in batch.changed.values()])
    return rehearsal


def _decide(
    loaded: list[dict[str, Any]],
    cfg: GroupingSettings,
    *,
    candidates: list[dict[str, Any]],
    repeats: list[dict[str, Any]],
    rehearsal: Rehearsal | None = None,
) -> tuple[dict[str, str], list[str], dict[str, Versioned], dict[str, Decision]]:
    """Place the events (and the ``candidates`` to claim no batch took) in incidents under the correlator's lock.

    ``repeats`` are events of ``loaded`` placed already whose last occurrence may change their
    incident's state (:func:`.folded.state_changes`): the batch decides them too.

    One transaction, the serialized part of correlating: it saves the incidents the batch changed
    and records the placements as a :class:`app.models.CorrelationDecision`, which
    :func:`write_out` writes out after the lock is released. Events of a decision not yet written
    out count as correlated, as stamped ones do. With a ``rehearsal`` of the same events that still
    stands (:func:`.rehearsal.check`), its placements are the decision; else the events are placed here.

    Returns:
      Event id -> correlation id for the events of ``loaded``, the ids of the decisions to
      write out before they are handed on (this one's, and those that placed its events before),
      the incidents' rows as saved, for :data:`_held` once the transaction committed, and this
      one's decision by id (placements and links, for :func:`write_out`), when it made one.
    """
    database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
    done, theirs, events, repeats, claimed, own = _inputs(loaded, candidates, repeats)
    if not own and not repeats:
        return done, theirs, {}, {}
    decided = _rehearsed(rehearsal, _what(events, claimed, repeats), cfg)
    if decided is None:
        assigned, links, rows = _place_and_save(
            events, cfg, claimed={e["id"] for e in claimed}, held=_held, repeats=repeats
        )
    else:
        assigned, links, rows = decided
    if not assigned:
        return done, theirs, rows, {}
    decision = uuid.uuid4()
    CorrelationDecision.insert(
        id=decision,
        assigned=orjson.dumps(assigned).decode(),
        links=orjson.dumps(links, default=str).decode(),
    ).execute()
    if claimed:
        logger.debug("A late batch of %d correlated %d events of other batches.", len(own), len(assigned) - len(own))
    placed = {**done, **{i: assigned[i] for i in own if i in assigned}}
    return placed, [*theirs, str(decision)], rows, {str(decision): (assigned, links)}


def _count(outcome: str) -> None:
    OUTCOMES[outcome] += 1
    if outcome in ("rehearsed", "conflict"):
        _stood.append(outcome == "rehearsed")
    logger.debug("Correlator batch: %s.", outcome)


def _rehearsing() -> bool:
    """Whether to rehearse the next batch (:mod:`.rehearsal`).

    Not while most of the last rehearsals did not stand: then other processes keep changing the
    incidents this one's batches relate to (consecutive batches of one stream share their incidents),
    and the batch is placed under the lock anyway, where a rehearsal only adds the rows it changed to
    read again. One in :data:`PROBE_EVERY` is still rehearsed, to notice when they stand again.
    """
    global _since_rehearsal
    _since_rehearsal += 1
    if len(_stood) >= 4 and sum(_stood) * 2 < len(_stood) and _since_rehearsal < PROBE_EVERY:
        return False
    _since_rehearsal = 0
    return True


def _rehearsed(
    rehearsal: Rehearsal | None, what: tuple[Any, ...], cfg: GroupingSettings
) -> tuple[dict[str, str], list[dict[str, Any]], dict[str, Versioned]] | None:
    """The rehearsal's placements, saved, when it decided what the batch decides now and still stands (under the lock).

    None when the batch must be placed anew; the rows the rehearsal left as read go back to :data:`_held` for that.
    """
    if rehearsal is None or rehearsal.batch is None:
        _count("skipped")
        return None
    batch = rehearsal.batch
    fresh = None
    if rehearsal.unsure is None and rehearsal.inputs == what and load_topology() is rehearsal.topology:
        versions = row_versions(candidate_filter(rehearsal.since, rehearsal.flap_since))
        fresh = check(rehearsal, versions, cfg)
    if fresh is None:
        _count("unsure" if rehearsal.unsure else "conflict")
        _held.put(rehearsal.consume())
        return None
    _count("rehearsed")
    rehearsal.consume()
    _save_incidents([row for row, _ in batch.changed.values()], prepared=rehearsal.saving)
    saved = versions_of(sorted(batch.changed))
    rows = {i: (saved[i], row) for i, (row, _) in batch.changed.items() if i in saved}
    rows.update({i: (v, r) for i, (v, r) in rehearsal.taken.items() if i not in batch.changed and versions.get(i) == v})
    rows.update(fresh)
    return batch.assigned, batch.links, rows


def _place_and_save(
    events: list[dict[str, Any]],
    cfg: GroupingSettings,
    *,
    claimed: set[str],
    held: HeldIncidents | None = None,
    repeats: list[dict[str, Any]] | None = None,
) -> tuple[dict[str, str], list[dict[str, Any]], dict[str, Versioned]]:
    """Place ``events`` (oldest first) and the last occurrences of ``repeats`` (placed already) and of
    ``events`` that occurred again; save the incidents they changed.

    Returns:
      The placements, the links, and (with ``held``, the incidents it holds) the candidates' rows
      as saved, with their versions.
    """
    topology = load_topology()
    repeats = [*(repeats or []), *filter(again, events)]
    since, flap_since = _window(events, repeats, cfg)
    taken: dict[str, Versioned] = {}
    incidents: Candidates | list[OpenIncident]
    if held is None:
        incidents = candidates(since, flap_since)
    else:
        incidents, taken = held.take(since, flap_since, similarity_floor=cfg.similarity)
    batch = Batch(incidents, topology, cfg, flush=flush_decisions(write_out, _decisions))
    _place(events, batch, claimed=claimed, repeats=repeats)
    changed, assigned, links = batch.changed, batch.assigned, batch.links
    for row, inc in changed.values():
        finish(row, inc, topology, cfg)
    _save_incidents([row for row, _ in changed.values()])
    if held is None:
        return assigned, links, {}
    # A row is kept as this transaction saved it (its new version), or as read when the batch left it as it was:
    # PERF: those it left are as read (taken under the lock, which every writer of incidents holds).
    versions = versions_of(sorted(changed))
    rows = {i: (versions[i], changed[i][0]) for i in changed if i in versions}
    rows.update({i: (v, row) for i, (v, row) in taken.items() if i not in changed})
    return assigned, links, rows


def write_out(decisions: list[str], *, made: dict[str, Decision] | None = None) -> int:
    """Stamp the events of these decisions with their incidents' ids and record why; returns how many were stamped.

    Deleting a decision is what entitles a transaction to write it: two transactions writing the
    same one (a redelivered batch, an operator's change) write it once, and the second returns
    after the first committed. Call inside a transaction.

    Parameters:
        made: decisions this process made, by id, as recorded (PERF: not read back and decoded).
    """
    if not decisions:
        return 0
    made = made or {}
    cursor = database.execute_sql(
        "DELETE FROM events.correlation_decisions WHERE id = ANY(%s::uuid[]) RETURNING id::text,"
        " CASE WHEN id = ANY(%s::uuid[]) THEN NULL ELSE assigned END, CASE WHEN id = ANY(%s::uuid[]) THEN NULL ELSE links END",
        (sorted(decisions), sorted(made), sorted(made)),
    )
    assigned: dict[str, str] = {}
    links: list[dict[str, Any]] = []
    for decision, assigned_json, links_json in cursor.fetchall():
        if decision in made:
            assigned.update(made[decision][0])
            links += made[decision][1]
        else:
            assigned.update(orjson.loads(assigned_json))
            links += orjson.loads(links_json)
    stamped = _assign(assigned)
    if stamped != len(assigned):
        # Cannot happen while every placement goes through the lock; say so rather than hide it.
        logger.warning("%d of %d decided events were correlated already.", len(assigned) - stamped, len(assigned))
    _insert_links(links)
    return stamped


def _correlate_at_once(
    loaded: list[dict[str, Any]], cfg: GroupingSettings, *, recheck: bool, repeats: list[dict[str, Any]]
) -> dict[str, str]:
    """Place the events and write everything in one transaction (SQLite, which has one writer).

    Raises:
      _Raced: an event was correlated after ``loaded`` was read; the transaction must roll back.
    """
    events = loaded
    if recheck:
        stamped = _stamped([e["id"] for e in events])
        events = [dict(e, correlation_id=stamped.get(e["id"], e["correlation_id"])) for e in events]
    done = {e["id"]: e["correlation_id"] for e in events if e["correlation_id"]}
    events = [e for e in events if not e["correlation_id"]]
    if not events and not repeats:
        return done
    assigned, links, _ = _place_and_save(events, cfg, claimed=set(), repeats=repeats)
    if _assign(assigned) != len(assigned):
        raise _Raced(f"{len(assigned)} events to stamp, some already correlated")
    _insert_links(links)
    return {**done, **assigned}


def _place(
    events: list[dict[str, Any]],
    batch: Batch,
    *,
    claimed: frozenset[str] | set[str] = frozenset(),
    repeats: Sequence[dict[str, Any]] = (),
) -> None:
    """Place each event, oldest first, in ``batch`` (its candidates, and the incidents it opens: :mod:`.placing`).

    The last occurrences of ``repeats`` (events placed already, or in this batch) take their turn
    at their time, among the events (:meth:`.placing.Batch.repeat`).

    From the first ``claimed`` event that stays uncorrelated on, the claimed events are skipped:
    its own message decides it again later, and must find the incidents as they were at its turn
    (a linkUp with no open linkDown must not close the incident a later linkDown opens).

    The batch then holds the changed incidents (row and matching state), event id -> incident id, and the links.
    """
    skipping = False
    turns = [(_at(e), False, e) for e in events] + [(e["last_seen_at"], True, e) for e in repeats]
    for at, repeat, event in sorted(turns, key=lambda turn: (turn[0], turn[1])):
        if repeat:
            batch.repeat(event, at)
            continue
        if skipping and event["id"] in claimed:
            continue
        if not batch.place(event, at):
            skipping = skipping or event["id"] in claimed


def hold_lock() -> None:
    """Take the correlator's lock until the transaction ends (PostgreSQL; SQLite has one writer anyway).

    Operators' changes to incidents take it so that a correlator batch, which writes back the
    incidents it read, never writes over a status changed meanwhile.
    """
    if is_postgres():
        database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        # Decisions are written out after the lock: the events of those decided before it must
        # carry their incidents' ids before an operator's change reads or moves them.
        write_out(list(_decisions()))


def flapping_incidents(correlation_ids: list[str]) -> set[str]:
    """Which of these incidents are flapping (their events must not re-trigger rules)."""
    ids = sorted({c for c in correlation_ids if c})  # a batch's events share a few incidents
    if not ids:
        return set()
    return {
        str(r.id) for r in Incident.select(Incident.id).where(Incident.id.in_(ids) & (Incident.status == "flapping"))
    }

"""Store a micro-batch of raw items: raw rows, de-duplicated processed events, once.

Everything for one batch happens in one transaction, so a redelivered message
either finds all of its work done or none of it:

1. Raw rows are inserted with ``ON CONFLICT (id) DO NOTHING RETURNING id``:
   only ids that are new go further (idempotent on redelivery; a concurrent
   duplicate blocks on the unique index until the first transaction ends).
2. New events are grouped by fingerprint inside the batch, then each
   fingerprint is upserted in ``events.event_fingerprints``. The upsert decides,
   under the row lock, whether the fingerprint's live event is still inside the
   de-duplication window (fold into it) or a new event starts.
3. New events are inserted; folded ones bump ``occurrences``/``last_seen_at``.

Rows are upserted in fingerprint order so concurrent batches lock in the same
order and cannot deadlock.

One item never fails its batch. Values PostgreSQL refuses (a NUL, a lone
surrogate) are found before the insert: syslog and SNMP input is kept with the
NUL escaped, other input is stored raw with the error. Anything else the
database refuses as data (``DataError``, ``IntegrityError``) is isolated by
bisecting the batch in savepoints: the rest is stored, the offender is stored
raw with the database's error. Only a failing dependency (database or broker
unreachable) fails the batch, so that the message is retried.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import peewee

from ..db import TRANSIENT_ERRORS, database, in_transaction, is_postgres
from ..errors import InvalidEvent, TransientError
from ..models import EventFingerprint, ProcessedEvent, RawEvent
from .limits import escape, storage_problem
from .normalize import normalize_item, received_time

logger = logging.getLogger(__name__)

#: Database errors that mean "these values cannot be stored": the item's fault, isolated, never retried.
DATA_ERRORS: tuple[type[Exception], ...] = (peewee.DataError, peewee.IntegrityError)

#: Errors that mean a dependency failed, not the input: they propagate, and the message is retried.
DEPENDENCY_ERRORS: tuple[type[BaseException], ...] = (TransientError, MemoryError, *TRANSIENT_ERRORS)
try:
    import psycopg2

    DEPENDENCY_ERRORS += (psycopg2.OperationalError, psycopg2.InterfaceError)
except ImportError:  # pragma: no cover - the embedded mode may run without the driver
    pass

#: Turns the driver's exceptions into peewee's, as peewee does around its own queries.
_DRIVER_ERRORS_AS_PEEWEE = peewee.__exception_wrapper__  # type: ignore[attr-defined]

#: Sources whose senders cannot be answered "400": a NUL in their input is escaped and the input parsed.
ESCAPED_SOURCES = ("syslog", "snmp")


@dataclass
class StoreResult:
    """What one batch did. Ids are strings."""

    new_raw: int = 0
    inserted: list[str] = field(default_factory=list)
    folded: list[str] = field(default_factory=list)
    errors: int = 0
    #: Live event ids of every parsed item of the batch (new or redelivered), for the correlator.
    event_ids: list[str] = field(default_factory=list)


@dataclass
class _Group:
    """Events of one fingerprint inside a batch."""

    first: dict[str, Any]
    count: int
    last_seen: datetime


def _parse(item: dict[str, Any]) -> dict[str, Any]:
    """Parse one item into an event whose every value PostgreSQL accepts.

    Raises:
      InvalidEvent: the input's own fault (unparseable, or a value that cannot be stored).
    """
    problem = storage_problem(item["payload"], prefix="payload")
    if problem is not None:
        raise InvalidEvent(problem[1], field=problem[0])
    event = normalize_item(item)
    problem = storage_problem(event)
    if problem is not None:
        raise InvalidEvent(problem[1], field=problem[0])
    return event


def parse_items(items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """Return (raw rows, events by id); an item's own fault becomes its raw row's processing error.

    Raises:
      DatabaseUnavailable, TransientError: a dependency of parsing failed (operators' parsing rules
        are read from the database); nothing is recorded against the input and the message is retried.
    """
    rows: list[dict[str, Any]] = []
    events: dict[str, dict[str, Any]] = {}
    for item in items:
        if item["source_type"] in ESCAPED_SOURCES:
            item = {**item, "payload": escape(item["payload"])}
        error: str | None = None
        fingerprint = None
        try:
            event = _parse(item)
            events[item["id"]] = event
            fingerprint = event["fingerprint"]
        except InvalidEvent as e:
            error = f"{e.field}: {e.message}" if e.field else e.message
        except DEPENDENCY_ERRORS:
            raise
        except Exception as e:  # noqa: BLE001 - a parser bug must not lose the input either
            logger.error("Parser failed on item %r.", item.get("id"), exc_info=True)
            error = f"internal parser error: {type(e).__name__}: {e}"
        source = item.get("source") or item["source_type"]
        rows.append(
            {
                "id": item["id"],
                "source_system": escape(str(source))[:255],
                "source_type": item["source_type"],
                "raw_data": item["payload"] if error is None else escape(item["payload"]),
                "received_at": received_time(item),
                "processed": error is None,
                "processing_errors": [escape(error)] if error else None,
                "fingerprint": fingerprint,
                "request_id": item.get("request_id"),
            }
        )
    return rows, events


def _group(events: list[dict[str, Any]]) -> dict[str, _Group]:
    groups: dict[str, _Group] = {}
    for event in sorted(events, key=lambda e: e["received_at"]):
        group = groups.get(event["fingerprint"])
        if group is None:
            groups[event["fingerprint"]] = _Group(event, 1, event["received_at"])
        else:
            group.count += 1
            group.last_seen = max(group.last_seen, event["received_at"])
    return groups


def store_batch(items: list[dict[str, Any]], *, window_s: int) -> StoreResult:
    """Parse and store ``items`` (see :mod:`app.events.envelope`) in one transaction.

    An item whose values the database refuses is stored raw with the database's error;
    the others are stored as usual.

    Parameters:
      items: The raw items of one normalize message.
      window_s: De-duplication window in seconds (``DEDUP_WINDOW_SECONDS``).

    Raises:
      DatabaseUnavailable: the database failed; nothing of the batch is stored.
    """
    rows, events = parse_items(items)
    backend = _Postgres() if is_postgres() else _Portable()
    batch = _Batch(backend, window_s=window_s, claim=backend.insert_raw, refuse=backend.insert_refused)
    return in_transaction(lambda: batch.store_isolating(rows, events))


def store_reparsed(
    parsed: list[dict[str, Any]], failing: list[dict[str, Any]], events: dict[str, dict[str, Any]], *, window_s: int
) -> list[str]:
    """Store what :func:`parse_items` made of raw rows that exist already (``opsconductor reprocess``).

    Rows that now parse are claimed (marked processed, errors cleared) and their events stored,
    exactly as a new batch's; rows that still fail get their current error. Returns the live event
    ids of the parsed rows, for the correlator.
    """
    backend = _Postgres() if is_postgres() else _Portable()
    batch = _Batch(backend, window_s=window_s, claim=backend.claim_unprocessed, refuse=backend.record_errors)

    def work() -> list[str]:
        for row in failing:
            backend.record_errors(row)
        return batch.store_isolating(parsed, events).event_ids if parsed else []

    return in_transaction(work)


def _refused_error(error: Exception) -> str:
    first_line = (str(error).strip().splitlines() or [""])[0]
    return escape(f"storage refused: {type(error).__name__}: {first_line}")[:1000]


class _Batch:
    """Store rows and their events; bisect in savepoints to isolate rows the database refuses.

    Parameters:
      claim: Takes raw rows; returns the ids this batch owns (new rows, or rows it reprocesses).
      refuse: Records one row the database refused, with its error.
    """

    def __init__(self, backend: _Portable, *, window_s: int, claim: Any, refuse: Any) -> None:
        self.backend = backend
        self.window_s = window_s
        self.claim = claim
        self.refuse = refuse

    def store(self, rows: list[dict[str, Any]], events: dict[str, dict[str, Any]]) -> StoreResult:
        backend = self.backend
        result = StoreResult(errors=sum(1 for r in rows if not r["processed"]))
        new_ids = self.claim(rows)
        result.new_raw = len(new_ids)
        groups = _group([events[i] for i in new_ids if i in events])
        live = backend.upsert_fingerprints(groups, window_s=self.window_s)
        fresh = [g for fp, g in groups.items() if live[fp] == g.first["id"]]
        bumps = [(live[fp], g) for fp, g in groups.items() if live[fp] != g.first["id"]]
        backend.insert_events(fresh)
        backend.bump_events(bumps)
        result.inserted = [g.first["id"] for g in fresh]
        result.folded = [event_id for event_id, _ in bumps]
        old = [e["fingerprint"] for i, e in events.items() if i not in new_ids]
        live.update(backend.live_events(old))
        result.event_ids = sorted({live[e["fingerprint"]] for e in events.values() if e["fingerprint"] in live})
        return result

    def store_isolating(self, rows: list[dict[str, Any]], events: dict[str, dict[str, Any]]) -> StoreResult:
        """Store ``rows`` in a savepoint; when the database refuses their data, store each half on its own.

        # PERF: a clean batch costs one savepoint; one bad item among n costs about 2·log2(n) more.
        """
        try:
            with database.atomic():
                return self.store(rows, events)
        except DATA_ERRORS as error:
            if len(rows) == 1:
                return self._refused(rows[0], error)
            logger.info("The database refused a value in a batch of %d items; isolating it.", len(rows))
        half = len(rows) // 2
        results = []
        for part in (rows[:half], rows[half:]):
            ids = {r["id"] for r in part}
            results.append(self.store_isolating(part, {i: e for i, e in events.items() if i in ids}))
        return _merged(results)

    def _refused(self, row: dict[str, Any], error: Exception) -> StoreResult:
        logger.warning("The database refused item %r; storing it raw with the error: %s", row["id"], error)
        self.refuse(row, _refused_error(error))
        return StoreResult(new_raw=1, errors=1)


def _merged(results: list[StoreResult]) -> StoreResult:
    merged = StoreResult()
    for r in results:
        merged.new_raw += r.new_raw
        merged.errors += r.errors
        merged.inserted += r.inserted
        merged.folded += r.folded
        merged.event_ids = sorted({*merged.event_ids, *r.event_ids})
    return merged


def _refused_rows(row: dict[str, Any], error: str) -> list[dict[str, Any]]:
    """Ever safer versions of a refused raw row, the last of which any database stores."""
    kept = {**row, "processed": False, "processing_errors": [error], "fingerprint": None}
    kept["raw_data"] = escape(row["raw_data"])
    minimal = {**kept, "source_type": escape(str(row["source_type"]))[:50], "request_id": None}
    minimal["received_at"] = datetime.now(UTC)
    return [kept, minimal, {**minimal, "raw_data": escape(repr(row["raw_data"]))[:100_000]}]


def _event_row(group: _Group) -> dict[str, Any]:
    e = group.first
    return {
        "id": e["id"],
        "raw_event_id": e["id"],
        "source_type": e["source_type"][:50],
        "source": (str(e["source"])[:255] if e.get("source") else None),
        "event_type": e["event_type"],
        "severity": e["severity"],
        "source_host": (str(e["host"])[:255] if e.get("host") else None),
        "source_service": (str(e["service"])[:100] if e.get("service") else None),
        "title": e["title"],
        "description": e.get("description"),
        "event_data": e["metadata"],
        "tags": e["tags"],
        "occurred_at": e["occurred_at"],
        "received_at": e["received_at"],
        "fingerprint": e["fingerprint"],
        "occurrences": group.count,
        "last_seen_at": group.last_seen,
    }


class _Portable:
    """Any peewee database (SQLite in the embedded mode): clear, not fast."""

    def insert_raw(self, rows: list[dict[str, Any]]) -> set[str]:
        new: set[str] = set()
        for row in rows:
            cursor = database.execute(RawEvent.insert(**row).on_conflict_ignore())
            if cursor.rowcount == 1:
                new.add(row["id"])
        return new

    def insert_refused(self, row: dict[str, Any], error: str) -> None:
        """Store a row the database refused, with ``error``: in the safest form it accepts."""
        variants = _refused_rows(row, error)
        for i, variant in enumerate(variants):
            try:
                with database.atomic():
                    self.insert_raw([variant])
                return
            except DATA_ERRORS:
                if i == len(variants) - 1:
                    raise

    def claim_unprocessed(self, rows: list[dict[str, Any]]) -> set[str]:
        """Mark raw rows that now parse as processed (errors cleared); return the ids this call changed."""
        claimed: set[str] = set()
        for row in rows:
            changed = (
                RawEvent.update(processed=True, processing_errors=None, fingerprint=row["fingerprint"])
                .where((RawEvent.id == row["id"]) & (RawEvent.processed == False))  # noqa: E712
                .execute()
            )
            if changed:
                claimed.add(row["id"])
        return claimed

    def record_errors(self, row: dict[str, Any], error: str | None = None) -> None:
        """Replace an unprocessed raw row's errors with ``error`` (or the row's own)."""
        errors = [error] if error else row["processing_errors"]
        RawEvent.update(processing_errors=errors).where(
            (RawEvent.id == row["id"]) & (RawEvent.processed == False)  # noqa: E712
        ).execute()

    def upsert_fingerprints(self, groups: dict[str, _Group], *, window_s: int) -> dict[str, str]:
        live: dict[str, str] = {}
        for fp in sorted(groups):
            group = groups[fp]
            seen = group.last_seen.timestamp()
            row = EventFingerprint.get_or_none(EventFingerprint.fingerprint == fp)
            first_seen = group.first["received_at"].timestamp()
            if row is None:
                EventFingerprint.insert(
                    fingerprint=fp, event_id=group.first["id"], first_seen=first_seen, last_seen=seen
                ).execute()
                live[fp] = group.first["id"]
                continue
            if row.last_seen >= first_seen - window_s:
                event_id, first_seen = str(row.event_id), row.first_seen
            else:
                event_id = group.first["id"]
            EventFingerprint.update(event_id=event_id, first_seen=first_seen, last_seen=max(row.last_seen, seen)).where(
                EventFingerprint.fingerprint == fp
            ).execute()
            live[fp] = event_id
        return live

    def insert_events(self, groups: list[_Group]) -> None:
        for group in groups:
            ProcessedEvent.insert(**_event_row(group)).on_conflict_ignore().execute()

    def bump_events(self, bumps: list[tuple[str, _Group]]) -> None:
        for event_id, group in bumps:
            ProcessedEvent.update(
                occurrences=ProcessedEvent.occurrences + group.count,
                last_seen_at=peewee.fn.MAX(ProcessedEvent.last_seen_at, group.last_seen.replace(tzinfo=None)),
            ).where(ProcessedEvent.id == event_id).execute()

    def live_events(self, fingerprints: list[str]) -> dict[str, str]:
        if not fingerprints:
            return {}
        query = EventFingerprint.select().where(EventFingerprint.fingerprint.in_(fingerprints))
        return {row.fingerprint: str(row.event_id) for row in query}


def _json(value: Any) -> str | None:
    try:
        return None if value is None else orjson.dumps(value).decode()
    except orjson.JSONEncodeError as e:
        raise peewee.DataError(f"cannot encode as JSON: {e}") from None


def _columns(rows: list[tuple[Any, ...]]) -> list[list[Any]]:
    return [list(column) for column in zip(*rows, strict=True)]


class _Postgres(_Portable):
    """PostgreSQL: one statement per step for the whole batch.

    # PERF: each column travels as one array parameter and ``unnest`` turns the
    # arrays back into rows: psycopg2 adapts a list in C, while execute_values
    # mogrifies row by row in Python (twice as slow here) and peewee's insert_many
    # slower still. Timestamps travel as epoch seconds.
    """

    RAW_SQL = (
        "INSERT INTO events.raw_events (id, source_system, source_type, raw_data, received_at, processed,"
        " processing_errors, fingerprint, request_id)"
        " SELECT id, system, type, data::jsonb, to_timestamp(at), ok, errors::jsonb, fp, req FROM"
        " unnest(%s::uuid[], %s::text[], %s::text[], %s::text[], %s::float8[], %s::bool[], %s::text[], %s::text[],"
        " %s::uuid[]) AS r(id, system, type, data, at, ok, errors, fp, req)"
        " ON CONFLICT (id) DO NOTHING RETURNING id::text"
    )
    FINGERPRINT_SQL = (
        "INSERT INTO events.event_fingerprints AS f (fingerprint, event_id, first_seen, last_seen)"
        " SELECT * FROM unnest(%s::text[], %s::uuid[], %s::float8[], %s::float8[])"
        " ON CONFLICT (fingerprint) DO UPDATE SET"
        " event_id = CASE WHEN f.last_seen >= EXCLUDED.first_seen - %s THEN f.event_id ELSE EXCLUDED.event_id END,"
        " first_seen = CASE WHEN f.last_seen >= EXCLUDED.first_seen - %s THEN f.first_seen ELSE EXCLUDED.first_seen END,"
        " last_seen = GREATEST(f.last_seen, EXCLUDED.last_seen)"
        " RETURNING fingerprint, event_id::text"
    )
    EVENT_SQL = (
        "INSERT INTO events.processed_events (id, raw_event_id, source_type, source, event_type, severity,"
        " source_host, source_service, title, description, event_data, tags, occurred_at, received_at,"
        " processed_at, fingerprint, occurrences, last_seen_at)"
        " SELECT id, id, st, src, et, sev, host, svc, title, descr, data::jsonb, tags::jsonb, to_timestamp(occ),"
        " to_timestamp(rec), now(), fp, n, to_timestamp(seen) FROM"
        " unnest(%s::uuid[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[],"
        " %s::text[], %s::text[], %s::text[], %s::float8[], %s::float8[], %s::text[], %s::int[], %s::float8[])"
        " AS e(id, st, src, et, sev, host, svc, title, descr, data, tags, occ, rec, fp, n, seen)"
        " ON CONFLICT (id) DO NOTHING"
    )
    BUMP_SQL = (
        "UPDATE events.processed_events AS p SET occurrences = p.occurrences + v.n,"
        " last_seen_at = GREATEST(p.last_seen_at, to_timestamp(v.seen))"
        " FROM unnest(%s::uuid[], %s::int[], %s::float8[]) AS v(id, n, seen) WHERE p.id = v.id"
    )

    def _run(self, sql: str, params: list[Any], *, fetch: bool = False) -> list[tuple[Any, ...]]:
        cursor = database.cursor()
        # The driver's errors as peewee's (DataError, OperationalError ...), which the callers sort.
        with _DRIVER_ERRORS_AS_PEEWEE:
            try:
                cursor.execute(sql, params)
            except ValueError as e:  # psycopg2 refuses a NUL in a string before sending anything
                raise peewee.DataError(str(e)) from None
            return cursor.fetchall() if fetch else []

    def insert_raw(self, rows: list[dict[str, Any]]) -> set[str]:
        if not rows:
            return set()
        values = [
            (
                r["id"], r["source_system"], r["source_type"], _json(r["raw_data"]), r["received_at"].timestamp(),
                r["processed"], _json(r["processing_errors"]), r["fingerprint"], r["request_id"],
            )
            for r in rows
        ]  # fmt: skip
        return {row[0] for row in self._run(self.RAW_SQL, _columns(values), fetch=True)}

    def upsert_fingerprints(self, groups: dict[str, _Group], *, window_s: int) -> dict[str, str]:
        if not groups:
            return {}
        values = [
            (fp, g.first["id"], g.first["received_at"].timestamp(), g.last_seen.timestamp())
            for fp, g in sorted(groups.items())
        ]
        params = [*_columns(values), float(window_s), float(window_s)]
        return dict(self._run(self.FINGERPRINT_SQL, params, fetch=True))

    def insert_events(self, groups: list[_Group]) -> None:
        if not groups:
            return
        values = []
        for g in groups:
            r = _event_row(g)
            values.append(
                (
                    r["id"], r["source_type"], r["source"], r["event_type"], r["severity"], r["source_host"],
                    r["source_service"], r["title"], r["description"], _json(r["event_data"]), _json(r["tags"]),
                    r["occurred_at"].timestamp(), r["received_at"].timestamp(), r["fingerprint"], r["occurrences"],
                    r["last_seen_at"].timestamp(),
                )
            )  # fmt: skip
        self._run(self.EVENT_SQL, _columns(values))

    def bump_events(self, bumps: list[tuple[str, _Group]]) -> None:
        if not bumps:
            return
        values = [(event_id, g.count, g.last_seen.timestamp()) for event_id, g in sorted(bumps, key=lambda b: b[0])]
        self._run(self.BUMP_SQL, _columns(values))

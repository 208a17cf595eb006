"""Reading events back: filters, paging, lookup by id, analytics (used by the HTTP API)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import peewee

from ..db import database, in_transaction, is_postgres
from ..errors import InvalidInput
from ..models import ProcessedEvent, RawEvent
from ..paging import DEFAULT_LIMIT, check_page, page
from ..present import iso
from .schema import SEVERITIES

#: Up to this many matching events are counted; past it, ``total_count`` is PostgreSQL's estimate.
EXACT_COUNT_LIMIT = 10_000

#: groupby value of the analytics endpoint -> column.
GROUP_COLUMNS: dict[str, peewee.Field] = {
    "severity": ProcessedEvent.severity,
    "host": ProcessedEvent.source_host,
    "event_type": ProcessedEvent.event_type,
    "source_type": ProcessedEvent.source_type,
    "service": ProcessedEvent.source_service,
}


def event_json(row: ProcessedEvent) -> dict[str, Any]:
    """An event as the API shows it (the spec's field names)."""
    return {
        "id": str(row.id),
        "source_type": row.source_type,
        "source": row.source,
        "event_type": row.event_type,
        "severity": row.severity,
        "host": row.source_host,
        "service": row.source_service,
        "title": row.title,
        "description": row.description,
        "occurred_at": iso(row.occurred_at),
        "received_at": iso(row.received_at),
        "processed_at": iso(row.processed_at),
        "last_seen_at": iso(row.last_seen_at),
        "occurrences": row.occurrences,
        "fingerprint": row.fingerprint,
        "correlation_id": str(row.correlation_id) if row.correlation_id else None,
        "metadata": row.event_data or {},
        "tags": row.tags or [],
        "silenced_by": row.silence_id,
    }


def raw_json(row: RawEvent) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "source_type": row.source_type,
        "source_system": row.source_system,
        "received_at": iso(row.received_at),
        "processed": row.processed,
        "processing_errors": row.processing_errors or [],
        "raw_data": row.raw_data,
    }


@dataclass(frozen=True, kw_only=True)
class EventFilter:
    """The filters of ``GET /api/v1/events``."""

    severity: list[str] | None = None
    event_type: str | None = None
    host: str | None = None
    service: str | None = None
    source_type: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    #: True: only events a silence applied to; False: only the others.
    silenced: bool | None = None
    limit: int = DEFAULT_LIMIT
    offset: int = 0

    def __post_init__(self) -> None:
        for severity in self.severity or []:
            if severity not in SEVERITIES:
                raise InvalidInput(
                    f"severity must be one of {', '.join(SEVERITIES)}, got {severity!r}", field="severity"
                )
        check_page(self.limit, self.offset)

    def where(self) -> list[peewee.Expression]:
        E = ProcessedEvent
        clauses = []
        if self.severity:
            clauses.append(E.severity.in_(self.severity))
        for value, column in (
            (self.event_type, E.event_type),
            (self.host, E.source_host),
            (self.service, E.source_service),
            (self.source_type, E.source_type),
        ):
            if value is not None:
                clauses.append(column == value)
        if self.start_time is not None:
            clauses.append(E.occurred_at >= self.start_time)
        if self.end_time is not None:
            clauses.append(E.occurred_at <= self.end_time)
        if self.silenced is not None:
            clauses.append(E.silence_id.is_null(not self.silenced))
        return clauses


def count_events(query: peewee.ModelSelect[Any]) -> tuple[int, bool]:
    """How many events ``query`` matches, and whether that is an estimate (call inside a transaction).

    PERF: counting every match reads them all: 350 ms for the unfiltered page with a million events
    stored, growing with history. Up to :data:`EXACT_COUNT_LIMIT` the count is exact (the scan stops
    there); past it, PostgreSQL's planner estimate for the same filters (table statistics: the live
    row count when unfiltered), never below the bound. Operators read "about 1.2 million" from it.
    """
    exact = query.select(peewee.SQL("1")).limit(EXACT_COUNT_LIMIT + 1).count()
    if exact <= EXACT_COUNT_LIMIT or not is_postgres():
        return (exact, False) if exact <= EXACT_COUNT_LIMIT else (query.count(), False)
    sql, params = query.select(peewee.SQL("1")).sql()
    plan = database.execute_sql(f"EXPLAIN (FORMAT JSON) {sql}", params).fetchone()[0]
    return max(int(plan[0]["Plan"]["Plan Rows"]), EXACT_COUNT_LIMIT + 1), True


def list_events(flt: EventFilter) -> dict[str, Any]:
    """``{events, total_count, total_count_estimated, has_more}`` for ``flt``, newest first.

    ``total_count`` is exact up to :data:`EXACT_COUNT_LIMIT` matches, else an estimate (flagged);
    ``has_more`` is always exact (one row more is read than shown).
    """

    def work() -> dict[str, Any]:
        query = ProcessedEvent.select()
        clauses = flt.where()
        if clauses:
            query = query.where(*clauses)
        total, estimated = count_events(query)
        order = (ProcessedEvent.occurred_at.desc(), ProcessedEvent.id.desc())
        rows = list(query.order_by(*order).limit(flt.limit + 1).offset(flt.offset))
        return {"events": [event_json(r) for r in rows[: flt.limit]], "total_count": total,
                "total_count_estimated": estimated, "has_more": len(rows) > flt.limit}  # fmt: skip

    return in_transaction(work)


def get_event(key: uuid.UUID) -> dict[str, Any] | None:
    """The event with id ``key``, or the event an accepted duplicate was folded into.

    Returns None when nothing is known of the id (yet); an input that could not be
    parsed is returned as ``{"raw_event": ...}`` with its processing errors.
    """

    def work() -> dict[str, Any] | None:
        row = ProcessedEvent.get_or_none(ProcessedEvent.id == key)
        if row is not None:
            return event_json(row)
        raw = RawEvent.get_or_none(RawEvent.id == key)
        if raw is None:
            return None
        if raw.fingerprint is None:
            return {"raw_event": raw_json(raw)}
        folded = (
            ProcessedEvent.select()
            .where((ProcessedEvent.fingerprint == raw.fingerprint) & (ProcessedEvent.received_at <= raw.received_at))
            .order_by(ProcessedEvent.received_at.desc())
            .first()
        )
        return event_json(folded) if folded else {"raw_event": raw_json(raw)}

    return in_transaction(work)


def analytics(*, timerange: timedelta, groupby: str, now: datetime | None = None) -> dict[str, Any]:
    """Counts of events (and of their occurrences) per ``groupby`` value over the last ``timerange``."""
    if groupby not in GROUP_COLUMNS:
        raise InvalidInput(f"groupby must be one of {', '.join(GROUP_COLUMNS)}", field="groupby")
    end = now or datetime.now(UTC)
    start = end - timerange
    column = GROUP_COLUMNS[groupby]

    def work() -> dict[str, Any]:
        rows: Any = (
            ProcessedEvent.select(
                column.alias("key"),
                peewee.fn.COUNT(ProcessedEvent.id).alias("events"),
                peewee.fn.SUM(ProcessedEvent.occurrences).alias("occurrences"),
            )
            .where((ProcessedEvent.occurred_at >= start) & (ProcessedEvent.occurred_at <= end))
            .group_by(column)
            .order_by(peewee.fn.COUNT(ProcessedEvent.id).desc())
            .dicts()
        )
        groups = [{"key": r["key"], "count": r["events"], "occurrences": int(r["occurrences"] or 0)} for r in rows]
        return {
            "groupby": groupby,
            "start_time": iso(start),
            "end_time": iso(end),
            "total_count": sum(g["count"] for g in groups),
            "total_occurrences": sum(g["occurrences"] for g in groups),
            "groups": groups,
        }

    return in_transaction(work)


def list_raw_events(
    *, has_errors: bool | None, source_type: str | None, limit: int = DEFAULT_LIMIT, offset: int = 0
) -> dict[str, Any]:
    check_page(limit, offset)

    def work() -> dict[str, Any]:
        query = RawEvent.select()
        if has_errors is not None:
            query = query.where(RawEvent.processed == (not has_errors))
        if source_type:
            query = query.where(RawEvent.source_type == source_type)
        order = RawEvent.received_at.desc()
        return page(query, key="raw_events", order=order, limit=limit, offset=offset, show=raw_json)

    return in_transaction(work)

"""Parse again raw input that was marked unparseable, e.g. by a database outage during parsing.

Before transient errors were told apart from bad input, a raw row could carry
``internal parser error: DatabaseUnavailable: ...`` and ``processed = false``
for good. :func:`reprocess` finds unprocessed raw rows whose processing errors
match a pattern, parses them again, and stores the events of those that now
parse, with the same code and the same idempotence as a normalize batch: a row
is claimed (marked processed, errors cleared) in the transaction that stores its
event, so two runs never store an event twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import peewee
import re2

from ..db import in_transaction
from ..errors import InvalidInput
from ..models import RawEvent
from .store import parse_items, store_reparsed

logger = logging.getLogger(__name__)

#: Raw rows read and parsed per transaction.
PAGE_ROWS = 500


@dataclass
class ReprocessResult:
    """What a run found and did."""

    matched: int = 0
    parsed: int = 0
    still_failing: int = 0
    #: Events stored (new or folded) by this run, sent on to the correlator.
    event_ids: list[str] = field(default_factory=list)


def _item(row: RawEvent) -> dict[str, Any]:
    # raw_data is read as text and decoded here: on PostgreSQL the model's JSON field cannot
    # read back a JSON string (every syslog row), which psycopg2 has decoded already.
    # The latin-1 flag of a non-UTF-8 syslog frame is not kept on the row: its text is
    # re-encoded as UTF-8, which the syslog parser decodes to the same text.
    return {
        "id": str(row.id),
        "source_type": row.source_type,
        "received_at": row.received_at.timestamp(),
        "source": row.source_system,
        "request_id": str(row.request_id) if row.request_id else None,
        "payload": orjson.loads(row.raw_text),  # type: ignore[attr-defined]
    }


def _page(pattern: Any, since: datetime | None, after: str | None) -> tuple[list[dict[str, Any]], str | None]:
    def load() -> list[RawEvent]:
        unprocessed = RawEvent.processed == False  # noqa: E712
        text = peewee.Cast(RawEvent.raw_data, "text").alias("raw_text")
        columns = (RawEvent.id, RawEvent.source_type, RawEvent.source_system, RawEvent.received_at,
                   RawEvent.request_id, RawEvent.processing_errors)  # fmt: skip
        query = RawEvent.select(*columns, text).where(unprocessed & RawEvent.processing_errors.is_null(False))
        if since is not None:
            query = query.where(RawEvent.received_at >= since)
        if after is not None:
            query = query.where(RawEvent.id > after)
        return list(query.order_by(RawEvent.id).limit(PAGE_ROWS))

    rows = in_transaction(load)
    matching = [r for r in rows if any(pattern.search(str(e)) for e in (r.processing_errors or []))]
    return [_item(r) for r in matching], (str(rows[-1].id) if rows else None)


def reprocess(
    *,
    errors_matching: str,
    since: datetime | None = None,
    dry_run: bool = False,
    window_s: int,
    send: Callable[[list[str]], Any] | None = None,
) -> ReprocessResult:
    """Parse again the unprocessed raw rows whose processing errors match ``errors_matching``.

    Parameters:
      errors_matching: A regular expression (RE2 syntax), searched in each processing error.
      since: Only rows received at or after this instant.
      dry_run: Parse and count; change nothing and send nothing.
      window_s: De-duplication window in seconds, as the normalizer uses.
      send: Called with the event ids of each stored page (the correlator's ``send``).

    Raises:
      InvalidInput: the pattern does not compile.
      DatabaseUnavailable: the database failed (what was stored before stays stored; run again).
    """
    try:
        pattern = re2.compile(errors_matching)
    except re2.error as e:
        raise InvalidInput(f"the pattern does not compile: {e}", field="errors_matching") from None
    result = ReprocessResult()
    after: str | None = None
    while True:
        items, after = _page(pattern, since, after)
        if after is None:
            return result
        if not items:
            continue
        result.matched += len(items)
        rows, events = parse_items(items)  # a dependency failure raises: nothing is marked
        parsed = [r for r in rows if r["processed"]]
        failing = [r for r in rows if not r["processed"]]
        result.parsed += len(parsed)
        result.still_failing += len(failing)
        if dry_run:
            continue
        event_ids = store_reparsed(parsed, failing, events, window_s=window_s)
        result.event_ids += event_ids
        if event_ids and send is not None:
            send(event_ids)
        logger.info("Reprocessed %d raw rows: %d parsed, %d still failing.", len(rows), len(parsed), len(failing))

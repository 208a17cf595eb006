"""Retention: event data older than ``RETENTION_DAYS`` (default 90) is deleted by the clock.

Event ids are UUIDv7, so "older than" is a range of the primary key: the deletes walk the index
in batches and never scan the tables. Incidents go once closed before the cutoff; rule firings,
decisions, executions and the audit log are kept (they are the record of what was done).
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

from ..db import in_transaction
from ..models import EventCorrelation, EventFingerprint, Incident, ProcessedEvent, RawEvent, RuleMatch

logger = logging.getLogger(__name__)

#: Rows deleted per transaction, so a large purge never holds long locks.
BATCH = 5000


def uuid7_floor(at: datetime) -> uuid.UUID:
    """The smallest UUIDv7 of the millisecond ``at``: every id made before it sorts below."""
    ms = int(at.timestamp() * 1000)
    return uuid.UUID(int=((ms & 0xFFFF_FFFF_FFFF) << 80) | (0x7 << 76) | (0b10 << 62))


def _purge(model: Any, condition: Any, key: Any) -> int:
    total = 0
    while True:
        ids = model.select(key).where(condition).limit(BATCH)
        deleted = in_transaction(lambda: model.delete().where(key.in_(ids)).execute())  # noqa: B023 - run at once
        total += deleted
        if deleted < BATCH:
            return total


def purge(*, before: datetime) -> dict[str, int]:
    """Delete event data older than ``before``; return how many rows of each table went."""
    floor = uuid7_floor(before)
    counts = {
        "processed_events": _purge(ProcessedEvent, ProcessedEvent.id < floor, ProcessedEvent.id),
        "raw_events": _purge(RawEvent, RawEvent.id < floor, RawEvent.id),
        "event_correlations": _purge(EventCorrelation, EventCorrelation.created_at < before, EventCorrelation.id),
        "event_fingerprints": _purge(
            EventFingerprint, EventFingerprint.last_seen < before.timestamp(), EventFingerprint.fingerprint
        ),
        "incidents": _purge(Incident, (Incident.status == "closed") & (Incident.closed_at < before), Incident.id),
        "rule_matches": in_transaction(lambda: RuleMatch.delete().where(RuleMatch.matched_at < before).execute()),
    }
    if any(counts.values()):
        logger.info("Retention: deleted %s (older than %s).", counts, before.isoformat())
    return counts

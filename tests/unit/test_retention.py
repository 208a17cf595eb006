"""Retention deletes event data older than the cutoff, and nothing newer or still in use."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta

from app.events.retention import purge, uuid7_floor
from app.ids import uuid7
from app.models import EventCorrelation, EventFingerprint, Incident, ProcessedEvent, RawEvent, RuleExecution

NOW = datetime.now(UTC)
OLD = NOW - timedelta(days=120)


def id_at(at: datetime) -> uuid.UUID:
    """A UUIDv7 made at ``at`` (random bits and all)."""
    return uuid.UUID(int=uuid7_floor(at).int | int.from_bytes(os.urandom(8), "big") >> 2)


def event(at: datetime) -> uuid.UUID:
    event_id = id_at(at)
    RawEvent.create(id=event_id, source_system="t", source_type="webhook", raw_data={}, received_at=at, processed=True)
    ProcessedEvent.create(id=event_id, source_type="webhook", event_type="x", severity="low", title="t",
                          occurred_at=at, received_at=at, fingerprint="f")  # fmt: skip
    return event_id


def incident(at: datetime, status: str) -> uuid.UUID:
    incident_id = uuid.uuid4()
    Incident.create(id=incident_id, status=status, title="t", root_event_id=uuid.uuid4(), root_fingerprint="f",
                    severity="low", opened_at=at, last_event_at=at, closed_at=at if status == "closed" else None)  # fmt: skip
    return incident_id


def test_event_data_older_than_the_cutoff_goes_and_the_rest_stays(any_db):
    # Given old and recent events, correlations, fingerprints and incidents, and an old firing
    old_events = [event(OLD + timedelta(minutes=i)) for i in range(3)]
    new_events = [event(NOW - timedelta(minutes=i)) for i in range(2)]
    EventCorrelation.create(correlation_id=uuid.uuid4(), correlation_type="time_based", created_at=OLD)
    kept_link = EventCorrelation.create(correlation_id=uuid.uuid4(), correlation_type="time_based", created_at=NOW)
    EventFingerprint.create(
        fingerprint="old", event_id=old_events[0], first_seen=OLD.timestamp(), last_seen=OLD.timestamp()
    )
    EventFingerprint.create(
        fingerprint="new", event_id=new_events[0], first_seen=NOW.timestamp(), last_seen=NOW.timestamp()
    )
    closed, still_open = incident(OLD, "closed"), incident(OLD, "open")
    RuleExecution.create(trigger_rule_id=1, triggering_event_id=old_events[0], execution_status="pending")

    # When retention runs with a 90-day cutoff
    counts = purge(before=NOW - timedelta(days=90))

    # Then only the old event data went; what was done (firings) and open incidents stay
    assert counts["processed_events"] == 3 and counts["raw_events"] == 3
    assert {e.id for e in ProcessedEvent.select()} == set(new_events)
    assert {e.id for e in RawEvent.select()} == set(new_events)
    assert [c.id for c in EventCorrelation.select()] == [kept_link.id]
    assert [f.fingerprint for f in EventFingerprint.select()] == ["new"]
    assert {i.id for i in Incident.select()} == {still_open}
    assert closed not in {i.id for i in Incident.select()}
    assert RuleExecution.select().count() == 1
    # And the ids of events made now sort above the cutoff's floor
    assert uuid7() > uuid7_floor(NOW - timedelta(seconds=1))

"""Tables of the ``events`` schema (technical architecture, "Events Schema")."""

from __future__ import annotations

import peewee

from ..db import BaseModel, JSONField, TimestampField
from ..timeutil import now


class RawEvent(BaseModel):
    """Input as it arrived, kept whether or not it could be parsed.

    ``id`` is assigned at the edge and is the id returned to the caller. ``fingerprint``
    finds the processed event it became: itself, or the earlier one it was folded into.
    """

    id = peewee.UUIDField(primary_key=True)
    source_system = peewee.CharField(max_length=255)
    source_type = peewee.CharField(max_length=50)
    raw_data = JSONField()
    received_at = TimestampField(default=now, index=True)
    processed = peewee.BooleanField(default=False)
    processing_errors = JSONField(null=True)
    fingerprint = peewee.CharField(max_length=128, null=True, index=True)
    request_id = peewee.UUIDField(null=True)

    class Meta:
        schema = "events"
        table_name = "raw_events"


class ProcessedEvent(BaseModel):
    """An event in the one schema, after normalization and de-duplication."""

    id = peewee.UUIDField(primary_key=True)
    raw_event_id = peewee.UUIDField(null=True)
    source_type = peewee.CharField(max_length=50)
    source = peewee.CharField(max_length=255, null=True)
    event_type = peewee.CharField(max_length=100)
    severity = peewee.CharField(max_length=20)
    source_host = peewee.CharField(max_length=255, null=True)
    source_service = peewee.CharField(max_length=100, null=True)
    title = peewee.CharField(max_length=500)
    description = peewee.TextField(null=True)
    event_data = JSONField(null=True)
    tags = JSONField(null=True)
    occurred_at = TimestampField(index=True)
    received_at = TimestampField(default=now)
    processed_at = TimestampField(default=now)
    fingerprint = peewee.CharField(max_length=128, index=True)
    occurrences = peewee.IntegerField(default=1)
    last_seen_at = TimestampField(default=now)
    correlation_id = peewee.UUIDField(null=True, index=True)
    parent_event_id = peewee.UUIDField(null=True)
    #: The silence that applied when the rule evaluator saw the event (it then fired no rule); None: none did.
    silence_id = peewee.BigIntegerField(null=True)

    class Meta:
        schema = "events"
        table_name = "processed_events"
        indexes = (
            (("source_host", "occurred_at"), False),
            (("source_type", "occurred_at"), False),
        )


class EventFingerprint(BaseModel):
    """The live event of each fingerprint: where duplicates inside the window are folded.

    Races between normalizer processes are settled by an upsert on this row.
    ``first_seen``/``last_seen`` (of the live event) are epoch seconds so the window
    arithmetic is the same SQL everywhere.
    """

    fingerprint = peewee.CharField(max_length=128, primary_key=True)
    event_id = peewee.UUIDField()
    first_seen = peewee.DoubleField()
    last_seen = peewee.DoubleField()

    class Meta:
        schema = "events"
        table_name = "event_fingerprints"


class EventCorrelation(BaseModel):
    id = peewee.BigAutoField()
    correlation_id = peewee.UUIDField(index=True)
    correlation_type = peewee.CharField(max_length=50)
    primary_event_id = peewee.UUIDField(null=True, index=True)
    related_event_ids = JSONField(null=True)
    correlation_score = peewee.DecimalField(max_digits=3, decimal_places=2, null=True)
    correlation_reason = peewee.TextField(null=True)
    created_at = TimestampField(default=now)

    class Meta:
        schema = "events"
        table_name = "event_correlations"


class EventPattern(BaseModel):
    id = peewee.BigAutoField()
    pattern_name = peewee.CharField(max_length=200)
    pattern_type = peewee.CharField(max_length=50)
    pattern_definition = JSONField()
    confidence_threshold = peewee.DecimalField(max_digits=3, decimal_places=2, default=0.8)
    active = peewee.BooleanField(default=True)
    created_at = TimestampField(default=now)
    updated_at = TimestampField(default=now)

    class Meta:
        schema = "events"
        table_name = "event_patterns"


class Incident(BaseModel):
    """Events grouped by the correlator; ``id`` is the ``correlation_id`` shown on its events.

    What the correlator needs to match new events (hosts, services, message templates,
    fingerprints, interface keys) is kept on the row, so matching never reads the events.
    """

    id = peewee.UUIDField(primary_key=True)
    #: open | flapping | acknowledged | resolved | closed (see :mod:`app.incidents.lifecycle`)
    status = peewee.CharField(max_length=20, index=True)
    title = peewee.CharField(max_length=500)
    root_event_id = peewee.UUIDField()
    root_fingerprint = peewee.CharField(max_length=128, index=True)
    #: The root event's node (host, device or service): the deepest failing ancestor the incident is named after.
    root_host = peewee.CharField(max_length=255, null=True)
    severity = peewee.CharField(max_length=20)
    severity_score = peewee.DoubleField(default=0.0)
    event_count = peewee.IntegerField(default=1)
    hosts = JSONField(default=list)
    services = JSONField(default=list)
    templates = JSONField(default=list)
    fingerprints = JSONField(default=list)
    link_keys = JSONField(default=list)
    #: What the correlator ties new events by: key -> spans ([first, last], epoch seconds) of the events that had it.
    match_keys = JSONField(default=dict)
    opened_at = TimestampField()
    last_event_at = TimestampField(index=True)
    closed_at = TimestampField(null=True)
    closed_by_event_id = peewee.UUIDField(null=True)
    # The operators' side (app/incidents/lifecycle.py); the correlator never writes these but status_changed_at.
    #: The person or team working the incident.
    assignee = peewee.CharField(max_length=200, null=True, index=True)
    acknowledged_at = TimestampField(null=True)
    acknowledged_by = peewee.CharField(max_length=200, null=True)
    resolved_at = TimestampField(null=True)
    resolved_by = peewee.CharField(max_length=200, null=True)
    status_changed_at = TimestampField(null=True)
    #: The incident this one's events were merged into (it is then closed).
    merged_into = peewee.UUIDField(null=True)

    class Meta:
        schema = "events"
        table_name = "incidents"


class TopologyLink(BaseModel):
    """Operator-declared dependency: host -> upstream device, or service -> host; and asset criticality."""

    kind = peewee.CharField(max_length=20)  # host | service
    node = peewee.CharField(max_length=255)
    upstream = peewee.CharField(max_length=255, null=True)
    criticality = peewee.CharField(max_length=20, null=True)

    class Meta:
        schema = "events"
        table_name = "topology"
        indexes = ((("kind", "node"), True),)

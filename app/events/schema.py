"""The one event schema every source is normalized into.

A parser returns a plain ``dict`` with these keys (see :data:`EVENT_FIELDS`);
the normalizer fills what is missing (fingerprint, defaults), and storage
adds ``id``, ``received_at``, ``occurrences`` and ``last_seen_at``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

#: Severities from most to least severe.
SEVERITIES = ("critical", "high", "medium", "low", "info")

#: Keys a parser returns, with their types:
#: source_type (str: webhook|alertmanager|grafana|pagerduty|syslog|snmp),
#: source (str, the sending system or peer address), event_type (str),
#: severity (one of SEVERITIES), host (str|None), service (str|None),
#: title (str, at most 500 characters), description (str|None),
#: occurred_at (aware datetime, UTC), metadata (JSON-serializable dict),
#: tags (list[str]), fingerprint (str|None: the source's own dedup key).
EVENT_FIELDS = (
    "source_type",
    "source",
    "event_type",
    "severity",
    "host",
    "service",
    "title",
    "description",
    "occurred_at",
    "metadata",
    "tags",
    "fingerprint",
)

#: Longest title kept; longer ones are cut (the full text stays in description).
TITLE_MAX = 500

#: Syslog severity number (RFC 5424 table 2) to event severity.
SYSLOG_SEVERITY = {0: "critical", 1: "critical", 2: "critical", 3: "high", 4: "medium", 5: "low", 6: "info", 7: "info"}


def utc(dt: datetime) -> datetime:
    """Return ``dt`` as an aware UTC datetime (naive input is taken as UTC)."""
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def make_event(**fields: Any) -> dict[str, Any]:
    """Build an event dict with every key of :data:`EVENT_FIELDS` present."""
    event: dict[str, Any] = {key: None for key in EVENT_FIELDS}
    event["metadata"] = {}
    event["tags"] = []
    event.update(fields)
    return event

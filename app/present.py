"""How the API shows values in JSON: one convention, used by every presenter (``*_json`` functions).

Timestamps are ISO 8601 in UTC with a ``Z`` (``2024-05-01T03:00:00.123456Z``), whatever the
zone they were stored or computed in, so clients compare them as strings and parse them one way.
"""

from __future__ import annotations

from datetime import UTC, datetime


def iso(dt: datetime | None) -> str | None:
    """``dt`` as ISO 8601 in UTC with a ``Z``; None stays None (a naive ``dt`` is taken as local time)."""
    if dt is None:
        return None
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")

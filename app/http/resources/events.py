"""Reading events: ``/api/v1/events``, ``/api/v1/events/{id}``, analytics and raw input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import falcon

from ...errors import InvalidInput
from ...events import query
from ...events.query import EventFilter, parse_duration, parse_time


def _int(req: falcon.Request, name: str, default: int) -> int:
    value = req.get_param(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise InvalidInput(f"{name} must be an integer, got {value!r}", field=name) from None


def _time(req: falcon.Request, name: str) -> datetime | None:
    value = req.get_param(name)
    return parse_time(value, field=name) if value else None


class Events:
    """``GET /api/v1/events`` with the spec's filters."""

    permissions = {"GET": "read"}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        start = _time(req, "start_time")
        hours = req.get_param("hours")
        if start is None and hours:
            start = datetime.now(UTC) - timedelta(hours=_int(req, "hours", 24))
        severity = req.get_param_as_list("severity")
        flt = EventFilter(
            severity=severity,
            event_type=req.get_param("event_type"),
            host=req.get_param("host"),
            service=req.get_param("service"),
            source_type=req.get_param("source_type"),
            start_time=start,
            end_time=_time(req, "end_time"),
            limit=_int(req, "limit", query.DEFAULT_LIMIT),
            offset=_int(req, "offset", 0),
        )
        resp.media = query.list_events(flt)


class Event:
    """``GET /api/v1/events/{event_id}``."""

    permissions = {"GET": "read"}

    def on_get(self, req: falcon.Request, resp: falcon.Response, event_id: str) -> None:
        found = query.get_event(event_id)
        if found is None:
            raise falcon.HTTPNotFound(
                title="Not found", description=f"no event {event_id!r} (an accepted event may still be in the queue)"
            )
        resp.media = found


class Analytics:
    """``GET /api/v1/events/analytics?timerange=24h&groupby=severity``."""

    permissions = {"GET": "read"}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        timerange = parse_duration(req.get_param("timerange") or "24h", field="timerange")
        result = query.analytics(timerange=timerange, groupby=req.get_param("groupby") or "severity")
        result["timerange"] = req.get_param("timerange") or "24h"
        resp.media = result


class RawEvents:
    """``GET /api/v1/raw-events?has_errors=true``: input as received, with processing errors."""

    permissions = {"GET": "read"}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = query.list_raw_events(
            has_errors=req.get_param_as_bool("has_errors"),
            source_type=req.get_param("source_type"),
            limit=_int(req, "limit", query.DEFAULT_LIMIT),
            offset=_int(req, "offset", 0),
        )

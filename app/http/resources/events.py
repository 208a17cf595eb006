"""Reading events: ``/api/v1/events``, ``/api/v1/events/{id}``, analytics and raw input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import falcon

from ...errors import NotFound
from ...events import query
from ...events.query import EventFilter
from ..params import flag, integer, page, parse_duration, parse_uuid, timestamp


class Events:
    """``GET /api/v1/events`` with the spec's filters."""

    permissions = {"GET": "read"}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        start = timestamp(req, "start_time")
        if start is None and req.get_param("hours"):
            start = datetime.now(UTC) - timedelta(hours=integer(req, "hours", 24))
        limit, offset = page(req)
        severity = req.get_param_as_list("severity")
        flt = EventFilter(
            severity=severity,
            event_type=req.get_param("event_type"),
            host=req.get_param("host"),
            service=req.get_param("service"),
            source_type=req.get_param("source_type"),
            start_time=start,
            end_time=timestamp(req, "end_time"),
            silenced=flag(req, "silenced"),
            limit=limit,
            offset=offset,
        )
        resp.media = query.list_events(flt)


class Event:
    """``GET /api/v1/events/{event_id}``."""

    permissions = {"GET": "read"}

    def on_get(self, req: falcon.Request, resp: falcon.Response, event_id: str) -> None:
        key = parse_uuid(event_id)
        found = query.get_event(key) if key is not None else None
        if found is None:
            raise NotFound(f"no event {event_id!r} (an accepted event may still be in the queue)")
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
        limit, offset = page(req)
        resp.media = query.list_raw_events(
            has_errors=flag(req, "has_errors"), source_type=req.get_param("source_type"), limit=limit, offset=offset
        )

"""Incidents and event correlations: ``/api/v1/incidents``, ``/api/v1/events/{id}/correlations``;
the lifecycle of an incident (acknowledge, resolve, close, reopen, assign, notes, merge,
split) and its timeline under ``/api/v1/incidents/{id}/...``."""

from __future__ import annotations

from typing import Any

import falcon

from ...correlation import query
from ...errors import InvalidInput, NotFound
from ...incidents import lifecycle
from ...incidents.timeline import timeline
from ..media import read_json
from ..middleware import actor_of
from ..params import page, parse_uuid, timestamp


class Incidents:
    permissions = {"GET": "read"}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        limit, offset = page(req)
        resp.media = query.list_incidents(
            status=req.get_param("status"),
            severity=req.get_param("severity"),
            host=req.get_param("host"),
            since=timestamp(req, "since"),
            limit=limit,
            offset=offset,
            assignee=req.get_param("assignee"),
        )


class IncidentResource:
    permissions = {"GET": "read"}

    def on_get(self, req: falcon.Request, resp: falcon.Response, incident_id: str) -> None:
        key = parse_uuid(incident_id)
        found = query.get_incident(key) if key is not None else None
        if found is None:
            raise NotFound(f"no incident {incident_id!r}")
        resp.media = found


class EventCorrelations:
    permissions = {"GET": "read"}

    def on_get(self, req: falcon.Request, resp: falcon.Response, event_id: str) -> None:
        key = parse_uuid(event_id)
        found = query.event_correlations(key) if key is not None else None
        if found is None:
            raise NotFound(f"no event {event_id!r}")
        resp.media = found


def _body(req: falcon.Request, *, max_bytes: int, required: bool) -> dict[str, Any]:
    """The JSON object of a lifecycle request; an absent body is ``{}`` where nothing is required."""
    if not required and not req.content_length and "chunked" not in (req.get_header("Transfer-Encoding") or "").lower():
        return {}
    body = read_json(req, max_bytes=max_bytes)
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object", field="body")
    return body


class IncidentTransition:
    """``POST /api/v1/incidents/{id}/acknowledge|resolve|close|reopen`` with an optional ``{"comment"}``."""

    permissions = {"POST": "operate"}

    def __init__(self, *, max_body_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes

    def _move(self, req: falcon.Request, resp: falcon.Response, incident_id: str, verb: str) -> None:
        body = _body(req, max_bytes=self.max_body_bytes, required=False)
        move = getattr(lifecycle, verb)
        resp.media = move(incident_id, actor=actor_of(req), comment=body.get("comment"))

    def on_post_acknowledge(self, req: falcon.Request, resp: falcon.Response, incident_id: str) -> None:
        self._move(req, resp, incident_id, "acknowledge")

    def on_post_resolve(self, req: falcon.Request, resp: falcon.Response, incident_id: str) -> None:
        self._move(req, resp, incident_id, "resolve")

    def on_post_close(self, req: falcon.Request, resp: falcon.Response, incident_id: str) -> None:
        self._move(req, resp, incident_id, "close")

    def on_post_reopen(self, req: falcon.Request, resp: falcon.Response, incident_id: str) -> None:
        self._move(req, resp, incident_id, "reopen")

    def on_post_assign(self, req: falcon.Request, resp: falcon.Response, incident_id: str) -> None:
        body = _body(req, max_bytes=self.max_body_bytes, required=True)
        resp.media = lifecycle.assign(incident_id, assignee=body.get("assignee", ""), actor=actor_of(req),
                                      comment=body.get("comment"))  # fmt: skip

    def on_post_merge(self, req: falcon.Request, resp: falcon.Response, incident_id: str) -> None:
        body = _body(req, max_bytes=self.max_body_bytes, required=True)
        resp.media = lifecycle.merge(incident_id, source_ids=body.get("source_ids", []), actor=actor_of(req),
                                     reason=body.get("reason", ""))  # fmt: skip

    def on_post_split(self, req: falcon.Request, resp: falcon.Response, incident_id: str) -> None:
        body = _body(req, max_bytes=self.max_body_bytes, required=True)
        resp.media = lifecycle.split(incident_id, event_ids=body.get("event_ids", []), actor=actor_of(req),
                                     reason=body.get("reason", ""))  # fmt: skip
        resp.status = falcon.HTTP_201


class IncidentNotes:
    """``GET`` and ``POST /api/v1/incidents/{id}/notes`` (``{"text"}``)."""

    permissions = {"GET": "read", "POST": "operate"}

    def __init__(self, *, max_body_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes

    def on_get(self, req: falcon.Request, resp: falcon.Response, incident_id: str) -> None:
        resp.media = {"notes": lifecycle.notes(incident_id)}

    def on_post(self, req: falcon.Request, resp: falcon.Response, incident_id: str) -> None:
        body = _body(req, max_bytes=self.max_body_bytes, required=True)
        resp.media = lifecycle.add_note(incident_id, text=body.get("text", ""), actor=actor_of(req))
        resp.status = falcon.HTTP_201


class IncidentTimeline:
    permissions = {"GET": "read"}

    def on_get(self, req: falcon.Request, resp: falcon.Response, incident_id: str) -> None:
        resp.media = timeline(incident_id)

"""Silences: ``/api/v1/silences[/{silence_id}]`` and ``/api/v1/incidents/{incident_id}/silence`` (one click)."""

from __future__ import annotations

from typing import Any

import falcon

from ... import silences
from ...errors import InvalidInput
from ..media import read_json
from ..middleware import actor_of
from ..params import page

#: The keys of ``POST /api/v1/incidents/{id}/silence``.
FROM_INCIDENT_KEYS = ("duration_minutes", "comment")


class Silences:
    """``GET`` lists silences, newest first (``?state=active|pending|expired``, paged); ``POST`` creates one."""

    permissions = {"GET": "read", "POST": "operate"}

    def __init__(self, *, max_body_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        limit, offset = page(req)
        resp.media = silences.list_silences(state=req.get_param("state"), limit=limit, offset=offset)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = read_json(req, max_bytes=self.max_body_bytes)
        resp.status = falcon.HTTP_201
        resp.media = silences.create(body, actor=actor_of(req))


class Silence:
    """One silence: ``GET``, ``PUT`` (replaces its matchers, period and comment), ``DELETE`` (expires it, keeps it)."""

    permissions = {"GET": "read", "PUT": "operate", "DELETE": "operate"}

    def __init__(self, *, max_body_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes

    def on_get(self, req: falcon.Request, resp: falcon.Response, silence_id: int) -> None:
        resp.media = silences.get(silence_id)

    def on_put(self, req: falcon.Request, resp: falcon.Response, silence_id: int) -> None:
        body = read_json(req, max_bytes=self.max_body_bytes)
        resp.media = silences.update(silence_id, body, actor=actor_of(req))

    def on_delete(self, req: falcon.Request, resp: falcon.Response, silence_id: int) -> None:
        resp.media = silences.expire(silence_id, actor=actor_of(req))


class IncidentSilence:
    """``POST /api/v1/incidents/{incident_id}/silence``: silence the incident's hosts and services.

    The body is optional: ``{"duration_minutes": 120, "comment": "..."}``.
    """

    permissions = {"POST": "operate"}

    def __init__(self, *, max_body_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes

    def on_post(self, req: falcon.Request, resp: falcon.Response, incident_id: str) -> None:
        body: Any = read_json(req, max_bytes=self.max_body_bytes) if req.content_length else {}
        if not isinstance(body, dict):
            raise InvalidInput("the body is a JSON object {duration_minutes?, comment?}", field="body")
        unknown = sorted(set(body) - set(FROM_INCIDENT_KEYS))
        if unknown:
            raise InvalidInput(
                f"unknown key {unknown[0]!r}: send {', '.join(FROM_INCIDENT_KEYS)}", field=unknown[0] or "body"
            )
        comment = body.get("comment")
        if comment is not None and (not isinstance(comment, str) or not comment.strip()):
            raise InvalidInput("comment is a non-empty string", field="comment")
        resp.status = falcon.HTTP_201
        resp.media = silences.silence_from_incident(
            incident_id, actor=actor_of(req), duration_minutes=body.get("duration_minutes", 120), comment=comment
        )

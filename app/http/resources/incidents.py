"""Incidents, event correlations and the topology: ``/api/v1/incidents``, ``/api/v1/events/{id}/correlations``,
``/api/v1/topology``."""

from __future__ import annotations

import falcon

from ...correlation import query
from ...events.query import DEFAULT_LIMIT, parse_time
from ..middleware import actor_of
from .ingest import read_json


class Incidents:
    permissions = {"GET": "read"}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        since = req.get_param("since")
        resp.media = query.list_incidents(
            status=req.get_param("status"),
            severity=req.get_param("severity"),
            host=req.get_param("host"),
            since=parse_time(since, field="since") if since else None,
            limit=req.get_param_as_int("limit") or DEFAULT_LIMIT,
            offset=req.get_param_as_int("offset") or 0,
        )


class IncidentResource:
    permissions = {"GET": "read"}

    def on_get(self, req: falcon.Request, resp: falcon.Response, incident_id: str) -> None:
        found = query.get_incident(incident_id)
        if found is None:
            raise falcon.HTTPNotFound(title="Not found", description=f"no incident {incident_id!r}")
        resp.media = found


class EventCorrelations:
    permissions = {"GET": "read"}

    def on_get(self, req: falcon.Request, resp: falcon.Response, event_id: str) -> None:
        found = query.event_correlations(event_id)
        if found is None:
            raise falcon.HTTPNotFound(title="Not found", description=f"no event {event_id!r}")
        resp.media = found


class Topology:
    permissions = {"GET": "read", "PUT": "operate"}

    def __init__(self, *, max_body_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = query.topology_json()

    def on_put(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = query.replace_topology(read_json(req, max_bytes=self.max_body_bytes), actor=actor_of(req))

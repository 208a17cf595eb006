"""Incidents, event correlations and the topology: ``/api/v1/incidents``, ``/api/v1/events/{id}/correlations``,
``/api/v1/topology``."""

from __future__ import annotations

import falcon

from ...correlation import query
from ...errors import NotFound
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


class Topology:
    permissions = {"GET": "read", "PUT": "operate"}

    def __init__(self, *, max_body_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = query.topology_json()

    def on_put(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = query.replace_topology(read_json(req, max_bytes=self.max_body_bytes), actor=actor_of(req))

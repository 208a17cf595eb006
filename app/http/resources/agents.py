"""The agent registry: ``/api/v1/agents``, ``/agents/status``, ``/agents/config`` and ``/agents/{name}/start|stop|run``."""

from __future__ import annotations

import falcon

from ...agents import registry
from ...agents.base import RUNNABLE_KINDS
from ...agents.status import status
from ...config import Settings
from ...db import in_transaction
from ...errors import Conflict
from ...publishing import Dispatcher
from ...timeutil import now
from ..media import read_json
from ..middleware import actor_of


class Agents:
    """``GET``: every agent's configuration (the design's ``AgentConfig``)."""

    permissions = {"GET": "read"}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        rows = in_transaction(registry.listing)
        resp.media = {"agents": rows, "total_count": len(rows)}


class AgentStatus:
    """``GET``: each agent's state, health (heartbeats), last run and work in flight, and the resource leases."""

    permissions = {"GET": "read"}

    def __init__(self, *, settings: Settings) -> None:
        self.settings = settings

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = status(now(), interval_s=self.settings.agent_heartbeat_s)


class AgentConfigs:
    """``POST``: create an agent or change the fields given of one (admin: it sets what runs without a human)."""

    permissions = {"POST": "admin"}

    def __init__(self, *, max_body_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        columns = registry.parse_config(read_json(req, max_bytes=self.max_body_bytes))
        shown, created = in_transaction(lambda: registry.configure(columns, actor=actor_of(req), now=now()))
        resp.status = falcon.HTTP_201 if created else falcon.HTTP_200
        resp.media = shown


class AgentControl:
    """``POST /agents/{name}/start`` and ``/stop`` pause and resume an agent's schedule and queue;
    ``/run`` sends it a run now (202)."""

    permissions = {"POST": "operate"}

    def __init__(self, *, dispatch: Dispatcher) -> None:
        self.dispatch = dispatch

    def on_post_start(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        resp.media = in_transaction(lambda: registry.set_running(name, running=True, actor=actor_of(req), now=now()))

    def on_post_stop(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        resp.media = in_transaction(lambda: registry.set_running(name, running=False, actor=actor_of(req), now=now()))

    def on_post_run(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        def check() -> str:
            registry.ensure_defaults()
            row = registry.get(name)
            if row.kind not in RUNNABLE_KINDS:
                raise Conflict(f"agent {name!r} ({row.kind}) has no queue to run on")
            if registry.state_of(row) != "started":
                raise Conflict(f"agent {name!r} is {registry.state_of(row)}: start it (and enable it) first")
            return str(row.kind)

        kind = in_transaction(check)
        self.dispatch(f"agent_{kind}", name, {"trigger": "operator", "by": actor_of(req)})
        resp.status = falcon.HTTP_202
        resp.media = {"agent": name, "queue": f"agent_{kind}", "status": "sent"}

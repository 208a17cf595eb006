"""Maintenance windows: ``/api/v1/maintenance[/{window_id}]`` — remediation is blocked inside them."""

from __future__ import annotations

import falcon

from ...db import in_transaction
from ...decisions import maintenance_store as windows
from ...decisions.maintenance import parse_window
from ..media import read_json
from ..middleware import actor_of
from ..params import flag


class Windows:
    """``GET`` lists windows (``?active_now=true``: in force now; ``?host=``: taking in that host); ``POST`` creates one."""

    permissions = {"GET": "read", "POST": "operate"}

    def __init__(self, *, max_body_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        host, active_now = req.get_param("host"), flag(req, "active_now")
        rows = in_transaction(lambda: windows.listing(host=host, active_now=active_now))
        resp.media = {"windows": rows, "total_count": len(rows)}

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        columns = parse_window(read_json(req, max_bytes=self.max_body_bytes))
        resp.status = falcon.HTTP_201
        resp.media = in_transaction(lambda: windows.create(columns, actor=actor_of(req)))


class Window:
    """One window: ``GET``, ``PUT`` (replaces all its fields but ``created_by``), ``DELETE``."""

    permissions = {"GET": "read", "PUT": "operate", "DELETE": "operate"}

    def __init__(self, *, max_body_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes

    def on_get(self, req: falcon.Request, resp: falcon.Response, window_id: int) -> None:
        resp.media = in_transaction(lambda: windows.window_json(windows.get(window_id)))

    def on_put(self, req: falcon.Request, resp: falcon.Response, window_id: int) -> None:
        columns = parse_window(read_json(req, max_bytes=self.max_body_bytes))
        resp.media = in_transaction(lambda: windows.replace(window_id, columns, actor=actor_of(req)))

    def on_delete(self, req: falcon.Request, resp: falcon.Response, window_id: int) -> None:
        in_transaction(lambda: windows.delete(window_id, actor=actor_of(req)))
        resp.media = {"id": window_id, "status": "deleted"}

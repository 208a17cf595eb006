"""Maintenance windows: ``/api/v1/maintenance[/{window_id}]`` — remediation is blocked inside them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import falcon

from ...autonomous.maintenance import in_force, in_scope, parse_window
from ...db import in_transaction
from ...errors import NotFound
from ...events.query import iso
from ...models import AuditLog, MaintenanceWindow
from ..middleware import actor_of
from .ingest import read_json


def window_json(row: MaintenanceWindow, now: datetime | None = None) -> dict[str, Any]:
    """A window as the API shows it; ``active_now`` is whether it is in force at ``now``, whatever its scope."""
    now = now or datetime.now(UTC)
    return {
        "id": row.id,
        "name": row.name,
        "description": row.description,
        "scope": row.scope,
        "starts_at": iso(row.starts_at),
        "ends_at": iso(row.ends_at),
        "schedule": row.schedule,
        "active": row.active,
        "active_now": in_force(row, now),
        "created_by": row.created_by,
        "created_at": iso(row.created_at),
    }  # fmt: skip


class Windows:
    """``GET`` lists windows (``?active_now=true``: in force now; ``?host=``: taking in that host); ``POST`` creates one."""

    permissions = {"GET": "read", "POST": "operate"}

    def __init__(self, *, max_body_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        host, active_now = req.get_param("host"), req.get_param_as_bool("active_now")
        now = datetime.now(UTC)

        def work() -> list[dict[str, Any]]:
            rows = MaintenanceWindow.select().order_by(MaintenanceWindow.id)
            out = []
            for row in rows:
                if host and not in_scope(row.scope, host=host, service=None, tags=()):
                    continue
                body = window_json(row, now)
                if active_now and not body["active_now"]:
                    continue
                out.append(body)
            return out

        rows = in_transaction(work)
        resp.media = {"windows": rows, "total_count": len(rows)}

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        columns = parse_window(read_json(req, max_bytes=self.max_body_bytes))

        def work() -> dict[str, Any]:
            row = MaintenanceWindow.create(**columns, created_by=actor_of(req))
            shown = window_json(row)
            AuditLog.create(actor=actor_of(req), action="maintenance.created", subject=f"maintenance_window:{row.id}",
                            details={"after": shown})  # fmt: skip
            return shown

        resp.status = falcon.HTTP_201
        resp.media = in_transaction(work)


class Window:
    """One window: ``GET``, ``PUT`` (replaces all its fields but ``created_by``), ``DELETE``."""

    permissions = {"GET": "read", "PUT": "operate", "DELETE": "operate"}

    def __init__(self, *, max_body_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes

    @staticmethod
    def _get(window_id: int) -> MaintenanceWindow:
        row = MaintenanceWindow.get_or_none(MaintenanceWindow.id == window_id)
        if row is None:
            raise NotFound(f"no maintenance window {window_id}")
        return row

    def on_get(self, req: falcon.Request, resp: falcon.Response, window_id: int) -> None:
        resp.media = in_transaction(lambda: window_json(self._get(window_id)))

    def on_put(self, req: falcon.Request, resp: falcon.Response, window_id: int) -> None:
        columns = parse_window(read_json(req, max_bytes=self.max_body_bytes))

        def work() -> dict[str, Any]:
            before = window_json(self._get(window_id))
            MaintenanceWindow.update(**columns).where(MaintenanceWindow.id == window_id).execute()
            after = window_json(self._get(window_id))
            AuditLog.create(actor=actor_of(req), action="maintenance.updated", subject=f"maintenance_window:{window_id}",
                            details={"before": before, "after": after})  # fmt: skip
            return after

        resp.media = in_transaction(work)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, window_id: int) -> None:
        def work() -> None:
            row = self._get(window_id)
            before = window_json(row)  # the audit trail keeps what was deleted
            row.delete_instance()
            AuditLog.create(actor=actor_of(req), action="maintenance.deleted", subject=f"maintenance_window:{window_id}",
                            details={"before": before})  # fmt: skip

        in_transaction(work)
        resp.media = {"id": window_id, "status": "deleted"}

"""Maintenance windows: ``/api/v1/maintenance[/{window_id}]`` — remediation is blocked inside them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import falcon

from ...autonomous.maintenance import parse_window, window_covers
from ...db import in_transaction
from ...errors import NotFound
from ...events.query import iso
from ...models import AuditLog, MaintenanceWindow
from ..middleware import actor_of
from .ingest import read_json


def window_json(row: MaintenanceWindow, now: datetime | None = None) -> dict[str, Any]:
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
        "active_now": _in_time(row, now),
        "created_by": row.created_by,
        "created_at": iso(row.created_at),
    }  # fmt: skip


def _in_time(row: MaintenanceWindow, now: datetime) -> bool:
    """Whether the window is in force at ``now``, whatever its scope."""
    return window_covers(MaintenanceWindow(**{**row.__data__, "scope": {}}), at=now, host=None, service=None, tags=())


class Windows:
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
                if host and not _covers_target(row, host):
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
            AuditLog.create(actor=actor_of(req), action="maintenance.created", subject=f"maintenance_window:{row.id}",
                            details={"name": row.name, "scope": row.scope})  # fmt: skip
            return window_json(row)

        resp.status = falcon.HTTP_201
        resp.media = in_transaction(work)


def _covers_target(row: MaintenanceWindow, host: str) -> bool:
    """Whether the window's scope takes in ``host`` (at some time)."""
    return window_covers(
        MaintenanceWindow(**{**row.__data__, "starts_at": None, "ends_at": None, "schedule": None, "active": True}),
        at=datetime.now(UTC),
        host=host,
        service=None,
        tags=(),
    )


class Window:
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
            row = self._get(window_id)
            MaintenanceWindow.update(**columns).where(MaintenanceWindow.id == window_id).execute()
            AuditLog.create(actor=actor_of(req), action="maintenance.updated", subject=f"maintenance_window:{row.id}",
                            details={"before": window_json(row), "after": {k: str(v) for k, v in columns.items()}})  # fmt: skip
            return window_json(self._get(window_id))

        resp.media = in_transaction(work)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, window_id: int) -> None:
        def work() -> None:
            row = self._get(window_id)
            row.delete_instance()
            AuditLog.create(actor=actor_of(req), action="maintenance.deleted", subject=f"maintenance_window:{row.id}",
                            details={"name": row.name})  # fmt: skip

        in_transaction(work)
        resp.media = {"id": window_id, "status": "deleted"}

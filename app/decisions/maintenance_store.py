"""Maintenance windows kept in the database: list, read, create, replace, delete, each write audited.

Parsing and the rules of a window (in force, in scope) are in :mod:`app.decisions.maintenance`;
this module stores them for the API, the CLI and the console. Every function is called inside a
transaction (:func:`app.db.in_transaction`), so a write and its audit row commit together.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .. import audit
from ..errors import NotFound
from ..models import MaintenanceWindow
from ..present import iso
from .maintenance import in_force, in_scope


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
        "suppress_notifications": row.suppress_notifications,
        "created_by": row.created_by,
        "created_at": iso(row.created_at),
    }  # fmt: skip


def listing(*, host: str | None = None, active_now: bool | None = None) -> list[dict[str, Any]]:
    """Windows as the API shows them, by id (``host``: those taking in that host; ``active_now``: in force now)."""
    now = datetime.now(UTC)
    out = []
    for row in MaintenanceWindow.select().order_by(MaintenanceWindow.id):
        if host and not in_scope(row.scope, host=host, service=None, tags=()):
            continue
        body = window_json(row, now)
        if active_now and not body["active_now"]:
            continue
        out.append(body)
    return out


def get(window_id: int) -> MaintenanceWindow:
    """Raises:
    NotFound: there is no window ``window_id``.
    """
    row = MaintenanceWindow.get_or_none(MaintenanceWindow.id == window_id)
    if row is None:
        raise NotFound(f"no maintenance window {window_id}")
    return row


def create(columns: dict[str, Any], *, actor: str) -> dict[str, Any]:
    """Store a window parsed by :func:`~app.decisions.maintenance.parse_window`; return it as the API shows it."""
    row = MaintenanceWindow.create(**columns, created_by=actor)
    shown = window_json(row)
    audit.record(audit.Action.MAINTENANCE_WINDOW_CREATED, actor=actor, subject=f"maintenance_window:{row.id}",
                 details={"after": shown})  # fmt: skip
    return shown


def replace(window_id: int, columns: dict[str, Any], *, actor: str) -> dict[str, Any]:
    """Replace every field of window ``window_id`` but ``created_by``; return it as the API shows it.

    Raises:
      NotFound: there is no window ``window_id``.
    """
    before = window_json(get(window_id))
    MaintenanceWindow.update(**columns).where(MaintenanceWindow.id == window_id).execute()
    after = window_json(get(window_id))
    audit.record(audit.Action.MAINTENANCE_WINDOW_UPDATED, actor=actor, subject=f"maintenance_window:{window_id}",
                 details={"before": before, "after": after})  # fmt: skip
    return after


def delete(window_id: int, *, actor: str) -> None:
    """Delete window ``window_id``; the audit row keeps what it was.

    Raises:
      NotFound: there is no window ``window_id``.
    """
    row = get(window_id)
    before = window_json(row)
    row.delete_instance()
    audit.record(audit.Action.MAINTENANCE_WINDOW_DELETED, actor=actor, subject=f"maintenance_window:{window_id}",
                 details={"before": before})  # fmt: skip

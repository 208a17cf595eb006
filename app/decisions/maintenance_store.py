"""Maintenance windows kept in the database: list, read, create, replace, delete, each write audited.

Parsing and the rules of a window (in force, in scope) are in :mod:`app.decisions.maintenance`;
this module stores them for the API, the CLI and the console. Every function is called inside a
transaction (:func:`app.db.in_transaction`), so a write and its audit row commit together.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .. import audit
from ..crud import Table
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


#: Windows as the API, the CLI and the console read and write them.
TABLE = Table(MaintenanceWindow, noun="maintenance window", subject="maintenance_window", show=window_json)


def get(window_id: int) -> MaintenanceWindow:
    """Raises:
    NotFound: there is no window ``window_id``.
    """
    return TABLE.get(window_id)


def create(columns: dict[str, Any], *, actor: str) -> dict[str, Any]:
    """Store a window parsed by :func:`~app.decisions.maintenance.parse_window`; return it as the API shows it."""
    return TABLE.create({**columns, "created_by": actor}, actor=actor, action=audit.Action.MAINTENANCE_WINDOW_CREATED)


def replace(window_id: int, columns: dict[str, Any], *, actor: str) -> dict[str, Any]:
    """Replace every field of window ``window_id`` but ``created_by``; return it as the API shows it.

    Raises:
      NotFound: there is no window ``window_id``.
    """
    return TABLE.update(window_id, columns, actor=actor, action=audit.Action.MAINTENANCE_WINDOW_UPDATED)


def delete(window_id: int, *, actor: str) -> None:
    """Delete window ``window_id``; the audit row keeps what it was.

    Raises:
      NotFound: there is no window ``window_id``.
    """
    TABLE.delete(window_id, actor=actor, action=audit.Action.MAINTENANCE_WINDOW_DELETED)

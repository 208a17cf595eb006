"""The outbox as the API shows it, and an operator's retry of a failed notification."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from .. import audit
from ..crud import Table
from ..errors import Conflict, InvalidInput
from ..models import Notification
from ..paging import check_page
from ..present import iso
from .policies import TRIGGERS

STATUSES = ("pending", "sent", "failed", "suppressed")
#: Notifications as the API and the CLI read them.
TABLE = Table(Notification, noun="notification", subject="notification")


def _channel(channel: dict[str, Any]) -> dict[str, Any]:
    """A channel fit for display: its type and where it goes (scheme and host: a webhook's path is its secret)."""
    shown: dict[str, Any] = {"type": channel["type"]}
    if channel.get("url"):
        parts = urlsplit(channel["url"])
        shown["url"] = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
    if channel.get("to"):
        shown["to"] = channel["to"]
    return shown


def notification_json(row: Notification) -> dict[str, Any]:
    message = row.payload.get("message") or {}
    return {
        "id": row.id,
        "policy_id": row.policy_id,
        "channel_index": row.channel_index,
        "channel": _channel(row.payload.get("channel") or {"type": row.channel_type}),
        "trigger": row.trigger,
        "incident_id": str(row.incident_id) if row.incident_id else None,
        "dedup_key": row.dedup_key,
        "title": message.get("title"),
        "severity": message.get("severity"),
        "event_action": message.get("event_action"),
        "status": row.status,
        "reason": row.reason,
        "attempts": row.attempts,
        "last_error": row.last_error,
        "next_attempt_at": iso(row.next_attempt_at),
        "created_at": iso(row.created_at),
        "sent_at": iso(row.sent_at),
    }


def listing(*, status: str | None = None, trigger: str | None = None, incident_id: str | None = None,
            limit: int, offset: int) -> dict[str, Any]:  # fmt: skip
    """Notifications, newest first, filtered (call inside a transaction).

    Raises:
      InvalidInput: an unknown status or trigger, or a bad page.
    """
    check_page(limit, offset)
    query = Notification.select()
    if status is not None:
        if status not in STATUSES:
            raise InvalidInput(f"status is one of {', '.join(STATUSES)}", field="status")
        query = query.where(Notification.status == status)
    if trigger is not None:
        if trigger not in TRIGGERS:
            raise InvalidInput(f"trigger is one of {', '.join(TRIGGERS)}", field="trigger")
        query = query.where(Notification.trigger == trigger)
    if incident_id is not None:
        query = query.where(Notification.incident_id == incident_id)
    total = query.count()
    rows = query.order_by(Notification.id.desc()).limit(limit).offset(offset)
    return {"notifications": [notification_json(r) for r in rows], "total_count": total, "limit": limit,
            "offset": offset}  # fmt: skip


def get(notification_id: int) -> Notification:
    """Raises:
    NotFound: there is no notification ``notification_id``.
    """
    return TABLE.get(notification_id)


def requeue(notification_id: int, *, actor: str, now: datetime | None = None) -> dict[str, Any]:
    """Make a failed (or pending) notification due now with a fresh set of attempts (call inside a transaction).

    Raises:
      NotFound: no such notification. Conflict: it was sent or suppressed.
    """
    row = get(notification_id)
    if row.status not in ("failed", "pending"):
        raise Conflict(f"notification {notification_id} is {row.status}: only a failed or pending one is retried")
    before = row.status
    row.status, row.attempts, row.next_attempt_at = "pending", 0, now or datetime.now(UTC)
    row.save()
    audit.record(audit.Action.NOTIFICATION_RETRIED, actor=actor, subject=f"notification:{row.id}",
                 details={"from_status": before, "last_error": row.last_error})  # fmt: skip
    return notification_json(row)

"""An incident's status change, followed where it was paged.

PagerDuty channels that paged an incident (a ``trigger`` event) get ``acknowledge`` when it is
acknowledged here and ``resolve`` when it is resolved or closed, with the same ``dedup_key``, so
the alert there follows the incident here. Policies whose matchers take the ``incident_status``
trigger also get the change on their other channels.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from ..models import Notification
from .routing import Page, remember, route, targets_of

#: An incident's status -> PagerDuty's event_action for it.
PAGERDUTY_ACTION = {"acknowledged": "acknowledge", "resolved": "resolve", "closed": "resolve"}


def _paged_channels(incident_id: str) -> list[Notification]:
    """The latest PagerDuty trigger of the incident per (policy, channel)."""
    latest: dict[tuple[Any, int], Notification] = {}
    rows = (
        Notification.select()
        .where(Notification.incident_id == incident_id, Notification.channel_type == "pagerduty",
               Notification.status.in_(["pending", "sent"]))  # fmt: skip
        .order_by(Notification.id)
    )
    for row in rows:
        if (row.payload.get("message") or {}).get("event_action", "trigger") == "trigger":
            latest[(row.policy_id, row.channel_index)] = row
    return list(latest.values())


def _followed(trigger: Notification, action: str) -> bool:
    """Whether ``action`` was already sent (or is on its way) since ``trigger``."""
    rows = Notification.select().where(
        Notification.id > trigger.id, Notification.incident_id == trigger.incident_id,
        Notification.policy_id == trigger.policy_id, Notification.channel_index == trigger.channel_index,
        Notification.channel_type == "pagerduty", Notification.status.in_(["pending", "sent"]),
    )  # fmt: skip
    return any((r.payload.get("message") or {}).get("event_action") == action for r in rows)


def incident_changed(incident_id: Any, status: str, *, actor: str, now: datetime) -> list[int]:
    """Write the notifications of an incident's new ``status`` (call inside the transaction of the change).

    Returns:
      The ids of the rows due now (also collected, see :func:`app.notifications.routing.collected`).
    """
    # PERF: the incident's row is read once, by targets_of (a correlator batch closes and merges incidents under
    # its lock, and each change wrote its notifications after reading the row twice).
    facts = targets_of(incident_id=incident_id)
    if facts["incident_id"] is None:
        return []
    incident_key = facts["incident_id"]
    page = Page(
        trigger="incident_status", subject=f"incident:{incident_key}:{status}",
        title=f"Incident {status}: {facts['title']}", text=f"Incident {incident_key} is {status} ({actor}).",
        severity=facts["severity"], hosts=facts["hosts"], services=facts["services"], tags=facts["tags"],
        incident_id=incident_key, details={"status": status, "by": actor},
    )  # fmt: skip
    ids = route(page, now=now, skip_types=("pagerduty",))
    action = PAGERDUTY_ACTION.get(status)
    if action is None:
        return ids
    follow_ids = []
    for trigger in _paged_channels(incident_key):
        if _followed(trigger, action):
            continue
        message = {**trigger.payload["message"], "event_action": action}
        row = Notification.create(
            policy_id=trigger.policy_id, channel_index=trigger.channel_index, channel_type="pagerduty",
            trigger="incident_status", incident_id=uuid.UUID(incident_key), dedup_key=f"incident_status:incident:{incident_key}:{action}",
            payload={"channel": trigger.payload["channel"], "message": message}, status="pending",
            next_attempt_at=now, created_at=now,
        )  # fmt: skip
        follow_ids.append(row.id)
    remember(follow_ids)
    return ids + follow_ids

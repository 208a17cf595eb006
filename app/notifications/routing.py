"""Which policies take a page, and the outbox rows that result.

A :class:`Page` is what happened (an escalate decision, an approval request, a failed execution
or rollback, an incident's status change) with what policies match on: severity, hosts,
services and tags. :func:`route` writes one outbox row per channel of every enabled policy that
matches, inside the caller's transaction, so a page exists exactly when the change that caused it
committed. On the way:

- **repeat interval**: a policy does not page the same thing (trigger and subject, e.g. one
  incident's escalation) again within its ``repeat_interval_minutes``;
- **maintenance**: a window in force whose ``suppress_notifications`` is set and whose scope takes
  in the page's target turns the rows into ``suppressed`` ones (kept, visible, never sent);
- **quiet hours**: a page whose severity is not exempt is delayed to the end of the policy's quiet
  period (``next_attempt_at``); the clock sends it then.

:func:`matches` and :func:`quiet_until` are pure; the rest reads and writes the database.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ..config import Settings
from ..decisions.maintenance import window_covers
from ..models import Incident, MaintenanceWindow, Notification, NotificationPolicy, ProcessedEvent

logger = logging.getLogger(__name__)

#: Ids of the rows written by :func:`route` in this context, due now (see :func:`collected`).
_created: ContextVar[list[int] | None] = ContextVar("notifications_created", default=None)


@dataclass(frozen=True, kw_only=True)
class Page:
    """Something that pages, and what policies match on."""

    #: One of :data:`app.notifications.policies.TRIGGERS`.
    trigger: str
    #: What it is about, as ``<kind>:<id>`` (``incident:<uuid>``, ``approval:7``): with the trigger, the
    #: identity the repeat interval compares.
    subject: str
    title: str
    text: str
    severity: str = "medium"
    hosts: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    incident_id: str | None = None
    #: Shown as facts (Teams), fields (Slack), custom_details (PagerDuty).
    details: Mapping[str, Any] = field(default_factory=dict)
    #: ``[{"label": ..., "url": ...}]``: buttons and links (the approval links among them).
    links: tuple[Mapping[str, str], ...] = ()
    #: PagerDuty's event_action: trigger, acknowledge or resolve.
    event_action: str = "trigger"

    @property
    def dedup_key(self) -> str:
        return f"{self.trigger}:{self.subject}"

    def message(self) -> dict[str, Any]:
        """What the channels format (stored in the outbox row)."""
        return {
            "trigger": self.trigger, "subject": self.subject, "title": self.title, "text": self.text,
            "severity": self.severity, "source": (self.hosts or self.services or ("opsconductor",))[0],
            "incident_id": self.incident_id, "details": dict(self.details),
            "links": [dict(link) for link in self.links], "event_action": self.event_action,
        }  # fmt: skip


def _overlap(wanted: list[str], have: tuple[str, ...]) -> bool:
    return bool({w.lower() for w in wanted} & {h.lower() for h in have})


def matches(matchers: Mapping[str, list[str]], page: Page) -> bool:
    """Whether a policy's matchers take ``page``: every non-empty list must match (names ignore case)."""
    if matchers.get("triggers") and page.trigger not in matchers["triggers"]:
        return False
    if matchers.get("severities") and page.severity.lower() not in {s.lower() for s in matchers["severities"]}:
        return False
    if matchers.get("services") and not _overlap(matchers["services"], page.services):
        return False
    return not (matchers.get("tags") and not _overlap(matchers["tags"], page.tags))


def quiet_until(quiet: Mapping[str, Any] | None, severity: str, now: datetime) -> datetime | None:
    """The end of the quiet period ``now`` falls in, when a page of ``severity`` must wait for it; else None.

    Parameters:
      quiet: ``{start, end, timezone, severities}`` (``HH:MM`` local times; the period may cross
        midnight); pages of the listed severities are exempt.
      now: A time-zone-aware instant.
    """
    if not quiet or severity in (quiet.get("severities") or []):
        return None
    zone = ZoneInfo(quiet.get("timezone") or "UTC")
    local = now.astimezone(zone)
    start, end = (time.fromisoformat(quiet[k]) for k in ("start", "end"))
    clock = local.timetz().replace(tzinfo=None)
    if start < end:
        inside = start <= clock < end
        end_day = local.date()
    else:  # crosses midnight: 22:00-07:00
        inside = clock >= start or clock < end
        end_day = local.date() + timedelta(days=1) if clock >= start else local.date()
    if not inside:
        return None
    return datetime.combine(end_day, end, tzinfo=zone).astimezone(now.tzinfo)


def suppressing_window(page: Page, now: datetime) -> MaintenanceWindow | None:
    """A window in force that suppresses notifications and takes in one of the page's targets."""
    query = MaintenanceWindow.select().where(
        MaintenanceWindow.active == True,  # noqa: E712
        MaintenanceWindow.suppress_notifications == True,  # noqa: E712
        MaintenanceWindow.ends_at.is_null() | (MaintenanceWindow.ends_at > now),
    )
    hosts = page.hosts or (None,)
    services = page.services or (None,)
    for window in query.order_by(MaintenanceWindow.id):
        for host in hosts:
            for service in services:
                if window_covers(window, at=now, host=host, service=service, tags=page.tags):
                    return window
    return None


def _recently_paged(policy: NotificationPolicy, page: Page, now: datetime) -> bool:
    if policy.repeat_interval_minutes <= 0:
        return False
    since = now - timedelta(minutes=policy.repeat_interval_minutes)
    return (
        Notification.select()
        .where(
            Notification.policy_id == policy.id,
            Notification.dedup_key == page.dedup_key,
            Notification.created_at >= since,
            Notification.status != "suppressed",
        )
        .exists()
    )


def _write(page: Page, *, policy_id: int | None, index: int, channel: dict[str, Any], now: datetime,
           suppressed_by: MaintenanceWindow | None, due: datetime | None) -> Notification:  # fmt: skip
    status, reason = "pending", None
    next_at: datetime | None = due or now
    if suppressed_by is not None:
        status, reason, next_at = "suppressed", f"maintenance window {suppressed_by.id} ({suppressed_by.name})", None
    elif due is not None and due > now:
        reason = f"quiet hours: delayed until {due.isoformat()}"
    return Notification.create(
        policy_id=policy_id, channel_index=index, channel_type=channel["type"], trigger=page.trigger,
        incident_id=page.incident_id, dedup_key=page.dedup_key[:255],
        payload={"channel": channel, "message": page.message()}, status=status, reason=reason,
        next_attempt_at=next_at, created_at=now,
    )  # fmt: skip


def route(page: Page, *, now: datetime, fallback: Settings | None = None, skip_types: tuple[str, ...] = ()) -> list[int]:
    """Write the outbox rows of ``page`` (call inside the transaction of the change that pages).

    Parameters:
      fallback: The settings whose NOTIFY_EMAIL_TO is emailed when no policy takes the page (when SMTP
        is configured); None: a page no policy takes goes nowhere.
      skip_types: Channel types this page does not go to (PagerDuty follows incidents by itself).

    Returns:
      The ids of the rows due now, which the caller hands to the ``notify`` actor after commit
      (they are also collected, see :func:`collected`). Delayed rows are sent by the clock.
    """
    policies = [
        p for p in NotificationPolicy.select().where(NotificationPolicy.enabled == True).order_by(NotificationPolicy.id)  # noqa: E712
        if matches(p.matchers or {}, page)
    ]  # fmt: skip
    window = suppressing_window(page, now)
    rows: list[Notification] = []
    for policy in policies:
        if _recently_paged(policy, page, now):
            logger.info("Policy %r already paged %r within %d minutes: not again.", policy.id, page.dedup_key,
                        policy.repeat_interval_minutes)  # fmt: skip
            continue
        due = quiet_until(policy.quiet_hours, page.severity, now)
        for index, channel in enumerate(policy.channels):
            if channel["type"] not in skip_types:
                rows.append(_write(page, policy_id=policy.id, index=index, channel=channel, now=now,
                                   suppressed_by=window, due=due))  # fmt: skip
    if not policies and fallback is not None and fallback.smtp_url and fallback.notify_email_to:
        rows.append(_write(page, policy_id=None, index=0, channel={"type": "email"}, now=now, suppressed_by=window,
                           due=None))  # fmt: skip
    if window is not None and rows:
        logger.info("Maintenance window %r suppressed %d notifications of %r.", window.id, len(rows), page.dedup_key)
    ids = [r.id for r in rows if r.status == "pending" and r.next_attempt_at <= now]
    remember(ids)
    return ids


def remember(ids: list[int]) -> None:
    """Add ``ids`` (rows written now, due at once) to those the enclosing :func:`collected` block gathers."""
    collecting = _created.get()
    if collecting is not None:
        collecting.extend(ids)


def collect() -> tuple[list[int], Token[list[int] | None]]:
    """Start gathering the ids :func:`route` writes in this context; end with :func:`stop_collecting`."""
    ids: list[int] = []
    return ids, _created.set(ids)


def stop_collecting(token: Token[list[int] | None]) -> None:
    _created.reset(token)


@contextmanager
def collected() -> Iterator[list[int]]:
    """The ids of the rows :func:`route` writes inside the block that are due at once.

    An actor wraps its work in it and sends each id to ``notify`` once the work committed; an id
    of a transaction that rolled back finds no row and is ignored.
    """
    ids, token = collect()
    try:
        yield ids
    finally:
        stop_collecting(token)


def targets_of(event_id: Any = None, incident_id: Any = None) -> dict[str, Any]:
    """Severity, hosts, services, tags and title of an event and its incident, for a :class:`Page`."""
    event = ProcessedEvent.get_or_none(ProcessedEvent.id == event_id) if event_id else None
    incident_id = incident_id or (event.correlation_id if event else None)
    incident = Incident.get_or_none(Incident.id == incident_id) if incident_id else None
    hosts = [event.source_host] if event and event.source_host else []
    services = [event.source_service] if event and event.source_service else []
    if incident is not None:
        hosts += [h for h in incident.hosts or [] if h not in hosts]
        services += [s for s in incident.services or [] if s not in services]
    return {
        "severity": (incident.severity if incident else None) or (event.severity if event else None) or "medium",
        "hosts": tuple(hosts), "services": tuple(services), "tags": tuple((event.tags if event else None) or ()),
        "incident_id": str(incident.id) if incident else None,
        "title": (incident.title if incident else None) or (event.title if event else None) or "",
    }  # fmt: skip

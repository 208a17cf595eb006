"""Sending outbox rows: one attempt at a time, retried with backoff, ``failed`` after the last.

An attempt claims its row first (``attempts + 1`` and ``next_attempt_at`` pushed past the attempt,
in a short transaction, the row locked on PostgreSQL), so the clock does not send it again while
it is in flight and two deliveries of one message send it once. The send itself runs outside any
transaction. A failure is logged at INFO and retried after 30 s, 60 s, 120 s ... (at most an
hour); the last allowed attempt's failure makes the row ``failed``, logged at WARNING and audited
(``notification.failed``): a notification is never silently lost.
"""

from __future__ import annotations

import logging
import smtplib
from datetime import UTC, datetime, timedelta
from typing import Any

from .. import audit
from ..actions.http import mask_url
from ..actions.http import send as send_http
from ..actions.notify import send_email
from ..actions.render import Secrets, render, secret_names
from ..actions.targets import TargetPolicy
from ..config import Settings
from ..db import in_transaction, is_postgres, release_connection
from ..errors import ActionNotAllowed, InvalidInput
from ..models import Notification
from ..secrets import reveal
from . import channels
from .policies import PAGERDUTY_URL

logger = logging.getLogger(__name__)

#: The first retry's delay; each next one doubles, up to :data:`MAX_BACKOFF_S`.
FIRST_BACKOFF_S = 30
MAX_BACKOFF_S = 3600
#: How long a claimed row is left alone by the clock beyond the attempt's own timeout, in seconds.
CLAIM_MARGIN_S = 60
#: How long a PagerDuty acknowledge or resolve waits while the trigger it follows is still pending.
FOLLOW_WAIT_S = 10


def backoff(attempts: int) -> timedelta:
    """Delay before the next attempt after ``attempts`` failed ones."""
    return timedelta(seconds=min(MAX_BACKOFF_S, FIRST_BACKOFF_S * 2 ** max(0, attempts - 1)))


def _now() -> datetime:
    return datetime.now(UTC)


def _earlier_pending(row: Notification) -> bool:
    """Whether a PagerDuty event of the same incident and channel, written before ``row``, is still pending."""
    return (
        row.channel_type == "pagerduty"
        and row.incident_id is not None
        and Notification.select().where(
            Notification.id < row.id, Notification.incident_id == row.incident_id,
            Notification.policy_id == row.policy_id, Notification.channel_index == row.channel_index,
            Notification.status == "pending",
        ).exists()
    )  # fmt: skip


def claim(notification_id: int, *, settings: Settings, now: datetime, force: bool = False) -> Notification | None:
    """The row, claimed for one attempt, or None when it is not pending and due (call inside a transaction)."""
    query = Notification.select().where(Notification.id == notification_id)
    row = (query.for_update() if is_postgres() else query).first()
    if row is None or row.status != "pending" or (not force and row.next_attempt_at and row.next_attempt_at > now):
        return None
    if _earlier_pending(row):
        row.next_attempt_at = now + timedelta(seconds=FOLLOW_WAIT_S)
        row.save()
        return None
    row.attempts += 1
    row.next_attempt_at = now + timedelta(seconds=settings.notify_timeout_s * 2 + CLAIM_MARGIN_S)
    row.save()
    return row


def _channel(channel: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The channel with its ``{{ secret.NAME }}`` references filled in."""
    names = secret_names(channel, where="channel")
    if not names:
        return channel
    values = in_transaction(lambda: reveal(names, keys=settings.secret_keys))
    rendered: dict[str, Any] = render(channel, {"secret": Secrets(values)}, where="channel", urls=frozenset({"url"}))
    return rendered


def _post(url: str, body: dict[str, Any], headers: dict[str, str], settings: Settings) -> str | None:
    planned = {"method": "POST", "url": url, "headers": headers, "json": body, "expected_status": [], "verify_tls": True}
    # HTTP_ACTION_ALLOW lists automation targets; chat and paging services only avoid the refused ranges
    outcome = send_http(planned, policy=TargetPolicy.parse(settings.http_action_allow),
                        timeout_s=settings.notify_timeout_s, allow_list=False)  # fmt: skip
    return None if outcome.success else f"POST {mask_url(url)}: {outcome.error}"


def _absolute(message: dict[str, Any], base_url: str) -> dict[str, Any]:
    """The message with its console paths (``/console/...``) made URLs under ``base_url``."""
    links = [{**link, "url": base_url + link["url"] if link["url"].startswith("/") else link["url"]}
             for link in message.get("links") or []]  # fmt: skip
    return {**message, "links": links}


def send(row: Notification, *, settings: Settings) -> str | None:
    """Send ``row`` once; None when the channel accepted it, else what went wrong."""
    message = _absolute(row.payload["message"], settings.base_url)
    try:
        channel = _channel(row.payload["channel"], settings)
        kind = channel["type"]
        if kind == "email":
            subject, body = channels.email(message)
            refused = send_email(settings=settings, to=channel.get("to") or [], subject=subject, message=body,
                                 timeout_s=settings.notify_timeout_s)  # fmt: skip
            return f"the SMTP server refused {', '.join(sorted(refused))}" if refused else None
        if kind == "pagerduty":
            event = channels.pagerduty(message, routing_key=channel["routing_key"])
            return _post(channel.get("url") or PAGERDUTY_URL, event, {}, settings)
        if kind == "slack":
            return _post(channel["url"], channels.slack(message), {}, settings)
        if kind == "teams":
            return _post(channel["url"], channels.teams(message), {}, settings)
        return _post(channel["url"], channels.webhook(message, notification_id=row.id), channel.get("headers") or {},
                     settings)  # fmt: skip
    except (ActionNotAllowed, InvalidInput) as e:
        return f"{type(e).__name__}: {e}"
    except (smtplib.SMTPException, OSError, ValueError) as e:
        return f"email: {type(e).__name__}: {e}"


def _record(notification_id: int, error: str | None, *, settings: Settings, now: datetime) -> str:
    row = Notification.get_by_id(notification_id)
    if error is None:
        row.status, row.sent_at, row.next_attempt_at, row.last_error = "sent", now, None, None
        row.save()
        logger.info("Sent notification %r (%s, %s).", row.id, row.trigger, row.channel_type)
        return "sent"
    row.last_error = error[:2000]
    if row.attempts >= settings.notify_max_attempts:
        row.status, row.next_attempt_at = "failed", None
        row.save()
        logger.warning("Notification %r (%s, %s) failed after %d attempts: %s", row.id, row.trigger, row.channel_type,
                       row.attempts, error)  # fmt: skip
        audit.record(audit.Action.NOTIFICATION_FAILED, actor="notifier", subject=f"notification:{row.id}",
                     details={"trigger": row.trigger, "channel": row.channel_type, "attempts": row.attempts,
                              "error": row.last_error, "policy_id": row.policy_id})  # fmt: skip
        return "failed"
    row.next_attempt_at = now + backoff(row.attempts)
    row.save()
    logger.info("Notification %r (%s) attempt %d failed (%s); next at %s.", row.id, row.channel_type, row.attempts,
                error, row.next_attempt_at.isoformat())  # fmt: skip
    return "pending"


def deliver(notification_id: int, *, settings: Settings, now: Any = _now, force: bool = False) -> str | None:
    """Make one attempt at a pending notification that is due; return its status after it.

    Parameters:
      force: Attempt it even before its ``next_attempt_at`` (an operator's retry).

    Returns:
      ``sent``, ``pending`` (to be retried), ``failed``, or None when there was nothing to do
      (not pending, not yet due, claimed by another attempt, or gone).
    """
    row = in_transaction(lambda: claim(notification_id, settings=settings, now=now(), force=force))
    if row is None:
        return None
    release_connection()  # no connection is held while a target is slow
    error = send(row, settings=settings)
    return str(in_transaction(lambda: _record(notification_id, error, settings=settings, now=now())))


def due(*, now: datetime, limit: int = 500) -> list[int]:
    """Ids of the pending notifications due at ``now`` (a lost message, a retry, the end of quiet hours)."""
    query = (
        Notification.select(Notification.id)
        .where(Notification.status == "pending", Notification.next_attempt_at <= now)
        .order_by(Notification.next_attempt_at)
        .limit(limit)
    )
    return [r.id for r in query]

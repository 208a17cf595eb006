"""Answers to approval requests: approve, reject, or the timeout's rejection.

Who may answer: a key whose role is among the request's approvers, never the requester itself.
Every answer is audited. The timeout is a delayed message scheduled when the request is made;
when it arrives after an answer it changes nothing.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import UTC, datetime
from typing import Any

from ..config import Settings
from ..errors import ActionNotAllowed, Conflict, NotFound
from ..models import Approval, AuditLog, ExecutionStep
from .executions import approval_json, log
from .runner import _locked

logger = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


def _cancel(row: Any, reason: str, now: datetime) -> None:
    row.status, row.completed_at, row.error_message, row.heartbeat_at = "cancelled", now, reason, None
    row.save()
    ExecutionStep.update(status="cancelled", completed_at=now).where(
        ExecutionStep.execution_id == row.id, ExecutionStep.status == "pending"
    ).execute()
    log(row.id, f"Execution cancelled: {reason}")


def answer(execution_id: str, *, approve: bool, actor: str, role: str, comment: str | None = None,
           now: datetime | None = None) -> dict[str, Any]:  # fmt: skip
    """Approve or reject the pending approval of an execution (call inside a transaction).

    Returns:
      The approval as the API shows it; when approved the caller sends the execution to ``execute``.

    Raises:
      NotFound: no such execution. Conflict: nothing awaits an approval.
      ActionNotAllowed: the requester answering its own request, or a role that may not approve.
    """
    now = now or _now()
    row = _locked(execution_id)
    if row is None:
        raise NotFound(f"no execution {execution_id}")
    approval = Approval.get_or_none(Approval.execution_id == row.id)
    if approval is None or approval.status != "pending" or row.status != "awaiting_approval":
        raise Conflict(f"execution {execution_id} is {row.status}: no approval is pending")
    if actor == approval.requested_by:
        raise ActionNotAllowed("the requester cannot approve or reject its own request")
    if role not in approval.approvers:
        raise ActionNotAllowed(f"role {role!r} is not among the approvers {approval.approvers}")
    approval.status = "approved" if approve else "rejected"
    approval.decided_by, approval.decided_at, approval.comment = actor, now, comment
    approval.save()
    verb = "approved" if approve else "rejected"
    log(row.id, f"Approval {approval.id} {verb} by {actor}" + (f": {comment}" if comment else "."))
    AuditLog.create(actor=actor, action=f"approval.{verb}", subject=f"execution:{row.id}",
                    details={"approval_id": approval.id, "comment": comment})  # fmt: skip
    if approve:
        row.status = "queued"
        row.save()
        token = secrets.token_urlsafe(24)
        approval.token_hash = hashlib.sha256(token.encode()).hexdigest()
        approval.save()
        return {**approval_json(approval), "approval_token": token}
    _cancel(row, f"rejected by {actor}", now)
    return approval_json(approval)


def expire(approval_id: int, *, now: datetime | None = None) -> str:
    """Reject a request still pending at its timeout; return what happened.

    Returns ``expired``, ``answered`` (nothing to do) or ``early`` (the caller schedules it again).
    """
    now = now or _now()
    approval = Approval.get_or_none(Approval.id == approval_id)
    if approval is None or approval.status != "pending":
        return "answered"
    row = _locked(str(approval.execution_id))
    approval = Approval.get_by_id(approval_id)  # read again under the execution's lock
    if approval.status != "pending":
        return "answered"
    if approval.expires_at > now:
        return "early"
    approval.status, approval.decided_by, approval.decided_at = "rejected", "system:timeout", now
    approval.comment = f"no answer within {approval.timeout_minutes} minutes"
    approval.save()
    AuditLog.create(actor="system:timeout", action="approval.rejected", subject=f"execution:{approval.execution_id}",
                    details={"approval_id": approval.id, "reason": approval.comment})  # fmt: skip
    if row is not None and row.status == "awaiting_approval":
        _cancel(row, f"approval {approval.id} unanswered within {approval.timeout_minutes} minutes", now)
    return "expired"


def notify_approvers(approval_id: int, *, settings: Settings) -> bool:
    """Email the request to NOTIFY_EMAIL_TO once (when SMTP is configured); return whether it was sent.

    Best effort: a failure is logged on the execution and the request still stands.
    """
    from ..actions.notify import send_email
    from ..db import in_transaction, release_connection

    approval = in_transaction(lambda: Approval.get_or_none(Approval.id == approval_id))
    if approval is None or approval.notified_at is not None or approval.status != "pending":
        return False
    if not settings.smtp_url or not settings.notify_email_to:
        return False
    actions = ", ".join(f"{a['action_id']} ({a.get('risk_level')})" for a in approval.requested_actions)
    message = (
        f"Execution {approval.execution_id} waits for an approval.\n\nWhy: {approval.reason}\n"
        f"Risk: {approval.risk_level} ({approval.risk_score}); business impact: {approval.business_impact}\n"
        f"Actions: {actions}\nApprovers: {', '.join(approval.approvers)}; "
        f"rejected automatically at {approval.expires_at.isoformat()}.\n\n"
        f"POST /api/v1/autonomous/executions/{approval.execution_id}/approve (or /reject)\n"
    )
    release_connection()
    try:
        send_email(settings=settings, to=[], subject=f"Approval needed: {actions}", message=message, timeout_s=30)
    except Exception as e:  # noqa: BLE001 - any SMTP or network failure: logged, the request stands
        logger.warning("Could not notify approvers of approval %r: %s", approval_id, e)
        note = f"Could not notify approvers: {e}"
        in_transaction(lambda: log(approval.execution_id, note, level="warning"))
        return False

    def mark() -> None:
        Approval.update(notified_at=_now()).where(Approval.id == approval_id).execute()
        log(approval.execution_id, f"Approvers notified by email ({', '.join(settings.notify_email_to)}).")

    in_transaction(mark)
    return True

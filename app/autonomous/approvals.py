"""Answers to approval requests: approve, reject, or the timeout's rejection.

Who may answer: a key whose role is among the request's approvers, never the requester itself.
Every answer is audited. The timeout is a delayed message scheduled when the request is made;
when it arrives after an answer it changes nothing.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime
from typing import Any

from ..errors import ActionNotAllowed, Conflict, NotFound
from ..models import Approval, AuditLog, ExecutionStep
from .executions import approval_json, log
from .runner import _locked


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

"""The clock's sweep: executions and approvals whose message was lost are never silently stuck.

Messages carry the work, but a message can be lost outside the broker's guarantees: a web
process that committed an approval and died before its send, a message dead-lettered after
its retries while the database was away. The sweep finds what should be moving and is not,
and sends it again; every handler is idempotent, so a needless resend changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ..models import Approval, Execution, ExecutionLog
from .approvals import expire
from .store import log

#: How long an execution may show no progress before the sweep sends its message again. A resend is
#: logged on the execution, so under a long backlog each one is resent at most this often.
STALE_AFTER = timedelta(minutes=5)


@dataclass
class Sweep:
    execute: list[str] = field(default_factory=list)
    rollback: list[str] = field(default_factory=list)
    expired: list[int] = field(default_factory=list)


def _last_activity(execution_id: object) -> datetime | None:
    row = (
        ExecutionLog.select(ExecutionLog.at)
        .where(ExecutionLog.execution_id == execution_id)
        .order_by(ExecutionLog.id.desc())
        .first()
    )
    return row.at if row else None


def sweep(*, now: datetime | None = None) -> Sweep:
    """What to send again (call inside a transaction; the caller sends after the commit)."""
    now = now or datetime.now(UTC)
    found = Sweep()
    for approval in Approval.select().where(Approval.status == "pending", Approval.expires_at <= now):
        if expire(approval.id, now=now) == "expired":
            found.expired.append(approval.id)
    moving = Execution.select().where(Execution.status.in_(("queued", "running", "rolling_back", "awaiting_approval")))
    for row in moving:
        last = _last_activity(row.id) or row.created_at
        if row.status == "running" and row.heartbeat_at is not None and row.heartbeat_at > now:
            continue  # a live worker holds the lease
        if now - last < STALE_AFTER:
            continue
        if row.status == "awaiting_approval":
            answer = Approval.get_or_none(Approval.execution_id == row.id)
            if answer is None or answer.status != "approved":
                continue  # waiting for a human is not being stuck
        (found.rollback if row.status == "rolling_back" else found.execute).append(str(row.id))
        log(row.id, f"No progress since {last.isoformat()}: the clock sends the execution on again.", level="warning")
    return found

"""The ``decide`` actor: risk, decision and approvals (a later milestone).

Until the decider lands it records that a firing is waiting for a decision, so
the hand-off from the evaluator is in place and visible in the audit log.
"""

from __future__ import annotations

import logging

import dramatiq

from ..db import in_transaction
from ..models import AuditLog, RuleExecution

logger = logging.getLogger(__name__)


@dramatiq.actor(queue_name="decide", time_limit=300_000)
def decide(execution_id: int) -> None:
    """Record the firing ``execution_id`` as awaiting a decision."""

    def work() -> None:
        execution = RuleExecution.get_or_none(RuleExecution.id == execution_id)
        if execution is None:
            logger.warning("Firing %r no longer exists.", execution_id)
            return
        AuditLog.create(
            actor="decider",
            action="firing.received",
            subject=f"rule_execution:{execution_id}",
            details={"rule_id": execution.trigger_rule_id, "event_id": str(execution.triggering_event_id)},
        )

    in_transaction(work)

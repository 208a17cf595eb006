"""The ``rollback`` actor: compensates an execution's completed remediation steps, newest first."""

from __future__ import annotations

import logging

import dramatiq

from ..config import get_settings
from ..errors import InvalidMessage
from ..executions.rollback import WAITING, escalate, run_rollback

logger = logging.getLogger(__name__)


@dramatiq.actor(queue_name="rollback", throws=(InvalidMessage,), time_limit=25 * 3600_000)
def rollback(execution_id: str, actor: str = "rollbacker") -> None:
    """Roll ``execution_id`` back, or resume its rollback; idempotent."""
    if not isinstance(execution_id, str):
        raise InvalidMessage("a rollback message carries an execution id")
    status = run_rollback(execution_id, settings=get_settings(), actor=actor)
    logger.info("Rollback of execution %r: %s.", execution_id, status)
    if status == "rollback_failed":
        escalate(execution_id, settings=get_settings())
    if status == WAITING:  # another execution acts on its resources: ask again later
        delay_ms = int(get_settings().lease_retry_s * 1000)
        rollback.send_with_options(args=(execution_id, actor), delay=delay_ms)

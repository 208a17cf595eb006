"""The ``decide`` actor: risk, decision and approval timeouts for each rule firing.

The work is in :mod:`app.autonomous.analysis` (gathering, LLM, recording) and
:mod:`app.autonomous.decision` (the policy); this module decodes and hands on.
"""

from __future__ import annotations

import logging

import dramatiq

from ..autonomous.analysis import decide_firing
from ..autonomous.approvals import expire
from ..db import in_transaction
from ..errors import InvalidMessage
from ..runtime import settings
from .executor import execute

logger = logging.getLogger(__name__)


@dramatiq.actor(queue_name="decide", throws=(InvalidMessage,), time_limit=300_000)
def decide(execution_id: int) -> None:
    """Decide the rule firing ``execution_id`` (a ``rules.rule_executions`` id) and send its execution on.

    A redelivered firing is not decided twice; its execution is sent again (the executor
    runs nothing twice).
    """
    if not isinstance(execution_id, int) or isinstance(execution_id, bool):
        raise InvalidMessage("a decide message carries a rule execution id")
    run = decide_firing(execution_id, settings=settings())
    if run is not None and run.status in ("queued", "running"):
        logger.info("Firing %r decided: execution %r queued.", execution_id, str(run.id))
        execute.send(str(run.id))


@dramatiq.actor(queue_name="decide", throws=(InvalidMessage,), time_limit=60_000)
def expire_approval(approval_id: int) -> None:
    """Reject the approval request ``approval_id`` if it is still unanswered (a delayed message)."""
    if not isinstance(approval_id, int) or isinstance(approval_id, bool):
        raise InvalidMessage("an expire_approval message carries an approval id")
    outcome = in_transaction(lambda: expire(approval_id))
    if outcome == "early":
        # Delivered before its time (clocks of hosts differ slightly): look again shortly.
        expire_approval.send_with_options(args=(approval_id,), delay=1_000)
    elif outcome == "expired":
        logger.info("Approval %r was not answered in time: rejected.", approval_id)

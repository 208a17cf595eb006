"""The ``decide`` actor: risk and decision for each rule firing.

The work is in :mod:`app.decisions.analysis` (gathering, LLM, recording) and
:mod:`app.decisions.policy` (the policy); this module decodes and hands on.
"""

from __future__ import annotations

import logging

import dramatiq

from ..config import get_settings
from ..decisions.analysis import decide_firing
from ..errors import InvalidMessage
from ..notifications.routing import collected
from .executor import execute
from .notifier import send_all

logger = logging.getLogger(__name__)


@dramatiq.actor(queue_name="decide", throws=(InvalidMessage,), time_limit=300_000)
def decide(rule_execution_id: int) -> None:
    """Decide the rule firing ``rule_execution_id`` (a ``rules.rule_executions`` id) and send its execution on.

    The id travels as the message's one positional argument (``decide.send(id)``), so messages
    sent before this parameter had its name are decided alike. A redelivered firing is not
    decided twice; its execution is sent again (the executor runs nothing twice).
    """
    if not isinstance(rule_execution_id, int) or isinstance(rule_execution_id, bool):
        raise InvalidMessage("a decide message carries a rule execution id")
    with collected() as paged:
        run = decide_firing(rule_execution_id, settings=get_settings())
    send_all(paged)  # an escalation's notifications, committed with the decision
    if run is not None and run.status in ("queued", "running"):
        logger.info("Firing %r decided: execution %r queued.", rule_execution_id, str(run.id))
        execute.send(str(run.id))

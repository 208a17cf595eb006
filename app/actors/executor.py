"""The ``execute`` actor: runs an execution's steps (see :mod:`app.executions.runner`).

Run it under gevent (``dramatiq-gevent``): steps wait on HTTP, SMTP and programs, so one
process runs hundreds of them at once.
"""

from __future__ import annotations

import logging

import dramatiq

from ..config import get_settings
from ..errors import InvalidMessage
from ..executions.notices import notify_approvers
from ..executions.runner import run
from ..notifications.routing import collected
from .expirer import expire_approval
from .notifier import send_all
from .rollbacker import rollback

logger = logging.getLogger(__name__)


@dramatiq.actor(queue_name="execute", throws=(InvalidMessage,), time_limit=25 * 3600_000)
def execute(execution_id: str) -> None:
    """Run or resume ``execution_id`` until it completes, fails or waits for an approval."""
    if not isinstance(execution_id, str):
        raise InvalidMessage("an execute message carries an execution id")
    with collected() as paged:
        result = run(execution_id, settings=get_settings())
    send_all(paged)  # a failure's notifications, committed with it
    logger.info("Execution %r is %s.", execution_id, result.status)
    if result.approval_id is not None:
        minutes = get_settings().approval_timeout_minutes
        expire_approval.send_with_options(args=(result.approval_id,), delay=int(minutes * 60_000))
        notify_approvers(result.approval_id, settings=get_settings())
    if result.rollback:
        rollback.send(execution_id)
    if result.wait_s is not None:  # a target resource is leased to another execution: ask again later
        execute.send_with_options(args=(execution_id,), delay=int(result.wait_s * 1000))

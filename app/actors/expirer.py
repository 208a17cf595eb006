"""The ``expire_approval`` actor: rejects an approval request nobody answered in time.

The executor sends it, delayed by ``APPROVAL_TIMEOUT_MINUTES``, when an execution starts to wait
for an approval. It stays on the ``decide`` queue, where it has always been, so that messages
already delayed there (up to the approval timeout) are still processed, and the ``decide``
process type runs it as before.
"""

from __future__ import annotations

import logging

import dramatiq

from ..db import in_transaction
from ..errors import InvalidMessage
from ..executions.approvals import expire

logger = logging.getLogger(__name__)


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

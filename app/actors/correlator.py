"""The ``correlate`` actor: groups stored events into incidents.

Each batch is correlated in one transaction (see :mod:`app.correlation.store`)
and then handed on to the rule evaluator. A late batch (the pipeline is behind)
also correlates the events of the batches queued after it, so a backlog of small
batches drains at the per-event cost; each message still hands its own events
on, once they are correlated, whichever batch correlated them.
"""

from __future__ import annotations

import logging

import dramatiq

from ..correlation.store import CLAIM, correlate_batch
from ..errors import InvalidMessage
from ..notifications.routing import collected
from .evaluator import evaluate
from .notifier import send_all

logger = logging.getLogger(__name__)


@dramatiq.actor(queue_name="correlate", throws=(InvalidMessage,), time_limit=300_000)
def correlate(event_ids: list[str]) -> None:
    """Join each stored event to an incident (or open or close one), then send the batch to ``evaluate``."""
    if not isinstance(event_ids, list) or not all(isinstance(i, str) for i in event_ids):
        raise InvalidMessage("a correlate message carries a list of event ids")
    with collected() as paged:
        assigned = correlate_batch(event_ids, claim=CLAIM)
    send_all(paged)  # resolution events resolve the incidents' PagerDuty alerts
    logger.debug("Correlated %d of %d events.", len(assigned), len(event_ids))
    evaluate.send(event_ids)

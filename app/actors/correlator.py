"""The ``correlate`` actor: groups stored events into incidents.

Until incident correlation lands it hands the stored events straight on to
the rule evaluator, so the pipeline normalize → correlate → evaluate → decide
runs end to end and every queue shows in the RabbitMQ management UI.
"""

from __future__ import annotations

import logging

import dramatiq

from .evaluator import evaluate

logger = logging.getLogger(__name__)


@dramatiq.actor(queue_name="correlate", time_limit=300_000)
def correlate(event_ids: list[str]) -> None:
    """Receive the ids of stored events and send them on to ``evaluate`` (grouping into incidents comes later)."""
    logger.debug("Handing %d events on to the rule evaluator.", len(event_ids))
    evaluate.send(event_ids)

"""The ``correlate`` actor: groups stored events into incidents.

Until the correlator lands (issue: correlation into incidents) it only
acknowledges, so that the hand-off from the normalizer is in place and its
queue is visible and drained in the RabbitMQ management UI.
"""

from __future__ import annotations

import logging

import dramatiq

logger = logging.getLogger(__name__)


@dramatiq.actor(queue_name="correlate", time_limit=300_000)
def correlate(event_ids: list[str]) -> None:
    """Receive the ids of stored events (correlation itself is not implemented yet)."""
    logger.debug("Received %d events to correlate.", len(event_ids))

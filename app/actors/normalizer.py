"""The ``normalize`` actor: raw input of every source in, stored events out, handed to ``correlate``."""

from __future__ import annotations

import logging
from typing import Any

import dramatiq

from ..config import get_settings
from ..errors import InvalidMessage
from ..events.envelope import check_batch
from ..events.store import store_batch
from .correlator import correlate

logger = logging.getLogger(__name__)


@dramatiq.actor(queue_name="normalize", throws=(InvalidMessage,), time_limit=300_000)
def normalize(batch: Any) -> None:
    """Parse, de-duplicate and store a micro-batch of raw items, then send it on.

    Bad items, and items whose values the database refuses, are stored raw with
    their error while the rest of the batch is stored; a malformed message raises
    :class:`InvalidMessage` and goes straight to ``normalize.XQ``; a database
    failure, in parsing (operators' rules are read from the database) as in
    storing, raises :class:`DatabaseUnavailable` and is retried with backoff.
    """
    items = check_batch(batch)
    result = store_batch(items, window_s=get_settings().dedup_window_seconds)
    logger.debug(
        "Stored batch of %d items: %d new, %d events inserted, %d folded, %d unparseable.",
        len(items), result.new_raw, len(result.inserted), len(result.folded), result.errors,
    )  # fmt: skip
    if result.event_ids:
        # After the commit: a crash before this send redelivers the batch, which
        # stores nothing twice but sends the event ids again.
        correlate.send(result.event_ids)

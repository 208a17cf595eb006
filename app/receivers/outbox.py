"""From receivers to the ``normalize`` queue: micro-batches, a memory buffer, a disk spool.

Syslog and SNMP senders cannot retry, so once a datagram is read it must not
be lost when RabbitMQ is away. :meth:`Outbox.put` never blocks and never does
I/O: it appends to a bounded in-memory buffer. One greenlet publishes the
buffer in batches (one confirmed message per batch). While the broker is
unreachable, batches go to the on-disk :class:`Spool`, in order, and are
replayed first when it returns. Only when memory and spool are both full is
input dropped — counted and logged.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from ..errors import BrokerUnavailable
from .spool import Spool

logger = logging.getLogger(__name__)

#: Items per published message.
MAX_BATCH = 500
#: Longest an item waits in memory for its batch to fill, in seconds.
LINGER_S = 0.02
#: Retry delays while the broker is away, in seconds.
MIN_RETRY_S, MAX_RETRY_S = 0.5, 10.0


class Outbox:
    """Buffer, batch and publish items; spool them while the broker is away.

    Parameters:
      publish: Publishes one batch durably or raises :class:`BrokerUnavailable`.
      spool: Where batches wait while the broker is away.
      max_memory: Items held in memory before the oldest are written to the spool.
    """

    def __init__(
        self,
        *,
        publish: Callable[[list[dict[str, Any]]], None],
        spool: Spool,
        max_memory: int = 50_000,
        max_batch: int = MAX_BATCH,
        linger_s: float = LINGER_S,
    ) -> None:
        import gevent.event

        self.publish = publish
        self.spool = spool
        self.max_memory = max_memory
        self.max_batch = max_batch
        self.linger_s = linger_s
        self.memory: deque[dict[str, Any]] = deque()
        self.stats = {"received": 0, "published": 0, "spooled": 0, "replayed": 0, "dropped_full": 0}
        self.broker_up = True
        self._wake = gevent.event.Event()
        self._stopping = False

    def put(self, item: dict[str, Any]) -> None:
        """Accept one item. Never blocks, never raises for a full buffer (it spools or counts a drop)."""
        self.stats["received"] += 1
        if len(self.memory) >= self.max_memory:
            self._spill(self.max_batch)
        self.memory.append(item)
        if len(self.memory) >= self.max_batch:
            self._wake.set()

    def _take(self, n: int) -> list[dict[str, Any]]:
        return [self.memory.popleft() for _ in range(min(n, len(self.memory)))]

    def _spill(self, n: int) -> None:
        batch = self._take(n)
        if self.spool.push(batch):
            self.stats["spooled"] += len(batch)
        else:
            self.stats["dropped_full"] += len(batch)
            logger.error("Dropped %d items: memory buffer and spool %s are full.", len(batch), self.spool.path)

    def _send(self, batch: list[dict[str, Any]]) -> bool:
        try:
            self.publish(batch)
        except Exception as e:  # noqa: BLE001 - the batch is kept whatever failed: it is never dropped
            # pika lets socket errors through unwrapped while it connects through a cut link (``OSError``,
            # ``ValueError: Expected connected socket``): were they to escape, this loop would end and
            # every item after would wait in memory unpublished. Anything but a publish counts as not done.
            if self.broker_up:
                logger.critical("RabbitMQ is unreachable (%s); spooling to %s.", e, self.spool.path,
                                exc_info=not isinstance(e, BrokerUnavailable))  # fmt: skip
            self.broker_up = False
            return False
        if not self.broker_up:
            logger.warning("RabbitMQ is back; replaying %d spooled batches.", len(self.spool))
        self.broker_up = True
        return True

    def flush(self) -> bool:
        """Publish the spool (oldest first), then memory. Returns False when the broker is away.

        While a publish is in flight other greenlets run and may spill newer items
        to the spool; a batch that fails therefore goes to the spool's front.
        """
        while (batch := self.spool.peek()) is not None:
            if not self._send(batch):
                return False
            self.spool.pop()
            self.stats["replayed"] += len(batch)
            self.stats["published"] += len(batch)
        while self.memory:
            batch = self._take(self.max_batch)
            if not self._send(batch):
                self.spool.push_front(batch)
                self.stats["spooled"] += len(batch)
                while self.memory:  # keep order: everything older than new arrivals goes behind it
                    self._spill(self.max_batch)
                return False
            self.stats["published"] += len(batch)
        return True

    def run(self) -> None:
        """The publisher loop (run it in a greenlet)."""
        retry_s = MIN_RETRY_S
        while not self._stopping:
            self._wake.wait(timeout=self.linger_s if self.broker_up else retry_s)
            self._wake.clear()
            if self.flush():
                retry_s = MIN_RETRY_S
            else:
                retry_s = min(retry_s * 2, MAX_RETRY_S)

    def stop(self, *, runner: Any = None, timeout_s: float = 20.0) -> None:
        """Publish what is left, or spool it when the broker is away (SIGTERM).

        Parameters:
          runner: The greenlet running :meth:`run`; it finishes its current batch first
            (killing it mid-publish would lose that batch).
        """
        self._stopping = True
        self._wake.set()
        deadline = time.monotonic() + timeout_s
        if runner is not None:
            runner.join(timeout=timeout_s)
        while (self.memory or len(self.spool)) and time.monotonic() < deadline:
            if not self.flush():
                break
        while self.memory:
            self._spill(self.max_batch)

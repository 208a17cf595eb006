"""Publishing raw items to the ``normalize`` queue, durably and in batches.

RabbitMQ confirms one publish at a time on a channel, and a confirm costs a
round trip (~0.5 ms here), so one confirm per request would cap a web process
near 1,900 requests/s. :class:`BatchPublisher` runs one publisher greenlet per
process: requests hand it their items and wait; it sends everything that
arrived while the previous publish was in flight as one message, and wakes all
of those requests when RabbitMQ confirms it (group commit). Under low load a
batch is a single request; under high load batches grow by themselves.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import dramatiq

from .errors import BrokerUnavailable

logger = logging.getLogger(__name__)

#: Most items in one normalize message published by the web tier.
MAX_BATCH_ITEMS = 1000


class Publisher(Protocol):
    def publish(self, items: list[dict[str, Any]]) -> None:
        """Return once the items are durable in the broker.

        Raises:
          BrokerUnavailable: the broker did not confirm in time.
        """


def normalize_message(items: list[dict[str, Any]]) -> dramatiq.Message:
    return dramatiq.Message(queue_name="normalize", actor_name="normalize", args=(items,), kwargs={}, options={})


def publish_items(broker: dramatiq.Broker, items: list[dict[str, Any]]) -> None:
    try:
        broker.enqueue(normalize_message(items))
    except dramatiq.errors.ConnectionError as e:
        raise BrokerUnavailable(str(e) or type(e).__name__) from None


class DirectPublisher:
    """One publish per call, on the caller's thread (tests, scripts)."""

    def __init__(self, broker: dramatiq.Broker) -> None:
        self.broker = broker

    def publish(self, items: list[dict[str, Any]]) -> None:
        publish_items(self.broker, items)


class BatchPublisher:
    """Group commit of concurrent requests' items into one confirmed message (gevent only).

    Parameters:
      broker: The Dramatiq broker (its connection belongs to the publisher greenlet).
      timeout_s: Longest a request waits for its confirm before answering 503.
    """

    def __init__(self, broker: dramatiq.Broker, *, timeout_s: float = 15.0) -> None:
        import gevent
        import gevent.queue

        self.broker = broker
        self.timeout_s = timeout_s
        self._queue: gevent.queue.Queue = gevent.queue.Queue()
        self._greenlet = gevent.spawn(self._run)

    def publish(self, items: list[dict[str, Any]]) -> None:
        from gevent.event import AsyncResult

        done = AsyncResult()
        self._queue.put((items, done))
        try:
            done.get(timeout=self.timeout_s)
        except BrokerUnavailable:
            raise
        except Exception as e:  # gevent.Timeout and anything unexpected
            raise BrokerUnavailable(f"no confirm from the broker within {self.timeout_s:.0f} s") from e

    def _take(self) -> list[tuple[list[dict[str, Any]], Any]]:
        waiting = [self._queue.get()]
        count = len(waiting[0][0])
        while count < MAX_BATCH_ITEMS and not self._queue.empty():
            entry = self._queue.get_nowait()
            waiting.append(entry)
            count += len(entry[0])
        return waiting

    def _run(self) -> None:
        while True:
            waiting = self._take()
            items = [item for batch, _ in waiting for item in batch]
            try:
                publish_items(self.broker, items)
            except Exception as e:  # noqa: BLE001 - every waiting request must hear about it
                error = e if isinstance(e, BrokerUnavailable) else BrokerUnavailable(str(e))
                logger.critical("Could not publish %d events to RabbitMQ: %s", len(items), error)
                for _, done in waiting:
                    done.set_exception(error)
            else:
                for _, done in waiting:
                    done.set(None)

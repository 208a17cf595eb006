"""Publishing raw items to the ``normalize`` queue, durably and in batches.

RabbitMQ confirms one publish at a time on a channel, and a confirm costs a
round trip (~0.5 ms here), so one confirm per request would cap a web process
near 1,900 requests/s. :class:`BatchPublisher` runs a few publisher greenlets per
process: requests hand them their items and wait; a free publisher sends
everything that arrived while it was busy as one message, and wakes all of
those requests when RabbitMQ confirms it (group commit). Under low load a
batch is a single request; under high load batches grow by themselves.

Several publishers, each on its own connection and channel, keep several
confirms in flight: with one, a request arriving just after a publish waited
for that publish's whole confirm round trip before its own could start, and a
busy process (two web workers beside RabbitMQ on two cores, each confirm also
waiting for the process to be scheduled and its greenlets to run) spent most
of each round trip idle, so a second worker added little. A publish overlaps
another only for a group of :data:`MIN_OVERLAPPING_GROUP` requests or more, so
slow requests (arrays) still share a confirm rather than each paying for one.

One request must never fail the others sharing its confirm: each request's
items are encoded on the request's own greenlet before they join a group (an
item that cannot be encoded fails that request alone, as bad input), and when
a grouped publish fails for any reason but a lost broker, each request of the
group is published again on its own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from time import perf_counter
from typing import Any, Protocol

import dramatiq
import orjson
import pika
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from .errors import BrokerUnavailable, InvalidInput

logger = logging.getLogger(__name__)

#: Most items in one normalize message published by the web tier.
MAX_BATCH_ITEMS = 1000
#: Publisher greenlets (connections to RabbitMQ) per web process: most confirms in flight at once.
#: Two beat one by ~10 % on single events here (bench/webhook.py); four were no better than two.
PUBLISHERS = 2
#: Requests waiting that are worth a publish of their own while another group's confirm is in flight.
#: Fewer wait for that confirm and join the next group: a publish costs ~0.3 ms of CPU here (pika, and
#: RabbitMQ as much again), so one per request of 100 events would cost more than accepting them.
MIN_OVERLAPPING_GROUP = 8


class Publisher(Protocol):
    def publish(self, items: list[dict[str, Any]]) -> None:
        """Return once the items are durable in the broker.

        Raises:
          BrokerUnavailable: the broker did not confirm in time.
        """


def normalize_message(items: list[dict[str, Any]] | orjson.Fragment) -> dramatiq.Message:
    return dramatiq.Message(queue_name="normalize", actor_name="normalize", args=(items,), kwargs={}, options={})


def publish_items(broker: dramatiq.Broker, items: list[dict[str, Any]] | orjson.Fragment) -> None:
    try:
        broker.enqueue(normalize_message(items))
    except dramatiq.errors.BrokerConnectionError as e:
        raise BrokerUnavailable(str(e) or type(e).__name__) from None


def encode_items(items: list[dict[str, Any]]) -> bytes:
    """The JSON array of ``items`` as it will travel in a normalize message.

    Raises:
      InvalidInput: an item cannot be encoded (the web edge refuses such input first; this is the last guard).
    """
    try:
        return orjson.dumps(items)
    except orjson.JSONEncodeError as e:
        raise InvalidInput(f"the events cannot be encoded for the broker: {e}", field="body") from None


def join_encoded(parts: list[bytes]) -> orjson.Fragment:
    """Several encoded JSON arrays as one array, without decoding them.

    # PERF: the group's message is a concatenation of bytes its requests encoded already.
    """
    return orjson.Fragment(b"[" + b",".join(p[1:-1] for p in parts if p != b"[]") + b"]")


class DirectPublisher:
    """One publish per call, on the caller's thread (tests, scripts)."""

    def __init__(self, broker: dramatiq.Broker) -> None:
        self.broker = broker

    def publish(self, items: list[dict[str, Any]]) -> None:
        publish_items(self.broker, items)


@dataclass
class GroupCommitStats:
    """What this process's group commits cost, counted since it started: where a request's wait goes.

    ``bench/webhook.py`` reads them when a web worker exits (py-spy shows CPU, not waiting).
    """

    #: Published groups, and the requests they carried.
    groups: int = 0
    requests: int = 0
    #: Seconds spent publishing groups (encode, send, RabbitMQ's confirm), summed over groups.
    publish_s: float = 0.0
    #: Seconds requests spent in :meth:`BatchPublisher.publish` (waiting for a group, then its confirm), summed.
    wait_s: float = 0.0


#: The group commits of this process (one web process has one :class:`BatchPublisher`).
STATS = GroupCommitStats()


@dataclass
class _Waiting:
    """One request's items, encoded, and the result it waits on."""

    encoded: bytes
    count: int
    done: Any  # gevent.event.AsyncResult


class BatchPublisher:
    """Group commit of concurrent requests' items into one confirmed message (gevent only).

    Parameters:
      broker: The Dramatiq broker. Its connection is per thread, so per greenlet under gevent:
        each publisher greenlet publishes on a connection and channel of its own.
      timeout_s: Longest a request waits for its confirm before answering 503.
      publishers: Publisher greenlets, so confirms in flight at once.
    """

    def __init__(self, broker: dramatiq.Broker, *, timeout_s: float = 15.0, publishers: int = PUBLISHERS) -> None:
        import gevent
        import gevent.event
        import gevent.lock
        import gevent.queue

        self.broker = broker
        self.timeout_s = timeout_s
        # PERF: gevent's classes kept here, not imported per request (this module loads without gevent too).
        self._result = gevent.event.AsyncResult
        self._timeout = gevent.Timeout
        self._queue: gevent.queue.Queue = gevent.queue.Queue()
        #: One publisher gathers the next group at a time; the others wait their turn here.
        self._gathering = gevent.lock.Semaphore()
        #: Set when a publish ends or the queue grows to a group worth overlapping.
        self._changed = gevent.event.Event()
        self._in_flight = 0
        self._greenlets = [gevent.spawn(self._run) for _ in range(publishers)]

    def publish(self, items: list[dict[str, Any]]) -> None:
        """Return once the items are durable in the broker.

        Raises:
          InvalidInput: the items cannot be encoded (only this request fails).
          BrokerUnavailable: the broker did not confirm in time.
        """
        encoded = encode_items(items)  # on this request's greenlet: a bad request fails alone
        done = self._result()
        started = perf_counter()
        self._queue.put(_Waiting(encoded, len(items), done))
        if self._in_flight and self._queue.qsize() >= MIN_OVERLAPPING_GROUP - 1:
            self._changed.set()
        try:
            done.get(timeout=self.timeout_s)
            STATS.wait_s += perf_counter() - started
        except BrokerUnavailable:
            raise
        except (Exception, self._timeout) as e:  # gevent.Timeout is a BaseException: without it, a 500
            raise BrokerUnavailable(f"no confirm from the broker within {self.timeout_s:.0f} s") from e

    def close(self) -> None:
        """Stop the publisher greenlets (requests still waiting time out with 503)."""
        import gevent

        gevent.killall(self._greenlets)

    def _take(self) -> list[_Waiting]:
        """The next group: the oldest request and those after it, up to :data:`MAX_BATCH_ITEMS` items.

        While another group's confirm is in flight, a small group waits for it (and grows meanwhile).
        Counts the group in ``_in_flight`` before the next publisher may gather.
        """
        with self._gathering:
            waiting = [self._queue.get()]
            # Cooperative: nothing runs between the check and clear(), so no set() is missed.
            while self._in_flight and self._queue.qsize() + 1 < MIN_OVERLAPPING_GROUP:
                self._changed.clear()
                self._changed.wait()
            count = waiting[0].count
            while count < MAX_BATCH_ITEMS and not self._queue.empty():
                entry = self._queue.get_nowait()
                waiting.append(entry)
                count += entry.count
            self._in_flight += 1
            return waiting

    def _publish(self, waiting: list[_Waiting]) -> None:
        publish_items(self.broker, join_encoded([w.encoded for w in waiting]))

    def _connect(self) -> None:
        """Open this publisher greenlet's connection and channel now rather than on the first request.

        Opening one costs a few milliseconds of the worker's time (DNS through gevent's resolver, the AMQP
        handshake, confirms on): on a first request it delayed every request of the worker. A broker away at
        start is no error here: the first publish connects again (and a request waits at most ``timeout_s``).
        """
        if not isinstance(self.broker, RabbitmqBroker):
            return
        try:
            self.broker.channel  # noqa: B018 - the property opens this greenlet's connection and channel
        except (pika.exceptions.AMQPError, OSError, ValueError) as e:
            logger.warning("RabbitMQ did not accept a publisher connection at start (%s: %s); retrying on the "
                           "first publish.", type(e).__name__, e)  # fmt: skip

    def _run(self) -> None:
        self._connect()
        while True:
            waiting = self._take()
            try:
                self._publish_group(waiting)
            finally:
                self._in_flight -= 1
                self._changed.set()

    def _publish_group(self, waiting: list[_Waiting]) -> None:
        started = perf_counter()
        try:
            self._publish(waiting)
        except BrokerUnavailable as error:  # the broker is away: every waiting request must hear about it
            logger.critical("Could not publish %d events to RabbitMQ: %s", sum(w.count for w in waiting), error)
            for entry in waiting:
                entry.done.set_exception(error)
        except Exception:  # noqa: BLE001 - perhaps one request's fault: publish each on its own
            logger.error("A group of %d requests failed to publish; publishing each alone.", len(waiting),
                         exc_info=True)  # fmt: skip
            for entry in waiting:
                self._publish_alone(entry)
        else:
            STATS.groups += 1
            STATS.requests += len(waiting)
            STATS.publish_s += perf_counter() - started
            for entry in waiting:
                entry.done.set(None)

    def _publish_alone(self, entry: _Waiting) -> None:
        try:
            self._publish([entry])
        except BrokerUnavailable as error:
            entry.done.set_exception(error)
        except Exception as e:  # noqa: BLE001 - this request's own failure
            logger.error("Could not publish a request of %d events: %s", entry.count, e, exc_info=True)
            entry.done.set_exception(BrokerUnavailable(f"{type(e).__name__}: {e}"))
        else:
            entry.done.set(None)


class Dispatcher(Protocol):
    def __call__(self, actor_name: str, *args: Any) -> None:
        """Send one message to the actor named ``actor_name`` (its queue has the same name).

        Raises:
          BrokerUnavailable: the broker could not be reached.
        """


@dataclass(frozen=True)
class BrokerDispatcher:
    """Sends to actors by name through ``broker`` (None: Dramatiq's global broker, looked up per send),
    so the web tier hands work on without importing actor modules."""

    broker: dramatiq.Broker | None = None

    def __call__(self, actor_name: str, *args: Any) -> None:
        broker = self.broker or dramatiq.get_broker()
        try:
            broker.get_actor(actor_name).send(*args)
        except dramatiq.errors.BrokerConnectionError as e:
            raise BrokerUnavailable(str(e)) from None

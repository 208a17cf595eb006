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

A publish that no node of the broker takes (a cluster's failover: a node's listener gone, a quorum
queue's leader elected again) is tried again for :data:`RETRY_WITHIN_S` before its requests hear 503.
"""

from __future__ import annotations

import logging
from collections import deque
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
#: Seconds a group's publish is tried again, with a growing pause, after no node of the broker took it.
#: A cluster's failover (a node's listener gone, a quorum queue's leader elected again) is over in about a
#: second; until then the publish fails at once (Dramatiq's six attempts take ~0.1 s), and a request told
#: 503 for it would only have to come back. A broker away for longer still gets a 503 within this time.
RETRY_WITHIN_S = 3.0
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


class _Group:
    """Requests whose items go out in one message: their encoded arrays, and the event they all wait on.

    # PERF: one event per group, not a result and a timer per request: a confirm wakes its group with one
    # callback, and no request starts and cancels a timer of its own (the watchdog times groups out).
    """

    __slots__ = ("parts", "count", "opened", "done", "errors")

    def __init__(self, done: Any) -> None:
        #: Each request's items, encoded; a request is known by its index here.
        self.parts: list[bytes] = []
        #: Items in the group.
        self.count = 0
        #: perf_counter() seconds when the group's first request arrived.
        self.opened = perf_counter()
        self.done = done  # gevent.event.Event
        #: None once confirmed; otherwise, per request, why it failed (None: that request was confirmed).
        self.errors: list[str | None] | None = None

    def finish(self, errors: list[str | None] | None = None) -> None:
        """Answer every request of the group, once: the first answer (a confirm or a timeout) stands."""
        if not self.done.is_set():
            self.errors = errors
            self.done.set()


class BatchPublisher:
    """Group commit of concurrent requests' items into one confirmed message (gevent only).

    Parameters:
      broker: The Dramatiq broker. Its connection is per thread, so per greenlet under gevent:
        each publisher greenlet publishes on a connection and channel of its own.
      timeout_s: Longest a request waits for its confirm before answering 503 (give or take the watchdog's
        period, ``timeout_s / 4`` and at most a second).
      publishers: Publisher greenlets, so confirms in flight at once.
      retry_within_s: How long a group's publish is tried again while no node of the broker takes it
        (:data:`RETRY_WITHIN_S`; at most ``timeout_s``).
    """

    def __init__(self, broker: dramatiq.Broker, *, timeout_s: float = 15.0, publishers: int = PUBLISHERS,
                 retry_within_s: float = RETRY_WITHIN_S) -> None:  # fmt: skip
        import gevent
        import gevent.event

        self.broker = broker
        self.timeout_s = timeout_s
        self.retry_within_s = min(retry_within_s, timeout_s)
        self._sleep = gevent.sleep
        # PERF: gevent's class kept here, not imported per group (this module loads without gevent too).
        self._event = gevent.event.Event
        #: Groups not yet taken by a publisher, oldest first; requests join the newest.
        self._pending: deque[_Group] = deque()
        #: Groups published and not yet confirmed.
        self._publishing: set[_Group] = set()
        #: Set when a publisher may have a group to take: a request arrived, or a publish ended.
        self._wake = gevent.event.Event()
        self._greenlets = [gevent.spawn(self._run) for _ in range(publishers)]
        self._greenlets.append(gevent.spawn(self._watch))

    def publish(self, items: list[dict[str, Any]]) -> None:
        """Return once the items are durable in the broker.

        Raises:
          InvalidInput: the items cannot be encoded (only this request fails).
          BrokerUnavailable: the broker did not confirm in time.
        """
        encoded = encode_items(items)  # on this request's greenlet: a bad request fails alone
        started = perf_counter()
        pending = self._pending
        group = pending[-1] if pending else None
        if group is None or group.count >= MAX_BATCH_ITEMS:
            group = _Group(self._event())
            pending.append(group)
        index = len(group.parts)
        group.parts.append(encoded)
        group.count += len(items)
        # A group waits while another's confirm is in flight, unless it is worth a publish of its own.
        if not self._publishing or index + 1 >= MIN_OVERLAPPING_GROUP or len(pending) > 1:
            self._wake.set()
        group.done.wait()
        STATS.wait_s += perf_counter() - started
        if group.errors is not None and (error := group.errors[index]) is not None:
            raise BrokerUnavailable(error)

    def close(self) -> None:
        """Stop the publisher greenlets and the watchdog (requests still waiting are not answered)."""
        import gevent

        gevent.killall(self._greenlets)

    def _take(self) -> _Group:
        """The oldest pending group, once it may go: at once when no other group's confirm is in flight,
        otherwise once it has :data:`MIN_OVERLAPPING_GROUP` requests or is full (a newer group started).

        Cooperative: nothing runs between the checks and the group counted in ``_publishing``.
        """
        pending = self._pending
        while True:
            if pending and (not self._publishing or len(pending) > 1
                            or len(pending[0].parts) >= MIN_OVERLAPPING_GROUP):  # fmt: skip
                group = pending.popleft()
                self._publishing.add(group)
                return group
            self._wake.clear()
            self._wake.wait()

    def _publish(self, parts: list[bytes]) -> None:
        publish_items(self.broker, join_encoded(parts))

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
            group = self._take()
            try:
                self._publish_group(group)
            finally:
                self._publishing.discard(group)
                self._wake.set()

    def _watch(self) -> None:
        """Answer 503 to the requests of groups older than ``timeout_s``, published or not (a broker that
        accepted the connection and then stopped answering, or publishers stuck behind one)."""
        import gevent

        period = min(1.0, self.timeout_s / 4)
        while True:
            gevent.sleep(period)
            too_old = perf_counter() - self.timeout_s
            message = f"no confirm from the broker within {self.timeout_s:.0f} s"
            while self._pending and self._pending[0].opened < too_old:
                group = self._pending.popleft()  # answered 503: not published later
                group.finish([message] * len(group.parts))
            for group in [g for g in self._publishing if g.opened < too_old]:
                group.finish([message] * len(group.parts))

    def _publish_group(self, group: _Group) -> None:
        started = perf_counter()
        pause = 0.05
        while True:
            try:
                self._publish(group.parts)
            except BrokerUnavailable as error:
                if group.done.is_set():  # answered 503 by the watchdog meanwhile: not published later
                    return
                if perf_counter() + pause - group.opened < self.retry_within_s:  # perhaps a failover: wait it out
                    logger.warning("No RabbitMQ node took a publish of %d events (%s); trying again in %.2f s.",
                                   group.count, error, pause)  # fmt: skip
                    self._sleep(pause)
                    pause = min(2 * pause, 1.0)
                    continue
                # The broker is away: every waiting request must hear about it.
                logger.critical("Could not publish %d events to RabbitMQ: %s", group.count, error)
                group.finish([str(error)] * len(group.parts))
            except Exception:  # noqa: BLE001 - perhaps one request's fault: publish each on its own
                logger.error("A group of %d requests failed to publish; publishing each alone.", len(group.parts),
                             exc_info=True)  # fmt: skip
                group.finish([self._publish_alone(part) for part in group.parts])
            else:
                STATS.groups += 1
                STATS.requests += len(group.parts)
                STATS.publish_s += perf_counter() - started
                group.finish()
            return

    def _publish_alone(self, part: bytes) -> str | None:
        """Publish one request's items on their own: None once confirmed, else why not."""
        try:
            self._publish([part])
        except BrokerUnavailable as error:
            return str(error)
        except Exception as e:  # noqa: BLE001 - this request's own failure
            logger.error("Could not publish a request's events: %s", e, exc_info=True)
            return f"{type(e).__name__}: {e}"
        return None


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

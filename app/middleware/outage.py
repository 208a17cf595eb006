"""Outages of the database or the broker cost a message none of its retries.

A message's retries are for faults of that message. When the database or RabbitMQ is away,
every message fails the same way, so Dramatiq's :class:`~dramatiq.middleware.Retries` would
spend the retries of everything in flight and dead-letter it all once the outage outlasts the
backoff ladder. :class:`OutageRetries` tells the two apart: a failure that points at a
dependency (:class:`~app.errors.DatabaseUnavailable`, a broker connection error ...) whose
probe then fails is requeued as it was, retries unspent, and the worker threads pause before
their next message until the probe answers again (1 s doubling to 10 s between probes).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import dramatiq
import peewee
import pika
from dramatiq.errors import BrokerConnectionError
from dramatiq.middleware import Retries, SkipMessage

from ..errors import BrokerUnavailable, DatabaseUnavailable, TransientError

logger = logging.getLogger(__name__)

#: Seconds between the first probes of a dependency found down; doubles up to :data:`MAX_WAIT_S`.
MIN_WAIT_S = 1.0
#: Longest pause between two probes: the backlog starts draining at most this long after recovery.
#: A probe is one short connection per worker process, so 10 s costs nothing and leaves most of the
#: minute the backlog has to drain in (at 30 s, a 10-minute outage drained in 96 s instead).
MAX_WAIT_S = 10.0

#: Errors that point at the database, and at the broker. Any other :class:`TransientError`
#: (an unclassified wrapper) has every watched dependency probed.
DATABASE_ERRORS: tuple[type[BaseException], ...] = (DatabaseUnavailable, peewee.OperationalError, peewee.InterfaceError)
BROKER_ERRORS: tuple[type[BaseException], ...] = (BrokerUnavailable, BrokerConnectionError, pika.exceptions.AMQPError)

#: Modules whose errors point at the broker whatever their type: pika lets socket errors through
#: unwrapped while it connects (``OSError: [Errno 107]``, ``ValueError: Expected connected socket``).
#: The probe, not the error, then decides whether it is an outage.
BROKER_MODULES = ("pika.", "dramatiq.brokers.")


@dataclass
class _Watched:
    probe: Callable[[], bool]
    errors: tuple[type[BaseException], ...]
    on_change: Callable[[], None] | None
    down_since: float | None = None

    def answers(self) -> bool:
        """Probe the dependency; a probe that raises counts as no answer.

        A probe must only ever say yes or no: an exception escaping it from inside an ``after_``
        hook would let Dramatiq acknowledge the message the hook was requeueing (pika, connecting
        through a cut link, has been seen raising ``ValueError``).
        """
        try:
            return self.probe()
        except Exception:  # noqa: BLE001 - any failure to get an answer is no answer
            logger.debug("A probe raised: counted as no answer.", exc_info=True)
            return False


class Outage:
    """What one process knows about the reachability of its dependencies, and the wait for their return.

    Thread-safe (and greenlet-safe under gevent's monkey-patching): one thread probes at a
    time while the others wait on the result.

    Parameters:
      min_wait_s: Pause before the first probe of a dependency found down, in seconds.
      max_wait_s: Longest pause between two probes; the pause doubles from ``min_wait_s``.
    """

    def __init__(self, *, min_wait_s: float = MIN_WAIT_S, max_wait_s: float = MAX_WAIT_S) -> None:
        self.min_wait_s = min_wait_s
        self.max_wait_s = max_wait_s
        self._watched: dict[str, _Watched] = {}
        self._cond = threading.Condition()
        self._stopping = False
        self._probing = False
        self._wait_s = min_wait_s
        self._probe_at = 0.0

    def watch(
        self,
        name: str,
        probe: Callable[[], bool],
        *,
        errors: tuple[type[BaseException], ...] = (),
        on_change: Callable[[], None] | None = None,
    ) -> None:
        """Watch the dependency ``name``.

        Parameters:
          probe: Answers whether the dependency is reachable; never raises, returns within seconds.
          errors: Exceptions that point at this dependency.
          on_change: Called (outside any lock) when the dependency goes down and when it is back,
            e.g. to drop pooled connections the outage broke.
        """
        self._watched[name] = _Watched(probe, errors, on_change)

    @property
    def down(self) -> list[str]:
        """The dependencies known to be down, by name."""
        with self._cond:
            return self._down()

    def watches(self, name: str) -> bool:
        return name in self._watched

    def suspects(self, exception: BaseException) -> list[str]:
        """The watched dependencies ``exception`` (or one it was raised from) points at."""
        names = [name for name, w in self._watched.items() if any(isinstance(e, w.errors) for e in _chain(exception))]
        if (
            "broker" in self._watched
            and "broker" not in names
            and any(_raised_in(e, BROKER_MODULES) for e in _chain(exception))
        ):
            names.append("broker")
        if not names and any(isinstance(e, TransientError) for e in _chain(exception)):
            return list(self._watched)
        return names

    def confirm_down(self, name: str) -> bool:
        """Whether ``name`` is watched and down (known, or its probe fails now); marks it down if so."""
        if name not in self._watched:
            return False
        with self._cond:
            known = self._watched[name].down_since is not None
        if known or not self._watched[name].answers():
            self.mark_down(name)
            return True
        return False

    def caused(self, exception: BaseException) -> list[str]:
        """The dependencies that are down among those ``exception`` points at (probed unless known down).

        An empty list means the failure is the message's own, or passing: it spends a retry.
        """
        down = []
        for name in self.suspects(exception):
            with self._cond:
                known = self._watched[name].down_since is not None
            if known or not self._watched[name].answers():
                down.append(name)
        if down:
            self.mark_down(*down)
        return down

    def mark_down(self, *names: str) -> None:
        """Record that ``names`` are unreachable (seen failing): workers wait before their next message."""
        changed = []
        with self._cond:
            if not self._down():
                self._wait_s = self.min_wait_s
                self._probe_at = time.monotonic() + self.min_wait_s
            for name in names:
                watched = self._watched[name]
                if watched.down_since is None:
                    watched.down_since = time.monotonic()
                    changed.append(watched)
                    logger.critical("The %s is unreachable: workers pause until it answers; messages keep their retries.",
                                    name)  # fmt: skip
        self._notify(changed)

    def wait(self) -> bool:
        """Block while a watched dependency is down, probing it with backoff.

        Returns:
          True once everything watched answers (at once when nothing is down); False when the
          process is stopping and something is still down.
        """
        while True:
            with self._cond:
                down = self._down()
                if not down:
                    return True
                if self._stopping:
                    return False
                pause_s = self._probe_at - time.monotonic()
                if self._probing or pause_s > 0:
                    # Another thread is probing (it notifies), or the next probe is not due yet.
                    self._cond.wait(timeout=pause_s if pause_s > 0 else self.max_wait_s)
                    continue
                self._probing = True
            back: list[str] = []
            try:
                back = [name for name in down if self._watched[name].answers()]
            finally:
                self._after_probe(back)

    def stop(self) -> None:
        """The process is shutting down: waiting threads give up, so that SIGTERM is honoured promptly."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()

    def _after_probe(self, back: list[str]) -> None:
        changed = []
        with self._cond:
            self._probing = False
            now = time.monotonic()
            for name in back:
                watched = self._watched[name]
                if watched.down_since is not None:
                    logger.warning("The %s answers again after %.0f s: workers resume.", name, now - watched.down_since)
                    watched.down_since = None
                    changed.append(watched)
            if self._down():
                self._wait_s = min(self._wait_s * 2, self.max_wait_s)
                self._probe_at = now + self._wait_s
                logger.info("Still waiting for the %s; next probe in %.0f s.", " and ".join(self._down()), self._wait_s)
            self._cond.notify_all()
        self._notify(changed)

    def _down(self) -> list[str]:
        return [name for name, w in self._watched.items() if w.down_since is not None]

    @staticmethod
    def _notify(changed: Iterable[_Watched]) -> None:
        for watched in changed:
            if watched.on_change is not None:
                try:
                    watched.on_change()
                except Exception:  # noqa: BLE001 - a cleanup must not stop the wait
                    logger.warning("A cleanup after an outage change failed.", exc_info=True)


def _raised_in(exception: BaseException, prefixes: tuple[str, ...]) -> bool:
    """Whether ``exception`` was raised inside a module whose name starts with one of ``prefixes``."""
    tb = exception.__traceback__
    while tb is not None:
        if tb.tb_frame.f_globals.get("__name__", "").startswith(prefixes):
            return True
        tb = tb.tb_next
    return False


def _chain(exception: BaseException) -> Iterator[BaseException]:
    """``exception`` and those it was raised from or during, nearest first (bounded, cycle-safe)."""
    seen: set[int] = set()
    current: BaseException | None = exception
    while current is not None and id(current) not in seen and len(seen) < 16:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


class OutageRetries(Retries):
    """Dramatiq's :class:`~dramatiq.middleware.Retries`, except that an outage is not the message's fault.

    A failure whose dependency is down is requeued as it was (``retries`` unchanged) and the
    worker's threads pause before their next message until the dependency answers; any other
    failure is retried with backoff and dead-lettered when its retries run out, as before.

    Place it before :class:`~dramatiq.middleware.TimeLimit`: its hooks then wait outside the
    actor's time limit (Dramatiq runs ``after_`` hooks in reverse order).

    Parameters:
      outage: The dependencies to watch and the wait for them.
      **options: Those of :class:`~dramatiq.middleware.Retries` (``max_retries``, ``min_backoff`` ...).
    """

    def __init__(self, *, outage: Outage, **options: Any) -> None:
        super().__init__(**options)
        self.outage = outage

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self.outage.stop()

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        if self.outage.wait():
            return
        # Stopping while a dependency is away: hand the message back instead of failing it.
        if self._requeue(broker, message, patient=False):
            raise SkipMessage(f"message {message.message_id!r} requeued: the worker stops during an outage")

    def after_process_message(
        self, broker: dramatiq.Broker, message: Any, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        if exception is not None:
            down = self.outage.caused(exception)
            if down:
                logger.warning(
                    "Message %r failed while the %s was unreachable: requeued with its %d retries unspent.",
                    message.message_id, " and ".join(down), message.options.get("retries", 0),
                )  # fmt: skip
                if not self._requeue(broker, message, patient=True):
                    # Never acknowledge what is not requeued: rejected, it lands in the dead-letter
                    # queue (or RabbitMQ redelivers it if the rejection cannot reach it either).
                    message.fail()
                return
        super().after_process_message(broker, message, result=result, exception=exception)

    def _requeue(self, broker: dramatiq.Broker, message: Any, *, patient: bool) -> bool:
        """Enqueue ``message`` again as it is; with ``patient``, wait out a broker outage to do so."""
        failures_while_up = 0
        while True:
            try:
                broker.enqueue(message)
                return True
            except Exception as e:  # noqa: BLE001 - pika raises more than its own errors while connecting
                logger.warning("Could not requeue message %r: %s: %s", message.message_id, type(e).__name__, e)
                if self.outage.confirm_down("broker"):
                    if patient and self.outage.wait():
                        continue
                else:
                    failures_while_up += 1  # the broker answers: try again, a few times
                    if patient and failures_while_up < 3:
                        continue
                logger.critical("Message %r could not be requeued.", message.message_id)
                return False

"""The one place that builds and sets the Dramatiq broker.

Import order matters: Dramatiq binds an actor to the global broker when its
decorator runs, so :func:`setup_broker` runs before any ``app.actors`` module
is imported (``app.runtime.bootstrap`` does both, in that order).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import dramatiq
import orjson
import pika
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import AgeLimit, Callbacks, Pipelines, ShutdownNotifications, TimeLimit

from .brokers.rabbitmq import RabbitmqBroker as TypedQueuesBroker
from .config import Settings, rabbitmq_node_urls
from .errors import OpsConductorError
from .middleware.outage import BROKER_ERRORS, DATABASE_ERRORS, Outage, OutageRetries

logger = logging.getLogger(__name__)

#: Backoff between retries of a message that failed by its own fault: 1 s doubling up to 5 min;
#: 12 retries ≈ 30 min before it lands in its dead-letter queue ``<queue>.XQ``. An outage of the
#: database or broker spends none of them (see :mod:`app.middleware.outage`).
#: ``RETRY_LIMIT`` and ``RETRY_MAX_BACKOFF_MS`` override the last two.
MIN_BACKOFF_MS = 1_000
MAX_BACKOFF_MS = 300_000
MAX_RETRIES = 12

#: pika gives up on a publish blocked by a RabbitMQ resource alarm after this many seconds,
#: so the web tier answers 503 instead of hanging.
BLOCKED_CONNECTION_TIMEOUT_S = 10


class OrjsonEncoder(dramatiq.Encoder):
    """Messages as JSON, encoded by orjson.

    # PERF: a normalize message carries up to 1,000 events; the standard json
    # module spends several times longer on it, in the web process and the worker.
    """

    def encode(self, data: dramatiq.encoder.MessageData) -> bytes:
        return orjson.dumps(data)

    def decode(self, data: bytes) -> dramatiq.encoder.MessageData:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as e:
            raise dramatiq.DecodeError(f"failed to decode message {data[:200]!r}", data, e) from None


class InProcessNotAllowed(OpsConductorError, RuntimeError):
    """RABBITMQ_URL is unset in a process type that needs a real broker."""


def _with_defaults(url: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.setdefault("blocked_connection_timeout", str(BLOCKED_CONNECTION_TIMEOUT_S))
    query.setdefault("heartbeat", "60")
    return urlunsplit(parts._replace(query=urlencode(query)))


class ReleaseDatabase(dramatiq.Middleware):
    """Hand the message's database connection back to the pool once it is processed.

    Under ``dramatiq-gevent`` every message runs in its own greenlet, and peewee keeps one
    connection per greenlet: without this each greenlet would keep its connection forever.
    """

    def after_process_message(self, broker: dramatiq.Broker, message: Any, *, result: Any = None,
                              exception: BaseException | None = None) -> None:  # fmt: skip
        from .db import database

        if database.obj is not None and not database.is_closed():
            database.close()

    after_skip_message = after_process_message


def broker_reachable(broker: dramatiq.Broker) -> bool:
    """Whether a node of RabbitMQ accepts a new connection (a short one of its own, never a publisher's or consumer's)."""
    if not isinstance(broker, RabbitmqBroker):
        return True
    try:
        connection = pika.BlockingConnection(broker.parameters)  # a list: the first node that answers
    except (pika.exceptions.AMQPError, OSError, ValueError) as e:
        # ValueError: pika's connector when the peer accepts and drops at once ("Expected connected socket").
        logger.debug("Broker probe: no connection (%s: %s).", type(e).__name__, e)
        return False
    try:
        connection.close()
    except (pika.exceptions.AMQPError, OSError):
        logger.debug("Closing the broker probe's connection failed.", exc_info=True)
    return True


def watch_outages(outage: Outage, broker: dramatiq.Broker) -> Outage:
    """Have ``outage`` watch this process's database and ``broker``."""
    from . import db

    outage.watch("database", db.reachable, errors=DATABASE_ERRORS, on_change=db.discard_idle_connections)
    outage.watch("broker", lambda: broker_reachable(broker), errors=BROKER_ERRORS)
    return outage


def middleware(
    outage: Outage | None = None, *, max_retries: int = MAX_RETRIES, max_backoff_ms: int = MAX_BACKOFF_MS
) -> list[dramatiq.Middleware]:
    """Dramatiq's defaults with our retry policy (Prometheus is exported by our own /metrics).

    The retries come before :class:`TimeLimit` so that waiting out an outage happens outside the
    actor's time limit (``after_`` hooks run in reverse order). They also come before Callbacks, so
    an ``on_failure`` callback would not see the message failed: no actor of ours uses one.
    """
    retries = OutageRetries(
        outage=outage or Outage(), max_retries=max_retries, min_backoff=MIN_BACKOFF_MS, max_backoff=max_backoff_ms
    )
    return [
        AgeLimit(),
        retries,
        TimeLimit(),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        ReleaseDatabase(),
    ]


def setup_broker(settings: Settings, *, allow_in_process: bool = False) -> dramatiq.Broker:
    """Build the broker for ``settings`` and make it Dramatiq's global broker.

    Parameters:
      allow_in_process: Only the all-in-one mode may run on Dramatiq's in-process broker.

    Raises:
      InProcessNotAllowed: RABBITMQ_URL (or CLOUDAMQP_URL) is unset and a real broker is needed.
    """
    dramatiq.set_encoder(OrjsonEncoder())
    outage = Outage()
    stack = middleware(outage, max_retries=settings.retry_limit, max_backoff_ms=settings.retry_max_backoff_ms)
    broker: dramatiq.Broker
    if settings.rabbitmq_url:
        # Publisher confirms: a send returns only once RabbitMQ has the message on disk (on a quorum
        # queue: on a majority of its nodes). Several nodes: a connection goes to the first that answers.
        urls = [_with_defaults(u) for u in rabbitmq_node_urls(settings.rabbitmq_url)]
        broker = TypedQueuesBroker(url=urls, queue_type=settings.rabbitmq_queue_type, confirm_delivery=True,
                                   middleware=stack)  # fmt: skip
        hosts = ", ".join(f"{urlsplit(u).hostname}:{urlsplit(u).port or 5672}" for u in urls)
        logger.info("Using RabbitMQ at %s (%s queues).", hosts, settings.rabbitmq_queue_type)
    elif allow_in_process:
        broker = StubBroker(middleware=stack)
        broker.emit_after("process_boot")
        logger.info("Using the in-process broker (all-in-one mode; not durable across restarts).")
    else:
        raise InProcessNotAllowed(
            "RABBITMQ_URL (or CLOUDAMQP_URL) is not set: only `opsconductor run` may use the in-process broker"
        )
    watch_outages(outage, broker)
    dramatiq.set_broker(broker)
    return broker

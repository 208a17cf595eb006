"""Readiness checks of the web process.

A check answers None when healthy, else a short reason ("database unreachable"): ``/readyz`` is
public, so what went wrong in detail (hosts, users, driver messages) goes to the log only.
"""

from __future__ import annotations

import logging
import time

import dramatiq
import pika
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from ..db import database, in_transaction
from ..errors import DatabaseUnavailable

logger = logging.getLogger(__name__)

#: The reasons ``/readyz`` may give.
DATABASE_UNREACHABLE = "database unreachable"
DATABASE_FAILED = "database check failed"
BROKER_UNREACHABLE = "broker unreachable"


def database_check() -> str | None:
    try:
        in_transaction(lambda: database.execute_sql("SELECT 1").fetchone())
    except DatabaseUnavailable as e:
        logger.warning("Readiness: the database is unreachable: %s", e)
        return DATABASE_UNREACHABLE
    except Exception:  # noqa: BLE001 - a failing check is an answer, not a crash
        logger.error("Readiness: the database check failed.", exc_info=True)
        return DATABASE_FAILED
    return None


class BrokerCheck:
    """Opens a short AMQP connection (not the publisher's: that one belongs to its greenlet).

    The answer is cached for ``ttl_s`` so a busy load balancer cannot hammer RabbitMQ.
    """

    def __init__(self, broker: dramatiq.Broker, *, ttl_s: float = 2.0) -> None:
        self.broker = broker
        self.ttl_s = ttl_s
        self._cached: tuple[float, str | None] = (0.0, None)

    def __call__(self) -> str | None:
        if not isinstance(self.broker, RabbitmqBroker):
            return None
        now = time.monotonic()
        if self._cached[0] > now:
            return self._cached[1]
        problem = None
        try:
            connection = pika.BlockingConnection(self.broker.parameters)  # several nodes: the first that answers
            connection.close()
        except (pika.exceptions.AMQPError, OSError) as e:
            logger.warning("Readiness: RabbitMQ is unreachable: %s %s", type(e).__name__, e)
            problem = BROKER_UNREACHABLE
        self._cached = (now + self.ttl_s, problem)
        return problem

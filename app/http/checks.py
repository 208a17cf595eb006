"""Readiness checks of the web process."""

from __future__ import annotations

import time

import dramatiq
import pika
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from ..db import database, in_transaction


def database_check() -> str | None:
    in_transaction(lambda: database.execute_sql("SELECT 1").fetchone())
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
        params = self.broker.parameters
        try:
            connection = pika.BlockingConnection(params[0] if isinstance(params, list) else params)
            connection.close()
        except pika.exceptions.AMQPError as e:
            problem = f"RabbitMQ unreachable: {type(e).__name__} {e}"
        self._cached = (now + self.ttl_s, problem)
        return problem

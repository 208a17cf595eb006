"""Health: the database and the broker up (the ``/readyz`` checks), and every pipeline queue's depth.

``GET /console/health``. Queue depths (ready, delayed, dead) are read as ``/metrics`` reads them
(:func:`app.http.metrics.queue_depths`). The syslog and SNMP receivers' counters are what each
receiver process last reported to ``ops.receiver_stats`` (:mod:`app.receivers.counters`): one
row per process, drops highlighted, stale after three missed reports, and the live ones' totals.
"""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
import falcon
import pika

from ...db import in_transaction
from ...errors import DatabaseUnavailable
from ...http.metrics import QUEUES, queue_depths
from ...receivers import counters
from ...timeutil import now
from ..page import Page
from ..render import render

logger = logging.getLogger(__name__)


class HealthPage(Page):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        checks = {}
        for name, check in self.deps.checks.items():
            try:
                problem = check()
            except Exception:  # noqa: BLE001 - a failing check is an answer, as on /readyz
                logger.error("Health check %r failed.", name, exc_info=True)
                problem = f"{name} check failed (see the web log)"
            checks[name] = problem
        broker = self.deps.broker or dramatiq.get_broker()
        try:
            depths: dict[tuple[str, str], int] | None = queue_depths(broker)
        except pika.exceptions.AMQPError:
            logger.warning("RabbitMQ did not answer the health page.", exc_info=True)
            depths = None
        rows = (
            [(q, *(depths.get((q, kind), 0) for kind in ("ready", "delayed", "dead"))) for q in QUEUES]
            if depths
            else []
        )
        try:
            receivers: list[counters.Report] | None = in_transaction(lambda: counters.read(at=now()))
        except DatabaseUnavailable:
            logger.warning("The database did not answer the health page's receivers.", exc_info=True)
            receivers = None
        healthy = all(problem is None for problem in checks.values()) and depths is not None
        render(req, resp, "health.html", status=falcon.HTTP_200 if healthy else falcon.HTTP_503, checks=checks,
               rows=rows, broker_answered=depths is not None, embedded=self.deps.settings.rabbitmq_url is None,
               receivers=receivers, totals=counters.totals(receivers or []),
               stale_after=counters.STALE_AFTER_REPORTS)  # fmt: skip


def routes(deps: Any) -> list[tuple[Any, ...]]:
    return [("/console/health", HealthPage(deps))]

"""Dead letters: how many messages each pipeline queue dead-lettered, a peek at them, and replay (RabbitMQ only).

``GET /console/dead-letters[?queue=]`` and ``POST /console/dead-letters/{queue}/replay`` (operate),
through :mod:`app.deadletters` like ``opsconductor deadletters``. A replay moves the messages of
``<queue>.XQ`` back onto the queue with their retries reset, and is audited. The embedded
in-process broker of ``make run`` keeps no dead letters across restarts and has no ``.XQ`` to
replay from: the page says so.
"""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
import falcon
import pika
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from ... import audit, deadletters
from ...config import rabbitmq_node_urls
from ...db import in_transaction
from ...http.metrics import QUEUES, queue_depths
from ...http.middleware import actor_of
from ..page import Page, PageError
from ..render import render

logger = logging.getLogger(__name__)

#: Dead letters peeked at on the page (they stay in their queue).
PEEK = 50


class DeadLetters(Page):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        broker = self.deps.broker or dramatiq.get_broker()
        url = self.deps.settings.rabbitmq_url
        if not isinstance(broker, RabbitmqBroker) or not url:
            render(req, resp, "deadletters.html", rabbitmq=False, counts={}, queue=None, letters=[], broker_up=True)
            return
        queue = req.get_param("queue")
        if queue is not None and queue not in QUEUES:
            raise PageError(falcon.HTTP_404, f"There is no pipeline queue {queue!r}.")
        try:
            counts = {q: n for (q, kind), n in queue_depths(broker).items() if kind == "dead"}
            letters = list(deadletters.list_dead(url, queue, limit=PEEK)) if queue else []
        except pika.exceptions.AMQPError:
            logger.warning("RabbitMQ did not answer the dead-letter page.", exc_info=True)
            render(req, resp, "deadletters.html", status=falcon.HTTP_503, rabbitmq=True, broker_up=False,
                   counts={}, queue=queue, letters=[])  # fmt: skip
            return
        render(req, resp, "deadletters.html", rabbitmq=True, broker_up=True, counts=counts, queue=queue,
               letters=letters, peek=PEEK)  # fmt: skip


class Replay(Page):
    def on_post(self, req: falcon.Request, resp: falcon.Response, queue: str) -> None:
        if queue not in QUEUES:
            raise PageError(falcon.HTTP_404, f"There is no pipeline queue {queue!r}.")
        url = self.deps.settings.rabbitmq_url
        if not url:
            raise PageError(falcon.HTTP_409, "The embedded broker has no dead-letter queues to replay.")
        actor = actor_of(req)

        def work() -> int:
            # PERF/safety: only the letters there now; a running worker may dead-letter a poison message again
            # while we move it, and an unbounded replay would then chase it round forever
            connection = pika.BlockingConnection([pika.URLParameters(u) for u in rabbitmq_node_urls(url)])
            try:
                waiting = connection.channel().queue_declare(f"{queue}.XQ", passive=True).method.message_count
            finally:
                connection.close()
            moved = deadletters.replay(url, queue, limit=waiting)
            # the messages moved on RabbitMQ, outside any transaction: the audit row records what was done
            in_transaction(lambda: audit.record(audit.Action.DEAD_LETTERS_REPLAYED, actor=actor,
                                                subject=f"queue:{queue}", details={"replayed": moved}))  # fmt: skip
            return moved

        self.act(req, resp, work, back=f"/console/dead-letters?queue={queue}",
                 done=lambda moved: f"Replayed {moved} dead letter(s) onto {queue}.")  # fmt: skip


def routes(deps: Any) -> list[tuple[Any, ...]]:
    return [("/console/dead-letters", DeadLetters(deps)), ("/console/dead-letters/{queue}/replay", Replay(deps))]

"""Dramatiq's RabbitMQ broker with the queue type of RABBITMQ_QUEUE_TYPE: classic, or quorum (replicated).

Dramatiq declares three durable queues per actor: ``<queue>``, its delay queue ``<queue>.DQ`` and
its dead-letter queue ``<queue>.XQ``. With ``quorum`` each is a quorum queue, replicated on a
majority of the cluster's nodes, and keeps working as with classic queues:

- Dead letters: Dramatiq rejects a message that exhausted its retries (``requeue=False``) and the
  queue's ``x-dead-letter-*`` arguments route it to ``.XQ``. A quorum queue dead-letters
  *at-least-once* (``x-dead-letter-strategy``, which needs ``x-overflow: reject-publish``), so a
  dead letter survives the loss of a node on its way; the default, at-most-once, may drop it.
- Redeliveries: a quorum queue counts the returns of a message (a consumer's channel or node lost,
  the consumer timeout); past ``x-delivery-limit`` it dead-letters the message. RabbitMQ 4 sets that
  limit to 20 by default, so an outage, or a delayed message held past ``consumer_timeout``, would
  count against it: :data:`DELIVERY_LIMIT` sets one no outage reaches (``-1`` is not "unlimited" on
  3.x: it dead-letters at the first return).
- ``x-message-ttl`` of ``.XQ`` works on quorum queues from RabbitMQ 3.10; ``x-max-priority`` does
  not exist for them, so ``max_priority`` is refused with quorum.

RabbitMQ refuses to redeclare a queue with other arguments (``PRECONDITION_FAILED``), so a queue
declared classic cannot become quorum in place: :func:`declare_queues` declares every queue when a
process starts and turns that refusal into :class:`QueueMismatch`, naming the queue and the way out.
"""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
import pika
from dramatiq.brokers.rabbitmq import DEAD_MESSAGE_TTL
from dramatiq.brokers.rabbitmq import RabbitmqBroker as _DramatiqRabbitmqBroker
from dramatiq.common import dq_name, xq_name

from ..errors import OpsConductorError

logger = logging.getLogger(__name__)

#: Most redeliveries of a message from a quorum queue before RabbitMQ dead-letters it: one a second
#: for eleven days, so outages and consumer timeouts never reach it (Dramatiq's retries, not
#: redeliveries, decide when a message is dead).
DELIVERY_LIMIT = 1_000_000
#: RabbitMQ's reply code for a redeclaration with other arguments.
PRECONDITION_FAILED = 406


class QueueMismatch(OpsConductorError, RuntimeError):
    """RabbitMQ holds a queue of this name declared with other arguments (another queue type)."""

    def __init__(self, queue: str, queue_type: str, reply: str) -> None:
        other = "classic" if queue_type == "quorum" else "quorum"
        super().__init__(
            f"RabbitMQ refused to declare queue {queue!r} as a {queue_type} queue (RABBITMQ_QUEUE_TYPE="
            f"{queue_type}): it exists with other arguments ({reply}). A queue's type cannot change in place: "
            f"either set RABBITMQ_QUEUE_TYPE={other}, or migrate (README, Replicated broker): stop every process, "
            f"let nothing publish, move or drain the queues' messages, delete the queues (e.g. "
            f"`rabbitmqctl delete_queue -p <vhost> {queue}`, and its .DQ and .XQ), then start with the new type."
        )
        self.queue = queue
        self.queue_type = queue_type


class RabbitmqBroker(_DramatiqRabbitmqBroker):
    """Dramatiq's :class:`~dramatiq.brokers.rabbitmq.RabbitmqBroker`, declaring queues of ``queue_type``.

    Parameters:
      queue_type: ``classic`` (Dramatiq's queues, unchanged) or ``quorum``.
      **kwargs: Dramatiq's own arguments (``url``, ``confirm_delivery``, ``middleware`` ...).

    Raises:
      ValueError: an unknown ``queue_type``, or ``max_priority`` with quorum queues.
    """

    def __init__(self, *, queue_type: str = "classic", **kwargs: Any) -> None:
        if queue_type not in ("classic", "quorum"):
            raise ValueError(f"queue_type must be classic or quorum, got {queue_type!r}")
        if queue_type == "quorum" and kwargs.get("max_priority"):
            raise ValueError("quorum queues have no x-max-priority: max_priority needs classic queues")
        super().__init__(**kwargs)
        self.queue_type = queue_type

    def queue_arguments(self, queue_name: str) -> dict[str, dict[str, Any]]:
        """The arguments each of the queues of ``queue_name`` is declared with: the queue, its ``.DQ`` and ``.XQ``."""
        work = self._build_queue_arguments(queue_name)
        dead: dict[str, Any] = {"x-message-ttl": DEAD_MESSAGE_TTL}  # static: messages expire head first
        if self.queue_type == "quorum":
            dead["x-queue-type"] = "quorum"
        return {queue_name: work, dq_name(queue_name): dict(work), xq_name(queue_name): dead}

    def _build_queue_arguments(self, queue_name: str) -> dict[str, Any]:
        arguments: dict[str, Any] = super()._build_queue_arguments(queue_name)
        if self.queue_type == "quorum":
            arguments.update({
                "x-queue-type": "quorum",
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",  # at-least-once dead-lettering requires it; no length limit is set
                "x-delivery-limit": DELIVERY_LIMIT,
            })  # fmt: skip
        return arguments

    def _declare_queue(self, queue_name: str) -> Any:
        return self._declare(queue_name, self._build_queue_arguments(queue_name))

    def _declare_dq_queue(self, queue_name: str) -> Any:
        return self._declare(dq_name(queue_name), self._build_queue_arguments(queue_name))

    def _declare_xq_queue(self, queue_name: str) -> Any:
        return self._declare(xq_name(queue_name), self.queue_arguments(queue_name)[xq_name(queue_name)])

    def _declare(self, name: str, arguments: dict[str, Any]) -> Any:
        try:
            return self.channel.queue_declare(queue=name, durable=True, arguments=arguments)
        except pika.exceptions.ChannelClosedByBroker as e:
            if e.reply_code != PRECONDITION_FAILED:
                raise
            del self.channel  # closed by the refusal: the next caller opens a new one
            raise QueueMismatch(name, self.queue_type, e.reply_text) from None


def declare_queues(broker: dramatiq.Broker) -> None:
    """Declare the queues of every actor registered on ``broker`` now, rather than on their first use.

    A process that starts against queues of another type then stops at once with
    :class:`QueueMismatch` instead of failing each publish or consume later. An unreachable broker
    is not an error here: the queues are declared on first use, as Dramatiq does.

    Raises:
      QueueMismatch: a queue exists with other arguments.
    """
    if not isinstance(broker, RabbitmqBroker):
        return
    try:
        for queue in sorted(broker.get_declared_queues()):
            broker.declare_queue(queue, ensure=True)
    except dramatiq.errors.ConnectionError as e:
        logger.warning("RabbitMQ did not answer at start (%s): queues will be declared on first use.", e)
    else:
        logger.info("Declared the %s queues of %d actor queues.", broker.queue_type, len(broker.get_declared_queues()))
    finally:
        del broker.connection  # this thread's connection: a worker's consumers and publishers open their own

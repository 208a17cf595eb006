"""A backlog of small correlate batches on the real stack: late batches claim the ones behind them, and
every event still reaches the rule evaluator, correlated, from its own message."""

from __future__ import annotations

import time
import uuid

import orjson
import pika
from dramatiq import Message
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from app.events.envelope import make_item
from app.events.store import store_batch
from app.ids import new_id
from app.models import EventCorrelation, Incident, ProcessedEvent
from tests import services
from tests.outage import queue_depths
from tests.processes import start_worker, wait_for


def _evaluate_messages(url: str) -> list[list[str]]:
    """Take every message waiting in the ``evaluate`` queue; return the event ids each carries."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel, batches = connection.channel(), []
    while True:
        method, _, body = channel.basic_get("evaluate", auto_ack=True)
        if method is None:
            break
        batches.append(orjson.loads(body)["args"][0])
    connection.close()
    return batches


def test_two_correlators_drain_a_backlog_of_small_batches_each_event_once_and_hand_every_event_on(
    stack_env, rabbitmq_url, pg_db
):
    # Given a backlog: 400 events of four problems received ten minutes ago, stored, queued for
    # correlation in 80 batches of five (as receivers send during an outage), each batch sent twice
    services.purge_queues(rabbitmq_url)
    tag, then = uuid.uuid4().hex[:6], time.time() - 600
    words = ["alpha", "bravo", "charlie", "delta"]
    events = [make_item(id=new_id(), source_type="webhook", received_at=then + n / 10,
                        payload={"source": "t", "host": f"{tag}-{words[n % 4]}", "severity": "high",
                                 "title": f"{words[n % 4]} subsystem failure {n}"})
              for n in range(400)]  # fmt: skip
    store_batch(events, window_s=300)
    batches = [[e["id"] for e in events[k : k + 5]] for k in range(0, 400, 5)]
    broker = RabbitmqBroker(url=rabbitmq_url, confirm_delivery=True)
    for batch in batches + batches[::-1]:
        broker.enqueue(Message(queue_name="correlate", actor_name="correlate", args=(batch,), kwargs={}, options={}))
    broker.close()
    # When two correlator processes take them (no rule evaluator runs: its queue keeps what they send on)
    workers = [start_worker(stack_env, queues=("correlate",), threads=4) for _ in range(2)]
    try:
        everything = [e["id"] for e in events]
        wait_for(
            lambda: ProcessedEvent.select().where(ProcessedEvent.id.in_(everything) & ProcessedEvent.correlation_id.is_null()).count() == 0,
            timeout=30,
            message="every event correlated",
        )  # fmt: skip
        wait_for(lambda: queue_depths(rabbitmq_url, ("evaluate",))["evaluate"] == 160, timeout=30,
                 message="a message to evaluate for each of the 160 deliveries")  # fmt: skip
    finally:
        for w in workers:
            w.stop()
    # Then each problem is one incident holding each of its events once
    incidents = list(Incident.select())
    assert len(incidents) == 4 and sum(i.event_count for i in incidents) == 400
    assert EventCorrelation.select().count() == 396
    # And each delivery handed its own batch on to the evaluator, whichever batch correlated its events
    handed = _evaluate_messages(rabbitmq_url)
    assert sorted(map(tuple, handed)) == sorted(map(tuple, batches + batches))

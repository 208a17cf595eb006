"""Retries, dead letters and crashes on the real RabbitMQ and PostgreSQL."""

from __future__ import annotations

import json
import signal
import time
import uuid

import psycopg2
import pytest
from dramatiq import Message
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from app.events.envelope import make_item
from app.ids import new_id
from app.models import ProcessedEvent, RawEvent
from app.publishing import normalize_message
from tests import services
from tests.processes import start_worker, wait_for


@pytest.fixture
def env(pg_url, rabbitmq_url, pg_db):
    services.purge_queues(rabbitmq_url)
    return {"DATABASE_URL": pg_url, "RABBITMQ_URL": rabbitmq_url, "LOG_LEVEL": "INFO"}


@pytest.fixture
def publish(rabbitmq_url):
    broker = RabbitmqBroker(url=rabbitmq_url, confirm_delivery=True)
    yield lambda message: broker.enqueue(message)
    broker.close()


def item(host: str, title: str = "Service down") -> dict:
    payload = {"source": "test", "severity": "high", "host": host, "title": title}
    return make_item(id=new_id(), source_type="webhook", received_at=time.time(), payload=payload)


def test_a_poisoned_message_goes_to_the_dead_letter_queue_without_retries(env, publish):
    # Given a worker
    worker = start_worker(env, queues=("normalize",))
    try:
        # When a message whose body is not a batch of items arrives
        poison = Message(
            queue_name="normalize", actor_name="normalize", args=({"not": "a batch"},), kwargs={}, options={}
        )
        publish(poison)
        # Then it lands in normalize.XQ, untouched by retries
        dead = wait_for(lambda: services.get_dead_letters("normalize"), message="a dead letter")
    finally:
        worker.stop()
    assert [json.loads(body)["message_id"] for body in dead] == [poison.message_id]
    assert "Retrying" not in worker.output()
    assert RawEvent.select().count() == 0


def test_a_dropped_database_connection_loses_nothing_and_stores_the_event_once(env, publish, pg_url):
    # Given a worker that holds open database connections
    worker = start_worker(env, queues=("normalize",), threads=1)
    try:
        warm = item("warm-up")
        publish(normalize_message([warm]))
        wait_for(lambda: ProcessedEvent.get_or_none(ProcessedEvent.id == warm["id"]), message="warm-up stored")
        # When PostgreSQL drops every connection of the worker (as on a failover or restart): the workers of this
        # test's database only, so runs on other databases of a shared server keep theirs
        admin = psycopg2.connect(pg_url)
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'opsconductor-worker' AND datname = current_database()"
            )
            assert cur.rowcount >= 1
        admin.close()
        # And a batch arrives
        host = f"retry-{uuid.uuid4().hex[:6]}"
        batch = [item(host, f"e{i}") for i in range(5)]
        publish(normalize_message(batch))
        # Then the failure is retried with backoff and every event is stored exactly once
        wait_for(
            lambda: ProcessedEvent.select().where(ProcessedEvent.source_host == host).count() == 5,
            timeout=30,
            message="events stored after the retry",
        )
    finally:
        worker.stop()
    # The pool either finds the dead connections on checkout and reconnects, or the store fails
    # and the message is retried with backoff ("Retrying message"): either way, stored once.
    assert RawEvent.select().where(RawEvent.id.in_([i["id"] for i in batch])).count() == 5
    assert ProcessedEvent.select().where(ProcessedEvent.source_host == host).count() == 5
    assert not services.get_dead_letters("normalize")


def test_a_worker_killed_mid_stream_loses_nothing_and_stores_nothing_twice(env, publish):
    # Given 200 messages of 50 events waiting in the queue
    host = f"kill-{uuid.uuid4().hex[:6]}"
    ids = []
    for m in range(200):
        batch = [item(host, f"m{m}-e{i}") for i in range(50)]
        ids += [i["id"] for i in batch]
        publish(normalize_message(batch))
    # When a worker starts and is killed with SIGKILL while it is storing them
    worker = start_worker(env, queues=("normalize",))
    wait_for(
        lambda: ProcessedEvent.select().where(ProcessedEvent.source_host == host).count() > 500,
        timeout=30,
        message="the worker making progress",
    )
    worker.signal(signal.SIGKILL)
    worker.proc.wait(10)
    # And another worker takes over
    second = start_worker(env, queues=("normalize",))
    try:
        wait_for(
            lambda: ProcessedEvent.select().where(ProcessedEvent.source_host == host).count() == len(ids),
            timeout=60,
            message="all events stored",
        )
    finally:
        second.stop()
    # Then every event is stored exactly once
    assert RawEvent.select().where(RawEvent.id.in_(ids)).count() == len(ids)
    assert ProcessedEvent.select().where(ProcessedEvent.source_host == host).count() == len(ids)
    assert sum(e.occurrences for e in ProcessedEvent.select().where(ProcessedEvent.source_host == host)) == len(ids)

"""Outages of the database or the broker cost a message none of its retries (app.middleware.outage).

The database and RabbitMQ are the real ones, behind a TCP proxy the test cuts; the worker is
Dramatiq's own, with the middleware stack of :func:`app.broker.middleware`.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import dramatiq
import pika
import pytest
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import CurrentMessage

from app.broker import middleware, watch_outages
from app.db import database, in_transaction, init_database
from app.errors import DatabaseUnavailable
from app.middleware.outage import Outage
from tests import services
from tests.proxy import TcpProxy

#: Probes every 50 ms doubling to 200 ms: the tests wait out outages of a few seconds.
FAST = {"min_wait_s": 0.05, "max_wait_s": 0.2}


@pytest.fixture
def pg_proxy(pg_url, pg_db) -> Iterator[TcpProxy]:
    """The tests' PostgreSQL behind a proxy the test can cut; the process's database goes through it."""
    proxy = TcpProxy.to(pg_url, 5432)
    db = init_database(proxy.url(pg_url), application_name="opsconductor-tests", max_connections=4)
    yield proxy
    db.close_all()
    proxy.close()


@pytest.fixture
def stub() -> Iterator[tuple[StubBroker, Outage]]:
    """An in-process broker with our middleware (1 retry allowed) watching the real database."""
    outage = Outage(**FAST)
    broker = StubBroker(middleware=middleware(outage, max_retries=1))
    broker.add_middleware(CurrentMessage())
    broker.emit_after("process_boot")
    watch_outages(outage, broker)
    yield broker, outage
    broker.flush_all()
    broker.close()


def start_worker(broker: dramatiq.Broker, threads: int = 2) -> dramatiq.Worker:
    worker = dramatiq.Worker(broker, worker_timeout=50, worker_threads=threads)
    worker.start()
    return worker


class Ledger:
    """What the actor saw: each attempt with the retries its message had spent, and each success."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.attempts: list[tuple[int, int]] = []
        self.done: list[int] = []

    def attempt(self, n: int) -> None:
        message = CurrentMessage.get_current_message()
        with self.lock:
            self.attempts.append((n, message.options.get("retries", 0) if message else -1))

    def succeed(self, n: int) -> None:
        with self.lock:
            self.done.append(n)


def database_actor(broker: dramatiq.Broker, ledger: Ledger, queue: str) -> dramatiq.Actor:
    @dramatiq.actor(broker=broker, queue_name=queue, actor_name=queue, max_retries=1, time_limit=1_000)
    def store(n: int) -> None:
        ledger.attempt(n)
        in_transaction(lambda: database.execute_sql("SELECT %s", (n,)).fetchone())
        ledger.succeed(n)

    return store


def test_a_message_failing_during_a_database_outage_keeps_its_retries_and_runs_when_the_database_returns(
    stub, pg_proxy
):
    # Given a worker whose messages may be retried once, and an actor with a 1 s time limit
    broker, _ = stub
    ledger = Ledger()
    store = database_actor(broker, ledger, "outage_one")
    worker = start_worker(broker)
    try:
        # When the database goes away for 2.5 s (longer than the retry ladder and the time limit)
        pg_proxy.down()
        store.send(1)
        time.sleep(2.5)
        pg_proxy.up()
        broker.join("outage_one", timeout=10_000, fail_fast=False)
        worker.join()
    finally:
        worker.stop()
    # Then the message ran once the database answered, with none of its retries spent
    assert ledger.done == [1]
    assert broker.dead_letters == []
    assert ledger.attempts[0] == (1, 0) and all(retries == 0 for _, retries in ledger.attempts)


def test_a_database_error_while_the_database_answers_spends_retries_and_is_dead_lettered(stub, pg_proxy):
    # Given an actor that fails with a database error of its own (the database answers probes)
    broker, _ = stub
    ledger = Ledger()

    @dramatiq.actor(broker=broker, queue_name="outage_fault", max_retries=1)
    def faulty(n: int) -> None:
        ledger.attempt(n)
        raise DatabaseUnavailable("canceling statement due to statement timeout")

    worker = start_worker(broker)
    try:
        # When its message runs
        faulty.send(7)
        broker.join("outage_fault", timeout=10_000, fail_fast=False)
        worker.join()
    finally:
        worker.stop()
    # Then it is retried once with backoff and dead-lettered: retries stay for faults of the message
    assert ledger.attempts == [(7, 0), (7, 1)]
    assert [m.args for m in broker.dead_letters] == [(7,)]


def test_workers_pause_during_a_database_outage_and_drain_the_backlog_when_it_ends(stub, pg_proxy):
    # Given a worker with two threads
    broker, outage = stub
    ledger = Ledger()
    store = database_actor(broker, ledger, "outage_pause")
    worker = start_worker(broker, threads=2)
    try:
        # When 20 messages arrive while the database is away
        pg_proxy.down()
        for n in range(20):
            store.send(n)
        time.sleep(2.0)
        attempts_during_outage = len(ledger.attempts)
        down_during_outage = outage.down
        pg_proxy.up()
        broker.join("outage_pause", timeout=10_000, fail_fast=False)
        worker.join()
    finally:
        worker.stop()
    # Then the threads stopped taking messages (one failed attempt each at most) instead of
    # spinning through the backlog, and every message ran once the database returned
    assert down_during_outage == ["database"]
    assert attempts_during_outage <= 4, ledger.attempts
    assert sorted(ledger.done) == list(range(20))
    assert broker.dead_letters == []
    assert outage.down == []


def test_a_worker_stopped_during_an_outage_stops_promptly_and_hands_its_messages_back(rabbitmq_url, pg_proxy):
    # Given a worker on the real RabbitMQ, paused by a database outage, with messages waiting
    outage = Outage(**FAST)
    broker = RabbitmqBroker(url=rabbitmq_url, confirm_delivery=True, middleware=middleware(outage, max_retries=1))
    broker.add_middleware(CurrentMessage())
    broker.emit_after("process_boot")
    watch_outages(outage, broker)
    queue = f"outage_stop_{uuid.uuid4().hex[:6]}"
    ledger = Ledger()
    store = database_actor(broker, ledger, queue)
    worker = start_worker(broker, threads=2)
    try:
        pg_proxy.down()
        sent = {store.send(n).message_id for n in range(6)}
        deadline = time.monotonic() + 5
        while outage.down != ["database"] and time.monotonic() < deadline:
            time.sleep(0.05)
        # When the worker is asked to stop (SIGTERM) while the database is still away
        started = time.monotonic()
        worker.stop(timeout=20_000)
        stopped_in_s = time.monotonic() - started
    finally:
        broker.close()
    # Then it stops without waiting for the database, and every message is back in its queue
    queued = _take_all(rabbitmq_url, queue)
    dead = services.get_dead_letters(queue, rabbitmq_url)
    _delete_queues(rabbitmq_url, queue)
    assert stopped_in_s < 5, stopped_in_s
    assert dead == []
    assert {m.message_id for m in queued} == sent
    assert all(m.options.get("retries", 0) == 0 for m in queued)
    assert ledger.done == []


def test_probes_back_off_from_the_first_pause_doubling_up_to_the_longest():
    # Given a dependency that answers its fifth probe
    probes: list[float] = []

    def probe() -> bool:
        probes.append(time.monotonic())
        return len(probes) >= 6

    outage = Outage(min_wait_s=0.05, max_wait_s=0.2)
    outage.watch("database", probe, errors=(DatabaseUnavailable,))
    # When a failure points at it and a worker waits
    assert outage.caused(DatabaseUnavailable("connection refused")) == ["database"]
    assert outage.wait() is True
    # Then the pauses between probes doubled from 50 ms and stopped growing at 200 ms
    gaps = [b - a for a, b in zip(probes, probes[1:], strict=False)]
    assert len(probes) == 6 and outage.down == []
    assert [round(g, 2) >= w for g, w in zip(gaps, (0.05, 0.1, 0.2, 0.2), strict=False)] == [True] * 4
    assert all(g < 1.0 for g in gaps)


def test_a_probe_that_raises_counts_as_no_answer_and_the_wait_goes_on():
    # Given a broker whose probe raises while the link is cut (pika's "Expected connected socket"
    # ValueError once escaped the requeue hook, and Dramatiq then acknowledged the message)
    answers = iter([ValueError("Expected connected socket"), OSError("refused"), True])

    def probe() -> bool:
        answer = next(answers)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    outage = Outage(**FAST)
    outage.watch("broker", probe, errors=(ConnectionError,))
    # When a send fails and the broker is probed
    assert outage.confirm_down("broker") is True
    # Then the wait probes again past the raising probes and returns once it answers
    assert outage.wait() is True
    assert outage.down == []


def test_an_error_unrelated_to_a_watched_dependency_is_never_an_outage():
    # Given a database that does not answer
    outage = Outage()
    outage.watch("database", lambda: False, errors=(DatabaseUnavailable,))
    # Then a fault of the message itself is not taken for an outage, nor probed for
    assert outage.caused(ValueError("bad input")) == []
    assert outage.down == []
    # But an error raised from a database error is
    try:
        try:
            raise DatabaseUnavailable("server closed the connection unexpectedly")
        except DatabaseUnavailable as e:
            raise RuntimeError("while parsing") from e
    except RuntimeError as wrapped:
        assert outage.caused(wrapped) == ["database"]


@pytest.mark.parametrize("cut", ["new connections refused", "every connection dropped"])
def test_a_send_on_failing_during_a_broker_outage_waits_and_spends_no_retry(rabbitmq_url, cut):
    # Given a worker on the real RabbitMQ (through a proxy) whose messages may not be retried at all,
    # and an actor that sends each message on to a second queue
    proxy = TcpProxy.to(rabbitmq_url, 5672)
    outage = Outage(**FAST)
    url = proxy.url(rabbitmq_url) + "?heartbeat=5"  # a connection cut mid-stream is noticed within seconds
    broker = RabbitmqBroker(url=url, confirm_delivery=True, middleware=middleware(outage, max_retries=0))
    broker.emit_after("process_boot")
    watch_outages(outage, broker)
    first, second = f"outage_first_{uuid.uuid4().hex[:6]}", f"outage_second_{uuid.uuid4().hex[:6]}"
    running, go_on = threading.Event(), threading.Event()
    arrived: list[int] = []

    @dramatiq.actor(broker=broker, queue_name=second, actor_name=second)
    def downstream(n: int) -> None:
        arrived.append(n)

    @dramatiq.actor(broker=broker, queue_name=first, actor_name=first, max_retries=0)
    def upstream(n: int) -> None:
        running.set()
        go_on.wait(10)
        downstream.send(n)

    worker = start_worker(broker, threads=2)
    try:
        upstream.send(5)
        assert running.wait(10)
        # When RabbitMQ becomes unreachable while the message is in flight, for 2 s
        proxy.down(drop_open=cut == "every connection dropped")
        go_on.set()
        time.sleep(2)
        proxy.up()
        deadline = time.monotonic() + 60  # a consumer cut mid-stream may need a heartbeat to notice
        while 5 not in arrived and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        worker.stop()
        broker.close()
        proxy.close()
    # Then the send went through once RabbitMQ was back, and nothing was dead-lettered
    dead = services.get_dead_letters(first, rabbitmq_url)
    _delete_queues(rabbitmq_url, first, second)
    assert 5 in arrived
    assert dead == []


def _take_all(url: str, queue: str) -> list[dramatiq.Message]:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    messages = []
    while True:
        method, _props, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            break
        messages.append(dramatiq.Message.decode(body))
    connection.close()
    return messages


def _delete_queues(url: str, *queues: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    for queue in queues:
        for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
            channel.queue_delete(name)
    connection.close()

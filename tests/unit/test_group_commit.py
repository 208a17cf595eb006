"""The web tier's group commit: requests share confirms, and confirms overlap only for groups worth one."""

from __future__ import annotations

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker

from app.broker import OrjsonEncoder
from app.errors import BrokerUnavailable
from app.publishing import MIN_OVERLAPPING_GROUP, BatchPublisher

gevent = pytest.importorskip("gevent")
from gevent.event import Event  # noqa: E402


class SlowConfirmBroker(StubBroker):
    """The stub broker whose publishes wait until the test lets them be confirmed, recording what overlapped."""

    def __init__(self) -> None:
        super().__init__()
        self.declare_queue("normalize")
        self.confirm = Event()
        self.in_flight = 0
        self.most_in_flight = 0
        self.groups: list[int] = []

    def enqueue(self, message, *, delay=None):
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        self.groups.append(len(dramatiq.Message.decode(message.encode()).args[0]))
        try:
            self.confirm.wait()
            return super().enqueue(message, delay=delay)
        finally:
            self.in_flight -= 1


@pytest.fixture
def broker():
    previous = dramatiq.get_encoder()
    dramatiq.set_encoder(OrjsonEncoder())  # the web process's: a group's message carries encoded bytes
    yield SlowConfirmBroker()
    dramatiq.set_encoder(previous)


def send_all(publisher: BatchPublisher, count: int, *, first: int = 0) -> list:
    return [gevent.spawn(publisher.publish, [{"id": f"id-{first + i}"}]) for i in range(count)]


def delivered(broker: StubBroker) -> list[str]:
    queue = broker.queues["normalize"]
    ids = []
    while not queue.empty():
        ids += [item["id"] for item in dramatiq.Message.decode(queue.get()).args[0]]
    return ids


def test_requests_arriving_during_a_confirm_wait_for_it_and_share_the_next(broker):
    # Given a publisher whose first request's confirm is in flight
    publisher = BatchPublisher(broker, timeout_s=5, publishers=4)
    first = send_all(publisher, 1)
    gevent.sleep(0.01)
    # When a few more requests arrive meanwhile (fewer than a group worth its own confirm)
    rest = send_all(publisher, MIN_OVERLAPPING_GROUP - 2, first=1)
    gevent.sleep(0.05)
    # Then none is published before that confirm
    assert broker.groups == [1] and broker.most_in_flight == 1
    # And once it comes, they go together as one message, and every request is answered
    broker.confirm.set()
    gevent.joinall(first + rest, timeout=5, raise_error=True)
    publisher.close()
    assert broker.groups == [1, MIN_OVERLAPPING_GROUP - 2]
    assert sorted(delivered(broker)) == sorted(f"id-{i}" for i in range(MIN_OVERLAPPING_GROUP - 1))


def test_a_large_group_does_not_wait_for_another_groups_confirm(broker):
    # Given a publisher whose first request's confirm is in flight
    publisher = BatchPublisher(broker, timeout_s=5, publishers=4)
    first = send_all(publisher, 1)
    gevent.sleep(0.01)
    # When a whole group of requests arrives meanwhile
    rest = send_all(publisher, 3 * MIN_OVERLAPPING_GROUP, first=1)
    gevent.sleep(0.05)
    # Then it is published at once, its confirm overlapping the first's
    assert broker.most_in_flight >= 2
    assert broker.groups[0] == 1 and sum(broker.groups) == 1 + 3 * MIN_OVERLAPPING_GROUP
    # And every request is answered once the confirms come
    broker.confirm.set()
    gevent.joinall(first + rest, timeout=5, raise_error=True)
    publisher.close()
    assert len(delivered(broker)) == 1 + 3 * MIN_OVERLAPPING_GROUP


def test_a_single_publisher_keeps_one_confirm_in_flight(broker):
    # Given a publisher with one publisher greenlet and a confirm in flight
    publisher = BatchPublisher(broker, timeout_s=5, publishers=1)
    first = send_all(publisher, 1)
    gevent.sleep(0.01)
    # When a whole group arrives meanwhile
    rest = send_all(publisher, 3 * MIN_OVERLAPPING_GROUP, first=1)
    gevent.sleep(0.05)
    # Then it waits for the confirm, then goes as one message
    assert broker.most_in_flight == 1
    broker.confirm.set()
    gevent.joinall(first + rest, timeout=5, raise_error=True)
    publisher.close()
    assert broker.groups == [1, 3 * MIN_OVERLAPPING_GROUP]


def test_a_request_whose_confirm_never_comes_fails_as_broker_unavailable(broker):
    # Given a broker that never confirms
    publisher = BatchPublisher(broker, timeout_s=0.2, publishers=1)
    # When a request publishes
    waiting = gevent.spawn(publisher.publish, [{"id": "id-0"}])
    waiting.join(timeout=5)
    # Then it fails as the broker being away (a 503), not as a crash, once its time is up
    assert isinstance(waiting.exception, BrokerUnavailable)
    publisher.close()


def test_group_commits_are_counted_for_the_benchmark(broker):
    # Given the process's counts so far
    from app.publishing import STATS

    before = (STATS.groups, STATS.requests)
    publisher = BatchPublisher(broker, timeout_s=5, publishers=1)
    broker.confirm.set()
    # When requests are published and confirmed
    gevent.joinall(send_all(publisher, 5), timeout=5, raise_error=True)
    publisher.close()
    # Then every request is counted once, in the groups that carried it
    assert STATS.requests - before[1] == 5
    assert STATS.groups - before[0] == len(broker.groups)
    assert STATS.wait_s > 0 and STATS.publish_s > 0


def test_a_request_answered_503_is_not_published_afterwards(broker):
    # Given a publisher whose only publisher greenlet waits for a confirm that does not come
    publisher = BatchPublisher(broker, timeout_s=0.2, publishers=1)
    stuck = gevent.spawn(publisher.publish, [{"id": "id-0"}])
    gevent.sleep(0.01)
    # When another request waits behind it until both are answered 503
    behind = gevent.spawn(publisher.publish, [{"id": "id-1"}])
    gevent.joinall([stuck, behind], timeout=5)
    assert isinstance(stuck.exception, BrokerUnavailable) and isinstance(behind.exception, BrokerUnavailable)
    # And the broker then confirms the first publish
    broker.confirm.set()
    gevent.sleep(0.1)
    publisher.close()
    # Then the request told "nothing was accepted" was not published after all
    assert delivered(broker) == ["id-0"]


@pytest.fixture
def blinking_broker(rabbitmq_url):
    """A RabbitMQ broker (the real one) reached through a proxy the test can cut, with a queue of its own."""
    from app.brokers.rabbitmq import RabbitmqBroker
    from tests.proxy import TcpProxy

    proxy = TcpProxy.to(rabbitmq_url, 5672)
    previous = dramatiq.get_encoder()
    dramatiq.set_encoder(OrjsonEncoder())
    broker = RabbitmqBroker(url=proxy.url(rabbitmq_url), confirm_delivery=True)
    broker.declare_queue("normalize")
    broker.flush("normalize")
    yield broker, proxy
    proxy.up()
    broker.flush("normalize")
    broker.close()
    proxy.close()
    dramatiq.set_encoder(previous)


def test_a_publish_refused_during_a_failover_is_tried_again_and_confirmed(blinking_broker):
    import threading

    broker, proxy = blinking_broker
    publisher = BatchPublisher(broker, timeout_s=10, publishers=1, retry_within_s=5)
    # Given a broker that refuses every connection for half a second (a node's listener gone, a failover)
    proxy.down()
    threading.Timer(0.5, proxy.up).start()
    # When a request publishes meanwhile
    request = gevent.spawn(publisher.publish, [{"id": "id-during-failover"}])
    request.join(timeout=10)
    publisher.close()
    # Then it is confirmed once the broker takes connections again (a 202), not refused at once (a 503)
    assert request.successful(), request.exception
    assert broker.get_queue_message_counts("normalize")[0] == 1


def test_a_broker_away_for_longer_than_the_retries_gets_a_503_before_the_timeout(blinking_broker):
    broker, proxy = blinking_broker
    publisher = BatchPublisher(broker, timeout_s=30, publishers=1, retry_within_s=0.5)
    # Given a broker that refuses every connection
    proxy.down()
    # When a request publishes
    request = gevent.spawn(publisher.publish, [{"id": "id-0"}])
    request.join(timeout=20)
    publisher.close()
    # Then it is answered 503 once the retries are spent, long before its confirm would time out
    assert isinstance(request.exception, BrokerUnavailable), request.exception

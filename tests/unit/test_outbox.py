"""The receivers' outbox: batches, and nothing lost or reordered while the broker is away."""

from __future__ import annotations

import pytest

from app.errors import BrokerUnavailable
from app.receivers.outbox import Outbox
from app.receivers.spool import Spool


class FlakyBroker:
    """Records published batches; refuses while ``down``. (A stand-in for the publish call, not for RabbitMQ:
    the real broker path is covered by the receiver integration tests.)"""

    def __init__(self) -> None:
        self.down = False
        #: What the publish call raises while ``down`` (pika lets some socket errors through unwrapped).
        self.error: Exception = BrokerUnavailable("connection refused")
        self.batches: list[list[dict]] = []

    def publish(self, items):
        if self.down:
            raise self.error
        self.batches.append(list(items))

    def seqs(self) -> list[int]:
        return [item["seq"] for batch in self.batches for item in batch]


@pytest.fixture
def broker():
    return FlakyBroker()


def outbox(tmp_path, broker, **kw) -> Outbox:
    return Outbox(publish=broker.publish, spool=Spool(str(tmp_path), "test"), max_batch=10, **kw)


def test_items_are_published_in_batches_in_order(tmp_path, broker):
    box = outbox(tmp_path, broker)
    for i in range(25):
        box.put({"seq": i})
    assert box.flush()
    assert [len(b) for b in broker.batches] == [10, 10, 5]
    assert broker.seqs() == list(range(25))


def test_while_the_broker_is_away_items_are_spooled_then_replayed_in_order(tmp_path, broker):
    # Given a broker that goes away
    box = outbox(tmp_path, broker, max_memory=20)
    broker.down = True
    # When 100 items arrive, more than memory holds
    for i in range(100):
        box.put({"seq": i})
    assert not box.flush()
    assert len(box.spool) > 0 and box.stats["dropped_full"] == 0
    # And more arrive, then the broker returns
    for i in range(100, 130):
        box.put({"seq": i})
    broker.down = False
    assert box.flush()
    # Then every item is published exactly once, in arrival order
    assert broker.seqs() == list(range(130))
    assert len(box.spool) == 0


@pytest.mark.parametrize("error", [ValueError("Expected connected socket"), OSError(107, "not connected")])
def test_an_error_the_publish_call_lets_through_loses_nothing_and_the_next_flush_publishes(tmp_path, broker, error):
    # Given a publish call that raises what pika raises connecting through a cut link, not BrokerUnavailable
    box = outbox(tmp_path, broker, max_memory=20)
    broker.down, broker.error = True, error
    # When items arrive and the outbox flushes
    for i in range(35):
        box.put({"seq": i})
    assert not box.flush()
    # Then they wait (as for a broker away), and once the publish works all go out once, in order
    broker.down = False
    for i in range(35, 40):
        box.put({"seq": i})
    assert box.flush()
    assert broker.seqs() == list(range(40))
    assert box.stats["dropped_full"] == 0


def test_a_restarted_receiver_replays_what_its_predecessor_spooled(tmp_path, broker):
    box = outbox(tmp_path, broker)
    broker.down = True
    for i in range(15):
        box.put({"seq": i})
    box.stop(timeout_s=0.1)
    box.spool._lock.close()  # the process is gone
    broker.down = False
    again = outbox(tmp_path, broker)
    assert again.flush()
    assert broker.seqs() == list(range(15))


def test_drops_are_counted_only_when_memory_and_spool_are_full(tmp_path, broker):
    box = Outbox(publish=broker.publish, spool=Spool(str(tmp_path), "tiny", max_bytes=1), max_batch=10, max_memory=10)
    broker.down = True
    for i in range(40):
        box.put({"seq": i})
    # the first spill fits (the spool was empty), later ones do not
    assert box.stats["dropped_full"] == 20
    assert box.stats["spooled"] == 10


def test_two_processes_on_one_spool_dir_get_separate_slots(tmp_path):
    a, b = Spool(str(tmp_path), "syslog"), Spool(str(tmp_path), "syslog")
    assert a.path != b.path

"""A batch never fails because of one item: on real PostgreSQL, the item PostgreSQL refuses is isolated,
the rest stored on first delivery, and nothing is retried or dead-lettered; syslog and SNMP input with a
NUL is kept with the NUL escaped and parsed."""

from __future__ import annotations

import time

import dramatiq
import orjson
import peewee
import pika

from app.events.envelope import make_item
from app.events.store import store_batch
from app.ids import new_id
from app.models import ProcessedEvent, RawEvent
from tests import services
from tests.processes import wait_for

T0 = time.time()


def webhook(i: int, **extra) -> dict:
    payload = {"source": "poison-test", "severity": "low", "host": f"host-{i}", "title": f"event {i}", **extra}
    return make_item(id=new_id(), source_type="webhook", received_at=T0, payload=payload, source="10.0.0.1")


def syslog(line: str) -> dict:
    return make_item(id=new_id(), source_type="syslog", received_at=T0, payload=line, source="10.0.0.2")


def test_a_nul_in_one_of_1000_items_is_stored_raw_with_its_error_and_the_999_others_as_events(pg_db):
    # Given 1,000 items from the queue, one of which (sent before the edge refused it) has a NUL in its title
    items = [webhook(i) for i in range(1000)]
    items[517] = webhook(517, title="poisoned\x00title")
    # When the batch is stored
    result = store_batch(items, window_s=300)
    # Then 999 events are stored, and the offender is kept raw with its error, unprocessed
    assert len(result.inserted) == 999 and result.errors == 1
    assert ProcessedEvent.select().count() == 999
    offender = RawEvent.get_by_id(items[517]["id"])
    assert offender.processed is False
    assert offender.processing_errors[0].startswith("payload.title: ") and "NUL" in offender.processing_errors[0]
    assert offender.raw_data["title"] == "poisoned\\x00title"
    assert RawEvent.select().where(RawEvent.processed == True).count() == 999  # noqa: E712


def test_a_value_the_database_refuses_is_isolated_by_bisection(pg_db):
    # Given 1,000 items, one carrying a request id PostgreSQL refuses as a uuid (no check knows it beforehand)
    items = [webhook(i) for i in range(1000)]
    items[3]["request_id"] = "not-a-uuid"
    # When the batch is stored
    result = store_batch(items, window_s=300)
    # Then the 999 others are stored as events
    assert ProcessedEvent.select().count() == 999
    assert sorted(result.inserted) == sorted(i["id"] for n, i in enumerate(items) if n != 3)
    # And the offender is kept raw with the database's refusal as its error
    offender = RawEvent.get_by_id(items[3]["id"])
    assert offender.processed is False and offender.request_id is None
    assert offender.processing_errors[0].startswith("storage refused: DataError: invalid input syntax for type uuid")
    assert offender.raw_data["title"] == "event 3"
    # And a redelivery of the same message stores nothing twice
    again = store_batch(items, window_s=300)
    assert again.inserted == [] and ProcessedEvent.select().count() == 999 and RawEvent.select().count() == 1000


def test_syslog_and_snmp_input_with_a_nul_is_kept_escaped_and_parsed(pg_db):
    # Given a syslog line with a NUL, a clean one, a non-UTF-8 one with a NUL, and a trap with a NUL in a value
    lines = [
        syslog("<11>Jan 10 10:00:00 fw1 app: bad\x00byte in message"),
        syslog("<11>Jan 10 10:00:00 fw1 app: clean message"),
        {**syslog("<11>Jan 10 10:00:00 fw1 app: caf\xe9 \x00 latin"), "encoding": "latin-1"},
    ]
    trap = {"version": "v2c", "peer": "10.0.0.9", "pdu": "trap", "trap_oid": "1.3.6.1.4.1.9.9.1",
            "varbinds": [["1.3.6.1.2.1.1.3.0", "TimeTicks", 5], ["1.3.6.1.6.3.1.1.4.1.0", "ObjectIdentifier",
                          "1.3.6.1.4.1.9.9.1"], ["1.3.6.1.4.1.9.9.1.1", "OctetString", "a\x00b"]]}  # fmt: skip
    snmp = make_item(id=new_id(), source_type="snmp", received_at=T0, payload=trap, source="10.0.0.9")
    # When they are stored in one batch
    result = store_batch([*lines, snmp], window_s=300)
    # Then every one became an event: the NUL is written \x00 in the raw row and in the event
    assert result.errors == 0 and len(result.inserted) == 4
    assert RawEvent.select(RawEvent.processed).where(RawEvent.id == lines[0]["id"]).scalar() is True
    assert raw_data(lines[0]) == "<11>Jan 10 10:00:00 fw1 app: bad\\x00byte in message"
    assert "bad\\x00byte" in ProcessedEvent.get_by_id(lines[0]["id"]).title
    assert "caf\xe9 \\x00 latin" in ProcessedEvent.get_by_id(lines[2]["id"]).title
    assert ProcessedEvent.get_by_id(snmp["id"]).event_data["varbinds"]["1.3.6.1.4.1.9.9.1.1"] == "a\\x00b"
    assert RawEvent.get_by_id(snmp["id"]).raw_data["varbinds"][2][2] == "a\\x00b"


def raw_data(item: dict):
    """The stored raw input, read as JSON text (the model's JSON field cannot read a JSON string on PostgreSQL)."""
    text = RawEvent.select(peewee.Cast(RawEvent.raw_data, "text")).where(RawEvent.id == item["id"]).scalar()
    return orjson.loads(text)


def queue_depth(channel, name: str) -> int:
    return channel.queue_declare(name, passive=True).method.message_count


def test_a_poisoned_batch_through_the_worker_stores_999_events_on_first_delivery(stack, db):
    # Given a normalize message of 1,000 items, one with a NUL in its title, on the real RabbitMQ
    items = [webhook(i, host="worker-poison") for i in range(1000)]
    items[999] = webhook(999, host="worker-poison", metadata={"note": "nul \x00 here"})
    message = dramatiq.Message(queue_name="normalize", actor_name="normalize", args=(items,), kwargs={}, options={})
    connection = pika.BlockingConnection(pika.URLParameters(services.RABBITMQ_URL))
    channel = connection.channel()
    try:
        channel.basic_publish("", "normalize", message.encode(), pika.BasicProperties(delivery_mode=2))
        # When the worker takes it
        ids = [i["id"] for i in items]
        wait_for(lambda: RawEvent.select().where(RawEvent.id.in_(ids)).count() == 1000, timeout=30,
                 message="1,000 raw rows")  # fmt: skip
        # Then 999 events are stored on the first delivery, and the offender raw with its error
        assert ProcessedEvent.select().where(ProcessedEvent.id.in_(ids[:999])).count() == 999
        offender = RawEvent.get_by_id(ids[999])
        assert offender.processed is False and offender.processing_errors[0].startswith("payload.metadata.note: ")
        # And nothing was retried, delayed or dead-lettered
        assert "Retrying message" not in stack.worker.output()
        assert queue_depth(channel, "normalize.DQ") == 0 and queue_depth(channel, "normalize.XQ") == 0
    finally:
        connection.close()

"""What storage and the broker accept, checked at the edge; one request never fails its publish group."""

from __future__ import annotations

import dramatiq
import orjson
import pytest
from dramatiq.brokers.stub import StubBroker

from app.errors import BrokerUnavailable, InvalidInput
from app.events.limits import MAX_DEPTH, escape, first_problem
from app.publishing import BatchPublisher


def nested(depth: int, leaf: object = 1) -> dict:
    value: object = leaf
    for _ in range(depth):
        value = {"a": value}
    return value  # type: ignore[return-value]


def test_a_nul_in_a_nested_string_is_named_by_its_dotted_path():
    # Given an event whose metadata holds a NUL two levels down
    body = {"title": "ok", "metadata": {"a": {"b": "x\x00y"}}}
    # When it is checked
    problem = first_problem(body)
    # Then the field is named, and the NUL is the reason
    assert problem is not None
    assert problem[0] == "metadata.a.b" and "NUL" in problem[1]


def test_a_nul_in_a_key_of_the_fourth_event_of_a_list_is_named_with_its_index():
    body = [{"title": "a"}] * 3 + [{"title": "d", "metadata": {"k\x00": 1}}]
    assert first_problem(body) == (
        "[3].metadata.k\x00",
        "a key contains a NUL character (\\u0000), which cannot be stored",
    )


def test_a_lone_surrogate_is_refused_and_a_valid_pair_is_not():
    assert first_problem({"description": "bad \ud800 text"}) == (
        "description", "a string contains a lone surrogate, which is not valid Unicode",
    )  # fmt: skip
    assert first_problem({"description": "fine \U0001f600 text"}) is None


def test_nesting_deeper_than_the_limit_is_refused_at_the_first_level_too_deep():
    # Given metadata nested 300 deep (orjson decodes it but cannot encode it for the broker)
    body = {"metadata": nested(300)}
    # When it is checked
    field, message = first_problem(body)  # type: ignore[misc]
    # Then the path ends at the first object deeper than the limit
    assert message == f"nesting is deeper than {MAX_DEPTH} levels"
    assert field.startswith("metadata.a.a") and len(field) <= 201
    # And the limit itself is accepted
    assert first_problem(nested(MAX_DEPTH)) is None
    assert first_problem(nested(MAX_DEPTH + 1)) is not None


def test_escaping_keeps_syslog_and_snmp_input_readable_and_storable():
    # Given a trap with a NUL in a key and a value, and a lone surrogate
    trap = {"varbinds": [["1.3.6", "OctetString", "a\x00b"]], "k\x00": "\udc80"}
    # When it is escaped
    escaped = escape(trap)
    # Then the NUL is written as \x00, the surrogate as U+FFFD, and nothing is left to refuse
    assert escaped == {"varbinds": [["1.3.6", "OctetString", "a\\x00b"]], "k\\x00": "\ufffd"}
    assert first_problem(escaped, max_depth=None) is None
    # And a latin-1 flagged syslog frame can still be re-encoded as latin-1
    assert escape("caf\xe9\x00").encode("latin-1") == b"caf\xe9\\x00"


@pytest.fixture
def group_publisher(stub_broker):
    pytest.importorskip("gevent")
    publisher = BatchPublisher(stub_broker, timeout_s=5)
    yield publisher
    publisher.close()


def published_items(broker) -> list[dict]:
    items = []
    queue = broker.queues["normalize"]
    while not queue.empty():
        items += dramatiq.Message.decode(queue.get()).args[0]
    return items


def test_a_request_that_cannot_be_encoded_fails_alone_and_its_group_is_published(group_publisher, stub_broker):
    import gevent

    # Given 24 good requests and one whose item orjson cannot encode, sent at the same time
    def send(i: int) -> str:
        payload = {"metadata": nested(300)} if i == 7 else {"title": f"event {i}"}
        try:
            group_publisher.publish([{"id": f"id-{i}", "payload": payload}])
        except (InvalidInput, BrokerUnavailable) as e:
            return type(e).__name__
        return "ok"

    # When they are published through one group publisher
    senders = [gevent.spawn(send, i) for i in range(25)]
    gevent.joinall(senders, timeout=10)
    # Then only the bad one fails, as bad input, and every good item is in the broker
    outcomes = [s.value for s in senders]
    assert outcomes[7] == "InvalidInput"
    assert outcomes[:7] + outcomes[8:] == ["ok"] * 24
    assert sorted(i["id"] for i in published_items(stub_broker)) == sorted(f"id-{i}" for i in range(25) if i != 7)


class RefusingBroker(StubBroker):
    """Dramatiq's stub broker refusing messages that carry a marker, as RabbitMQ refuses a message over its
    ``max_message_size`` or nacks one (dramatiq's middleware hooks cannot refuse a publish)."""

    def enqueue(self, message, *, delay=None):
        if b"refuse-me" in message.encode():
            raise RuntimeError("the broker refused this message")
        return super().enqueue(message, delay=delay)


def test_a_group_publish_refused_for_one_request_is_retried_without_it():
    gevent = pytest.importorskip("gevent")
    # Given a broker that refuses any message carrying one request's marker
    broker = RefusingBroker()
    broker.declare_queue("normalize")
    publisher = BatchPublisher(broker, timeout_s=5)

    def send(i: int) -> str:
        try:
            publisher.publish([{"id": f"id-{i}", "payload": {"title": "refuse-me" if i == 3 else "fine"}}])
        except BrokerUnavailable:
            return "503"
        return "ok"

    # When ten requests share a group with it
    senders = [gevent.spawn(send, i) for i in range(10)]
    gevent.joinall(senders, timeout=10)
    publisher.close()
    # Then only that request fails; the nine others are published on their own
    assert [s.value for s in senders] == ["ok"] * 3 + ["503"] + ["ok"] * 6
    assert sorted(i["id"] for i in published_items(broker)) == sorted(f"id-{i}" for i in range(10) if i != 3)


def test_items_of_several_requests_travel_as_one_json_array():
    from app.publishing import encode_items, join_encoded

    parts = [encode_items([{"a": 1}]), encode_items([]), encode_items([{"b": 2}, {"c": 3}])]
    assert orjson.loads(orjson.dumps([join_encoded(parts)])) == [[{"a": 1}, {"b": 2}, {"c": 3}]]


def test_the_fast_storage_check_names_the_field_and_is_not_fooled_by_an_escaped_backslash():
    from app.events.limits import storage_problem

    # A literal backslash-u0000 (six characters) is storable; a real NUL or a lone surrogate is not
    assert storage_problem({"note": "\\u0000 as text"}) is None
    assert storage_problem({"a": ["x\x00"]}, prefix="payload")[0] == "payload.a[0]"  # type: ignore[index]
    assert storage_problem({"a": "\ud800"})[0] == "a"  # type: ignore[index]

"""RABBITMQ_QUEUE_TYPE and a RABBITMQ_URL listing several nodes, without a broker (the cluster test runs them for real)."""

from __future__ import annotations

import pytest
from dramatiq.brokers.rabbitmq import DEAD_MESSAGE_TTL

from app.brokers.rabbitmq import DELIVERY_LIMIT, QueueMismatch, RabbitmqBroker
from app.config import ConfigError, load_settings, rabbitmq_node_urls

URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


def test_queues_are_classic_unless_quorum_is_asked_for():
    assert load_settings({}).rabbitmq_queue_type == "classic"
    assert load_settings({"RABBITMQ_QUEUE_TYPE": " Quorum "}).rabbitmq_queue_type == "quorum"


def test_an_unknown_queue_type_is_refused_naming_the_variable():
    with pytest.raises(ConfigError, match="RABBITMQ_QUEUE_TYPE must be one of classic, quorum, got 'stream'"):
        load_settings({"RABBITMQ_QUEUE_TYPE": "stream"})


def test_classic_queues_are_declared_exactly_as_dramatiq_declares_them():
    # Given a broker of classic queues
    broker = RabbitmqBroker(url=URL, queue_type="classic")
    # When the arguments of the normalize queues are built
    arguments = broker.queue_arguments("normalize")
    # Then they are Dramatiq's: dead letters routed to .XQ, which expires them after a week
    dead_letters = {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "normalize.XQ"}
    assert arguments == {"normalize": dead_letters, "normalize.DQ": dead_letters,
                         "normalize.XQ": {"x-message-ttl": DEAD_MESSAGE_TTL}}  # fmt: skip


def test_quorum_queues_dead_letter_at_least_once_and_redeliveries_never_reach_the_delivery_limit():
    # Given a broker of quorum queues
    broker = RabbitmqBroker(url=URL, queue_type="quorum")
    # When the arguments of the normalize queues are built
    arguments = broker.queue_arguments("normalize")
    # Then all three are quorum queues; the work and delay queues keep Dramatiq's dead-letter route,
    # dead-letter at least once, and allow far more redeliveries than any outage causes
    work = {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "normalize.XQ", "x-queue-type": "quorum",
            "x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish",
            "x-delivery-limit": DELIVERY_LIMIT}  # fmt: skip
    assert arguments == {"normalize": work, "normalize.DQ": work,
                         "normalize.XQ": {"x-message-ttl": DEAD_MESSAGE_TTL, "x-queue-type": "quorum"}}  # fmt: skip
    assert DELIVERY_LIMIT > 100_000


def test_quorum_queues_refuse_a_priority_they_do_not_support():
    with pytest.raises(ValueError, match="quorum queues have no x-max-priority"):
        RabbitmqBroker(url=URL, queue_type="quorum", max_priority=5)


def test_a_queue_of_another_type_is_named_with_the_way_out():
    # When RabbitMQ refuses to redeclare normalize.DQ as a quorum queue
    error = QueueMismatch("normalize.DQ", "quorum", "PRECONDITION_FAILED - inequivalent arg 'x-queue-type'")
    # Then the error names the queue, RabbitMQ's reason, and both ways out
    assert "queue 'normalize.DQ' as a quorum queue" in str(error)
    assert "inequivalent arg 'x-queue-type'" in str(error)
    assert "set RABBITMQ_QUEUE_TYPE=classic" in str(error) and "rabbitmqctl delete_queue" in str(error)


def test_one_url_names_one_node():
    assert rabbitmq_node_urls(URL) == (URL,)


def test_several_nodes_are_full_urls_or_host_and_port_taking_the_first_urls_credentials_vhost_and_query():
    url = "amqps://ops:s3cret@rmq1.example.net:5671/opsconductor?heartbeat=30, rmq2.example.net:5671;[fd00::3]:5671"
    assert rabbitmq_node_urls(url) == (
        "amqps://ops:s3cret@rmq1.example.net:5671/opsconductor?heartbeat=30",
        "amqps://ops:s3cret@rmq2.example.net:5671/opsconductor?heartbeat=30",
        "amqps://ops:s3cret@[fd00::3]:5671/opsconductor?heartbeat=30",
    )
    assert rabbitmq_node_urls("amqp://a@h1/v,amqp://b@h2/w") == ("amqp://a@h1/v", "amqp://b@h2/w")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://ops:s3cret@rmq1/", "must start with amqp:// or amqps:// and a host, got 'http://ops:\\*\\*\\*@rmq1/'"),
        ("amqp://rmq1/,not a host", "node 'not a host' is neither a URL nor host:port"),
        ("amqp://rmq1/,http://rmq2/", "node 'http://rmq2/' is not an amqp:// or amqps:// URL"),
        (" , ", "lists no node"),
    ],
)
def test_a_malformed_node_list_is_refused_at_start_without_the_password(url, message):
    with pytest.raises(ConfigError, match=message):
        load_settings({"RABBITMQ_URL": url})


def test_the_broker_connects_to_the_listed_nodes_in_order():
    # Given settings naming three nodes
    settings = load_settings({"RABBITMQ_URL": "amqp://guest:guest@n1:5681/%2F,n2:5682,n3:5683"})
    # When a broker is built on them (as app.broker.setup_broker does)
    broker = RabbitmqBroker(url=list(rabbitmq_node_urls(settings.rabbitmq_url or "")))
    # Then pika gets one set of parameters per node, in order, which it tries until one answers
    assert [(p.host, p.port, p.virtual_host) for p in broker.parameters] == [("n1", 5681, "/"), ("n2", 5682, "/"),
                                                                              ("n3", 5683, "/")]  # fmt: skip

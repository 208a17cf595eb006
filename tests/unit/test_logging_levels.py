"""LOG_LEVEL as the processes apply it (:func:`app.runtime.configure_logging`)."""

from __future__ import annotations

import logging

import pika
import pytest

from app.runtime import configure_logging


class _Caught(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.caught: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.caught.append(record)


@pytest.fixture
def records():
    """The records reaching the root logger; the levels of the root and pika's loggers restored afterwards."""
    root, pika_logger = logging.getLogger(), logging.getLogger("pika")
    levels = root.level, pika_logger.level
    handler = _Caught()
    root.addHandler(handler)
    yield handler.caught
    root.removeHandler(handler)
    root.setLevel(levels[0])
    pika_logger.setLevel(levels[1])


def test_at_debug_the_product_logs_its_debug_lines_and_pika_its_connections_not_each_frame(records, rabbitmq_url):
    # Given a process at LOG_LEVEL=DEBUG
    configure_logging("DEBUG")
    # When it logs a debug line and talks to RabbitMQ (connect, declare, publish, close)
    logging.getLogger("app.correlation.store").debug("Correlator batch: rehearsed.")
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    channel = connection.channel()
    channel.queue_declare("", exclusive=True)
    channel.basic_publish("", "nowhere", b"x")
    connection.close()
    # Then its own line is written, and pika's records are its connections', none of its per-frame debug ones
    assert any(r.getMessage() == "Correlator batch: rehearsed." for r in records)
    from_pika = [r for r in records if r.name.startswith("pika")]
    assert from_pika and all(r.levelno >= logging.INFO for r in from_pika)


def test_above_debug_pika_writes_nothing_but_critical(records, rabbitmq_url):
    configure_logging("INFO")
    pika.BlockingConnection(pika.URLParameters(rabbitmq_url)).close()
    assert [r for r in records if r.name.startswith("pika")] == []

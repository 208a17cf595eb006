"""Transient failures are never recorded as bad input; rows marked by one are reprocessed by the CLI.

On real PostgreSQL (and RabbitMQ for the CLI's hand-off to the correlator).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pika
import psycopg2
import pytest

import app.events.syslog_rule_store as syslog_rules
from app.db import database
from app.errors import DatabaseUnavailable
from app.events.envelope import make_item
from app.events.store import store_batch
from app.ids import new_id
from app.models import ProcessedEvent, RawEvent
from tests import services

T0 = time.time()
OUTAGE_ERROR = "internal parser error: DatabaseUnavailable: FATAL: the database system is not accepting connections"


def syslog(line: str) -> dict:
    return make_item(id=new_id(), source_type="syslog", received_at=T0, payload=line, source="10.0.0.3")


@pytest.fixture
def locked_rules(pg_db, pg_url):
    """Operators' parsing rules unreadable for a while: another session holds their table locked,
    and this database's sessions give up waiting for a lock after 300 ms, as in an outage."""
    admin = psycopg2.connect(pg_url)
    admin.autocommit = True
    admin.cursor().execute(f"ALTER DATABASE {services.TEST_DATABASE} SET lock_timeout = '300ms'")
    database.close_all()  # new sessions take the setting
    syslog_rules._cache = None  # the normalizer reads the rules now, not from its 30 s cache
    holder = psycopg2.connect(pg_url)
    holder.cursor().execute("LOCK TABLE events.event_patterns IN ACCESS EXCLUSIVE MODE")
    yield holder
    holder.rollback()
    holder.close()
    admin.cursor().execute(f"ALTER DATABASE {services.TEST_DATABASE} RESET lock_timeout")
    admin.close()
    database.close_all()
    syslog_rules._cache = None


def test_a_database_error_while_reading_parsing_rules_retries_the_batch_instead_of_marking_input_bad(locked_rules):
    # Given syslog lines arriving while the parsing rules cannot be read from the database
    items = [syslog(f"<11>Jan 10 10:00:00 fw1 app: line {i}") for i in range(5)]
    # When the batch is stored
    with pytest.raises(DatabaseUnavailable):
        store_batch(items, window_s=300)
    # Then nothing is recorded against the input (the message is retried by the broker)
    assert RawEvent.select().count() == 0
    # And once the database answers again, the redelivered batch becomes events
    locked_rules.rollback()
    result = store_batch(items, window_s=300)
    assert result.errors == 0 and len(result.inserted) == 5
    assert RawEvent.select().where(RawEvent.processed == True).count() == 5  # noqa: E712


def insert_raw(payload, *, source_type: str = "syslog", error: str = OUTAGE_ERROR, at: float = T0) -> str:
    from datetime import UTC, datetime

    row_id = new_id()
    RawEvent.insert(
        id=row_id, source_system="10.0.0.3", source_type=source_type, raw_data=payload,
        received_at=datetime.fromtimestamp(at, UTC), processed=False, processing_errors=[error],
    ).execute()  # fmt: skip
    return row_id


def row(row_id: str) -> tuple[bool, list | None]:
    found = RawEvent.select(RawEvent.processed, RawEvent.processing_errors).where(RawEvent.id == row_id).get()
    return found.processed, found.processing_errors


def reprocess(pg_url: str, rabbitmq_url: str, *args: str) -> str:
    env = {**os.environ, "DATABASE_URL": pg_url, "RABBITMQ_URL": rabbitmq_url, "LOG_LEVEL": "WARNING"}
    argv = [str(Path(sys.executable).parent / "opsconductor"), "reprocess", *args]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def correlate_messages(rabbitmq_url: str) -> list[list[str]]:
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    channel = connection.channel()
    bodies = []
    while True:
        method, _props, body = channel.basic_get("correlate", auto_ack=True)
        if method is None:
            break
        bodies.append(orjson.loads(body)["args"][0])
    connection.close()
    return bodies


def test_reprocess_turns_rows_marked_by_an_outage_into_events_once(pg_db, pg_url, rabbitmq_url):
    # Given raw rows an outage marked unparseable, one row genuinely unparseable, and one old outage row
    services.purge_queues(rabbitmq_url)
    marked = [insert_raw(f"<11>Jan 10 10:00:00 fw{i} app: disk full") for i in range(3)]
    genuine = insert_raw({"source": "x"}, source_type="webhook", error="title: title (or message) is required")
    stale = insert_raw({"source": "x"}, source_type="webhook")  # matches, but still does not parse
    old = insert_raw("<11>Jan 10 10:00:00 fw9 app: old", at=T0 - 3 * 86400)

    # When an operator asks for a dry run
    out = reprocess(pg_url, rabbitmq_url, "--errors-matching", "DatabaseUnavailable", "--since", "24h", "--dry-run")
    # Then it counts, and changes and sends nothing
    assert "4 raw rows matched: would parse 3, 1 still failing" in out
    assert [row(r)[0] for r in marked] == [False] * 3 and ProcessedEvent.select().count() == 0
    assert correlate_messages(rabbitmq_url) == []

    # When the rows are reprocessed
    out = reprocess(pg_url, rabbitmq_url, "--errors-matching", "DatabaseUnavailable", "--since", "24h")
    # Then the outage's rows are events, processed, their errors cleared, and sent on to correlate
    assert "4 raw rows matched: parsed 3, 1 still failing; 3 events sent to correlate" in out
    assert [row(r) for r in marked] == [(True, None)] * 3
    assert {str(e.id) for e in ProcessedEvent.select()} == set(marked)
    assert [sorted(ids) for ids in correlate_messages(rabbitmq_url)] == [sorted(marked)]
    # And input that is bad on its own now carries its own error; the others are untouched
    assert row(stale) == (False, ["title: title (or message) is required"])
    assert row(genuine) == (False, ["title: title (or message) is required"])
    assert row(old) == (False, [OUTAGE_ERROR])

    # When it runs again, nothing is stored twice
    out = reprocess(pg_url, rabbitmq_url, "--errors-matching", "DatabaseUnavailable", "--since", "24h")
    assert "0 raw rows matched" in out and ProcessedEvent.select().count() == 3

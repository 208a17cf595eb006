"""Real backends for the tests: where they are, whether they answer, and how to reset them.

Locally a missing server skips the tests that need it; under CI (``CI=true``)
it fails them, so a broken environment can never pass as green.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit, urlunsplit

import pytest

RABBITMQ_URL = os.environ.get("RABBITMQ_URL") or "amqp://guest:guest@127.0.0.1:5672/%2F"
BASE_DATABASE_URL = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/test"
#: The tests' own database, created next to the one DATABASE_URL names, so they never touch its tables.
TEST_DATABASE = os.environ.get("OPSCONDUCTOR_TEST_DATABASE") or "opsconductor_test"

#: Queues the tests purge before they run.
QUEUES = ("normalize", "correlate", "evaluate", "decide", "execute", "rollback", "notify", "agent_terraform",
          "agent_kubernetes", "agent_cost")


def under_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def require(name: str, url: str, default_port: int) -> None:
    if reachable(url, default_port):
        return
    message = f"{name} is not reachable at {urlsplit(url).hostname}:{urlsplit(url).port or default_port}"
    if under_ci():
        pytest.fail(message + " (CI=true: a missing server fails the run)", pytrace=False)
    pytest.skip(message)


def test_database_url() -> str:
    parts = urlsplit(BASE_DATABASE_URL)
    return urlunsplit(parts._replace(path="/" + TEST_DATABASE))


def recreate_test_database() -> str:
    """Drop and create the tests' PostgreSQL database; return its URL."""
    recreate_database(TEST_DATABASE)
    return test_database_url()


def recreate_database(name: str, base: str = BASE_DATABASE_URL) -> None:
    """Drop and create the database ``name`` on the server of ``base`` (its sessions ended first)."""
    import psycopg2

    parts = urlsplit(base)
    conn = psycopg2.connect(
        dbname=parts.path.lstrip("/") or "postgres",
        user=parts.username or "postgres",
        password=parts.password,
        host=parts.hostname,
        port=parts.port or 5432,
    )
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()


def purge_queues(url: str = RABBITMQ_URL, queues: tuple[str, ...] = QUEUES) -> None:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    for queue in queues:
        for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
            try:
                channel.queue_purge(name)
            except pika.exceptions.ChannelClosedByBroker:
                channel = connection.channel()  # the queue does not exist yet
    connection.close()


def get_dead_letters(queue: str, url: str = RABBITMQ_URL) -> list[bytes]:
    """Take every message from ``<queue>.XQ`` (acknowledged: they are consumed)."""
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    bodies = []
    while True:
        method, _props, body = channel.basic_get(f"{queue}.XQ", auto_ack=True)
        if method is None:
            break
        bodies.append(body)
    connection.close()
    return bodies

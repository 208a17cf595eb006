"""The real stack: gunicorn with the gevent worker, a dramatiq worker, RabbitMQ and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from app.auth import create_key
from app.db import init_database
from app.migrate import migrate
from tests import services
from tests.processes import Process, Since, reap_retired, retire, start_web, start_worker


@dataclass
class Stack:
    base: str
    admin: str
    ingest: str
    viewer: str
    env: dict[str, str]
    web: Process
    worker: Process


@pytest.fixture(scope="module")
def stack_env(pg_url, rabbitmq_url) -> dict[str, str]:
    reap_retired()  # the processes an earlier module retired are gone before this one's start
    services.purge_queues(rabbitmq_url)
    init_database(pg_url, application_name="opsconductor-tests", max_connections=4)
    migrate()
    return {"DATABASE_URL": pg_url, "RABBITMQ_URL": rabbitmq_url, "LOG_LEVEL": "INFO", "DEDUP_WINDOW_SECONDS": "300"}


@pytest.fixture(scope="module")
def stack(request, stack_env, stacks) -> Iterator[Stack]:
    keys = {role: create_key(role=role, name=f"test {role}") for role in ("admin", "ingest", "viewer")}
    if request.node.get_closest_marker("own_stack") is None:
        web, worker, base = stacks.processes(stack_env)
        yield Stack(base, keys["admin"], keys["ingest"], keys["viewer"], stack_env, Since(web), Since(worker))  # type: ignore[arg-type]
        return
    worker = start_worker(stack_env)
    web, base = start_web(stack_env)
    try:
        yield Stack(base, keys["admin"], keys["ingest"], keys["viewer"], stack_env, web, worker)
    finally:
        retire(web, worker)  # the next module need not wait for their clean shutdown


@pytest.fixture
def db(stack, pg_url):
    """The test's own connection to the stack's database, for assertions."""
    return init_database(pg_url, application_name="opsconductor-tests", max_connections=4)

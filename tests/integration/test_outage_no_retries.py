"""An outage is not a failure of the message: a database outage under load on the real stack dead-letters
nothing, and ``/readyz`` says what is down without the driver's words."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.auth import create_key
from app.db import init_database
from app.migrate import migrate
from tests import services
from tests.http import request
from tests.outage import Stack, Traffic, run_outage
from tests.processes import free_port, start_web, stop_all
from tests.proxy import TcpProxy

#: Each message may be retried twice, 1 s then 2 s apart: a ladder of about 3 s, which the
#: 15 s outage outlasts five times over (the default ladder is about 30 minutes).
#: (bench/outage.py runs outages of minutes.)
SHORT_RETRY_LADDER = {"RETRY_LIMIT": "2", "RETRY_MAX_BACKOFF_MS": "2000"}


@pytest.fixture
def env(pg_url, rabbitmq_url) -> dict[str, str]:
    services.purge_queues(rabbitmq_url)
    init_database(pg_url, application_name="opsconductor-tests", max_connections=4)
    migrate()
    return {"DATABASE_URL": pg_url, "RABBITMQ_URL": rabbitmq_url, "LOG_LEVEL": "INFO", **SHORT_RETRY_LADDER}


@pytest.fixture
def pg_proxy(pg_url) -> Iterator[TcpProxy]:
    proxy = TcpProxy.to(pg_url, 5432)
    yield proxy
    proxy.close()


def test_a_15_s_database_outage_under_load_dead_letters_nothing_and_the_backlog_drains(
    env, pg_proxy, rabbitmq_url, tmp_path
):
    # Given the Procfile's pipeline on a database behind a proxy, and syslog and webhook traffic
    stack = Stack(env, pg_proxy, str(tmp_path))
    key = create_key(role="ingest", name="outage test")
    try:
        base = stack.start()
        traffic = Traffic(syslog_port=stack.syslog_port, base=base, key=key)
        # When PostgreSQL is unreachable for 15 s while the traffic flows, and then returns
        figures = run_outage(
            rabbitmq_url=rabbitmq_url, traffic=traffic, proxy=pg_proxy, outage_s=15, drain_timeout_s=90
        )
    finally:
        stop_all(*stack.processes)  # at once: the pipeline's five processes stop in the time of the slowest
    print("\n".join(figures.lines()))
    # Then nothing is dead-lettered, no input is marked bad because of the database,
    # everything accepted is stored, and the backlog drained within 60 s of recovery
    assert figures.dead_lettered == {"normalize.XQ": 0, "correlate.XQ": 0, "evaluate.XQ": 0}, stack.output()
    assert figures.raw_database_errors == 0
    assert figures.accepted > 1_800 and figures.stored == figures.accepted, figures  # ~150 events/s for 25 s
    assert figures.drain_s is not None and figures.drain_s <= 60, figures
    assert "workers pause until it answers" in stack.logs()


def test_readiness_names_what_is_unreachable_without_the_error_text(env, pg_proxy):
    # Given a web process whose database and broker are unreachable
    pg_proxy.down()
    broken = dict(env, DATABASE_URL=pg_proxy.url(env["DATABASE_URL"]),
                  RABBITMQ_URL=f"amqp://guest:secret-password@127.0.0.1:{free_port()}/%2F")  # fmt: skip
    web, base = start_web(broken)
    try:
        # When a load balancer asks whether it is ready
        reply = request("GET", f"{base}/readyz")
    finally:
        web.stop()
    # Then it answers 503 with a short reason per check, and the details are only in the log
    assert reply.status == 503
    assert reply.json() == {
        "status": "not_ready",
        "checks": {
            "database": {"ok": False, "error": "database unreachable"},
            "broker": {"ok": False, "error": "broker unreachable"},
        },
    }
    for leak in (b"127.0.0.1", b"Error", b"connection", str(pg_proxy.port).encode()):
        assert leak not in reply.body, reply.body
    assert "Readiness: the database is unreachable" in web.output()

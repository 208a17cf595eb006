"""``/metrics`` tells a database outage apart from a dead web process: ``opsconductor_database_up``."""

from __future__ import annotations

from falcon import testing

from app.db import init_database
from app.http.app import Deps, create_app
from app.publishing import DirectPublisher
from tests.processes import free_port


def test_metrics_answer_with_database_up_0_and_the_broker_figures_while_postgresql_is_unreachable(stub_broker):
    # Given a web app whose PostgreSQL does not answer (nothing listens on its port)
    db = init_database(f"postgresql://postgres@127.0.0.1:{free_port()}/gone", max_connections=2)
    stub_broker.declare_queue("normalize")
    stub_broker.queues["normalize"].put(b"waiting")
    api = testing.TestClient(create_app(Deps(publisher=DirectPublisher(stub_broker), broker=stub_broker)))
    try:
        # When Prometheus scrapes it
        reply = api.simulate_get("/metrics")
    finally:
        db.close_all()
    # Then the scrape succeeds: the database is down, the broker up with its queue depths, no database figure
    assert reply.status_code == 200
    assert "opsconductor_database_up 0.0" in reply.text
    assert "opsconductor_broker_up 1.0" in reply.text
    assert 'opsconductor_queue_messages{kind="ready",queue="normalize"} 1.0' in reply.text
    assert "opsconductor_incidents{" not in reply.text


def test_metrics_report_database_up_1_and_every_execution_status_at_0(sqlite_db, stub_broker):
    # Given the embedded database with no execution yet
    api = testing.TestClient(create_app(Deps(publisher=DirectPublisher(stub_broker), broker=stub_broker)))
    # When scraped
    text = api.simulate_get("/metrics").text
    # Then the database is up and each execution status has its series, at 0
    assert "opsconductor_database_up 1.0" in text
    for status in ("queued", "awaiting_approval", "running", "completed", "failed", "rolled_back"):
        assert f'opsconductor_executions{{status="{status}"}} 0.0' in text

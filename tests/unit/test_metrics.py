"""``/metrics`` through the real WSGI app, on the embedded default (SQLite, in-process broker)."""

from __future__ import annotations

from falcon import testing

from app.http.app import Deps, create_app
from app.models import Incident
from app.publishing import DirectPublisher


def test_metrics_count_incidents_approvals_and_the_in_process_queues(any_db, stub_broker):
    from datetime import UTC, datetime
    from uuid import uuid4

    now = datetime.now(UTC)
    Incident.create(id=uuid4(), status="open", title="t", root_event_id=uuid4(), root_fingerprint="f",
                    severity="high", opened_at=now, last_event_at=now)  # fmt: skip
    stub_broker.declare_queue("execute")
    stub_broker.queues["execute"].put(b"pending")
    api = testing.TestClient(create_app(Deps(publisher=DirectPublisher(stub_broker), broker=stub_broker)))
    reply = api.simulate_get("/metrics")  # no key: it holds no secrets, like /healthz
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/plain")
    assert 'opsconductor_incidents{status="open"} 1.0' in reply.text
    assert "opsconductor_approvals_pending 0.0" in reply.text
    assert 'opsconductor_queue_messages{kind="ready",queue="execute"} 1.0' in reply.text

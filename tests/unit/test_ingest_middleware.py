"""Ingest routes skip the middleware they do not need; every other route still gets what it needs.

Accepting an event answers from the broker alone, so returning a database connection it never took
is skipped for it (app.http.middleware.ReleaseDatabase), while an API route that reads the database
still hands its connection back, and a console page still sees its session. The database and the
broker are the real ones; each request runs on its own thread, as each runs in its own greenlet
under gunicorn's gevent worker (peewee keeps one connection per thread or greenlet).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from falcon import testing

from app.auth import KeyStore, Principal, create_key
from app.console import session
from app.db import database
from app.http.app import Deps, create_app
from app.publishing import DirectPublisher
from tests import services

EVENT = {"source": "test", "severity": "high", "host": "web-1", "title": "CPU high"}


@pytest.fixture
def broker(rabbitmq_url) -> Iterator[RabbitmqBroker]:
    """The real RabbitMQ, its ``normalize`` queue empty."""
    broker = RabbitmqBroker(url=rabbitmq_url, confirm_delivery=True)
    broker.declare_queue("normalize")
    services.purge_queues(rabbitmq_url, ("normalize",))
    yield broker
    services.purge_queues(rabbitmq_url, ("normalize",))
    broker.close()


def client(broker: RabbitmqBroker, *, keys: KeyStore | None = None) -> testing.TestClient:
    return testing.TestClient(
        create_app(Deps(publisher=DirectPublisher(broker), broker=broker, keys=keys or KeyStore()))
    )


def on_own_threads(count: int, call: Any) -> list[Any]:
    """``call()`` on ``count`` threads one after another; each thread ends before the next starts."""
    results: list[Any] = []
    for _ in range(count):
        thread = threading.Thread(target=lambda: results.append(call()))
        thread.start()
        thread.join()
    return results


def connections_in_use() -> int:
    """Pooled connections checked out and not handed back (a thread that ended still holding one leaked it)."""
    return len(database.obj._in_use)


def backends() -> int:
    """This database's server connections opened by the tests' pool, as PostgreSQL counts them."""
    row = database.execute_sql(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s",
        ("opsconductor-tests",),
    ).fetchone()
    database.close()  # the question's own connection goes back too
    return int(row[0])


def test_an_accepted_event_never_asks_for_a_database_connection(pg_db, broker, monkeypatch):
    # Given an ingest key already verified (the web tier's steady state: its cache answers)
    key = create_key(role="ingest", name="sender")
    keys = KeyStore()
    assert keys.verify(key) is not None
    api = client(broker, keys=keys)
    pg_db.close()
    asked: list[int] = []
    real = type(pg_db).is_closed
    monkeypatch.setattr(type(pg_db), "is_closed", lambda self: asked.append(1) or real(self))
    # When events are accepted
    replies = on_own_threads(3, lambda: api.simulate_post("/api/v1/events/webhook", json=EVENT,
                                                          headers={"Authorization": f"Bearer {key}"}))  # fmt: skip
    # Then each is durable in RabbitMQ, and nothing asked whether a connection was held
    assert [r.status_code for r in replies] == [202, 202, 202]
    assert broker.get_queue_message_counts("normalize")[0] == 3
    assert asked == []


def test_ingest_requests_whose_key_lookup_took_a_connection_keep_none(pg_db, broker):
    # Given a key store that asks the database on every request (no cache), as after a key's entry expired
    key = create_key(role="ingest", name="sender")
    api = client(broker, keys=KeyStore(ttl_s=0))
    pg_db.close()
    before = backends()
    # When events arrive on threads of their own, for the generic webhook and PagerDuty's endpoint
    replies = on_own_threads(4, lambda: api.simulate_post("/api/v1/events/webhook", json=EVENT,
                                                          headers={"Authorization": f"Bearer {key}"}))  # fmt: skip
    pagerduty = {"routing_key": key, "event_action": "trigger", "payload": {"summary": "disk", "source": "db-1",
                                                                             "severity": "error"}}  # fmt: skip
    replies += on_own_threads(2, lambda: api.simulate_post("/v2/enqueue", body=orjson.dumps(pagerduty),
                                                           headers={"Content-Type": "application/json"}))  # fmt: skip
    # Then every event was accepted, and every connection a lookup took is back in the pool, reused:
    # the server saw no new connection per request
    assert [r.status_code for r in replies] == [202] * 6
    assert connections_in_use() == 0
    assert backends() <= before + 1


def test_an_api_route_that_reads_the_database_still_returns_its_connection(pg_db, broker):
    # Given a viewer's key, verified once
    key = create_key(role="viewer", name="reader")
    api = client(broker)
    pg_db.close()
    before = backends()
    # When it lists events on threads of their own (each request takes a connection to read)
    replies = on_own_threads(6, lambda: api.simulate_get("/api/v1/events", headers={"Authorization": f"Bearer {key}"}))
    # Then each answered, and each handed its connection back (the pool, as PostgreSQL, counts none kept)
    assert [r.status_code for r in replies] == [200] * 6
    assert connections_in_use() == 0
    assert backends() <= before + 1


def test_a_console_page_still_sees_its_session(pg_db, broker):
    # Given a person signed in to the console
    key = create_key(role="viewer", name="alice")
    principal = KeyStore().verify(key)
    assert isinstance(principal, Principal)
    token = session.start(principal)
    api = client(broker)
    # When the incidents page is asked for with the session's cookie, and without it
    signed_in = api.simulate_get("/console/incidents", cookies={session.COOKIE: token})
    anonymous = api.simulate_get("/console/incidents")
    # Then the session opens the page (with the console's headers), and no session leads to the sign-in
    assert signed_in.status_code == 200, signed_in.text[:300]
    assert "alice" in signed_in.text
    assert signed_in.headers["Cache-Control"] == "no-store"
    assert anonymous.status_code == 303 and anonymous.headers["Location"].startswith("/console/login")
    assert connections_in_use() == 0


def test_only_routes_that_may_write_collect_the_notifications_they_write(pg_db, broker, monkeypatch):
    # Given the notifications middleware, watched as it starts collecting a request's notifications
    import app.http.notify

    started: list[str] = []
    real = app.http.notify.collect
    monkeypatch.setattr(app.http.notify, "collect", lambda: started.append("collect") or real())
    ingest, viewer = create_key(role="ingest", name="sender"), create_key(role="viewer", name="reader")
    api = client(broker)
    # When an event is accepted, Then nothing is collected (accepting writes no rows, so no notification)
    reply = api.simulate_post("/api/v1/events/webhook", json=EVENT, headers={"Authorization": f"Bearer {ingest}"})
    assert reply.status_code == 202 and started == []
    # And an API route that reads and writes the database still collects its own
    reply = api.simulate_get("/api/v1/events", headers={"Authorization": f"Bearer {viewer}"})
    assert reply.status_code == 200 and started == ["collect"]

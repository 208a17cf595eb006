"""The web tier during a PostgreSQL outage: gunicorn reaches PostgreSQL through a TCP proxy the
test cuts. Keys verified recently keep being accepted, a key never seen gets 503, and a key
revoked during the outage is refused once the database is back."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from app.auth import CACHE_TTL_S, create_key
from app.db import init_database
from app.migrate import migrate
from app.models import ApiKey
from tests import services
from tests.http import request
from tests.processes import start_web, wait_for
from tests.proxy import TcpProxy


@pytest.fixture
def outage(pg_url, rabbitmq_url) -> Iterator[dict]:
    services.purge_queues(rabbitmq_url)
    init_database(pg_url, application_name="opsconductor-tests", max_connections=4)
    migrate()
    proxy = TcpProxy.to(pg_url, 5432)
    # The default 30 s cache: the outage outlasts it, as the 30 s outage did.
    env = {"DATABASE_URL": proxy.url(pg_url), "RABBITMQ_URL": rabbitmq_url, "LOG_LEVEL": "INFO"}
    web, base = start_web(env)
    try:
        yield {"base": base, "proxy": proxy, "web": web}
    finally:
        web.stop()
        proxy.close()
        services.purge_queues(rabbitmq_url)


def send(base: str, key: str) -> int:
    event = {"source": "test", "event_type": "service_down", "severity": "high", "host": "web-01",
             "title": f"down {uuid.uuid4().hex[:6]}"}  # fmt: skip
    return request("POST", f"{base}/api/v1/events/webhook", key=key, json=event, timeout=10).status


def test_recently_verified_keys_keep_ingesting_through_a_database_outage(outage):
    base, proxy = outage["base"], outage["proxy"]
    # Given three ingest keys, two of which the web tier has just verified
    tag = uuid.uuid4().hex[:6]
    sender, leaver, stranger = (create_key(role="ingest", name=f"{n}-{tag}") for n in ("sender", "leaver", "stranger"))
    assert send(base, sender) == 202 and send(base, leaver) == 202

    # When PostgreSQL goes away for longer than a verification is fresh (AUTH_CACHE_SECONDS, 30 s)
    proxy.down()
    try:
        # Then the verified key is accepted all along, request after request
        statuses = []
        until = time.monotonic() + CACHE_TTL_S + 2
        while time.monotonic() < until:
            statuses.append(send(base, sender))
            time.sleep(0.5)
        assert statuses == [202] * len(statuses)
        # And a key the web tier never verified gets 503 (it cannot be checked), without a freeze
        started = time.monotonic()
        reply = request("POST", f"{base}/api/v1/events/webhook", key=stranger, json={"source": "t", "title": "x"})
        assert reply.status == 503, reply.body
        assert time.monotonic() - started < 5
        # A revocation made while the web tier cannot see the database (this test reaches it directly) waits for it
        ApiKey.update(revoked_at=datetime.now(UTC)).where(ApiKey.name == f"leaver-{tag}").execute()
        assert send(base, leaver) == 202
    finally:
        proxy.up()

    # And once the database is back, the revoked key is refused and the unknown one is known
    wait_for(lambda: send(base, leaver) == 401, timeout=20, interval=0.5, message="the revoked key refused")
    assert send(base, sender) == 202
    assert send(base, stranger) == 202

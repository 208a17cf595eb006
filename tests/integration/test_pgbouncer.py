"""PgBouncer in transaction mode between the product and PostgreSQL: the web tier, the workers, the release
step and the outage probe all work through it.

Transaction pooling hands each transaction whichever server connection is free, so nothing may rely on
session state: the product uses transaction-scoped advisory locks (``pg_advisory_xact_lock``), ``SET LOCAL``,
no LISTEN, no prepared statements (psycopg2 sends none) and no startup ``options`` (PgBouncer before 1.20
refuses them); its session time zone is a ``SET`` PgBouncer tracks per client. Debian's ``pgbouncer`` is
installed by scripts/ensure-services.sh (or here, as root); without it the test skips locally and fails
under ``CI=true``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest

from app.auth import create_key
from app.db import database, init_database, reachable
from app.models import Incident, ProcessedEvent
from tests import services
from tests.http import request
from tests.processes import BIN, Process, free_port, start_web, start_worker, wait_for

#: Server connections PgBouncer opens to PostgreSQL: fewer than the web's and the worker's pools together,
#: so clients share server connections transaction by transaction.
POOL_SIZE = 6


def _pgbouncer_binary() -> str | None:
    path = f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin"
    found = shutil.which("pgbouncer", path=path)
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "install", "-y", "-q", "pgbouncer"], env=env, capture_output=True, timeout=600)
        found = shutil.which("pgbouncer", path=path)
    return found


@pytest.fixture(scope="module")
def pgbouncer(pg_url) -> Iterator[tuple[str, Process]]:
    """PgBouncer in transaction mode on a free port in front of the tests' PostgreSQL; yields its URL."""
    binary = _pgbouncer_binary()
    if binary is None:
        message = "pgbouncer is not installed (Debian: apt-get install pgbouncer; scripts/ensure-services.sh does)"
        if services.under_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    target = urlsplit(pg_url)
    port = free_port()
    # PgBouncer refuses to run as root: it switches to the PostgreSQL system user, which must read its files.
    run_as = ["-u", "postgres"] if os.geteuid() == 0 else []
    folder = Path(tempfile.mkdtemp(prefix="oc-pgbouncer-"))
    folder.chmod(0o755)
    (folder / "users.txt").write_text(f'"{target.username or "postgres"}" ""\n')
    (folder / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={target.hostname} port={target.port or 5432}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {folder / 'users.txt'}\nadmin_users = {target.username or 'postgres'}\n"
        f"pool_mode = transaction\ndefault_pool_size = {POOL_SIZE}\nmax_client_conn = 500\n"
        "ignore_startup_parameters = extra_float_digits\n"
    )
    for name in ("users.txt", "pgbouncer.ini"):
        (folder / name).chmod(0o644)
    bouncer = Process("pgbouncer", [binary, *run_as, str(folder / "pgbouncer.ini")], {})
    url = urlunsplit(target._replace(netloc=f"{target.username or 'postgres'}@127.0.0.1:{port}"))
    try:
        wait_for(lambda: _answers(url) or not bouncer.alive(), timeout=20, message="pgbouncer listening")
        assert bouncer.alive(), bouncer.output()
        yield url, bouncer
    finally:
        bouncer.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _answers(url: str) -> bool:
    try:
        psycopg2.connect(url, connect_timeout=2).close()
        return True
    except psycopg2.OperationalError:
        return False


def _admin(url: str, command: str) -> list[dict]:
    """Rows of a PgBouncer admin console command (``SHOW POOLS``), as dicts."""
    conn = psycopg2.connect(urlunsplit(urlsplit(url)._replace(path="/pgbouncer")))
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute(command)
            names = [c.name for c in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        conn.close()


def test_the_product_connects_through_pgbouncer_in_utc_and_its_outage_probe_answers(pgbouncer):
    # Given the product's database bound to PgBouncer's URL
    url, _ = pgbouncer
    db = init_database(url, application_name="opsconductor-tests", max_connections=2)
    try:
        # When it asks for its session's time zone, in several transactions that may get different servers
        zones = set()
        for _ in range(5):
            with database.atomic():
                zones.add(database.execute_sql("SELECT current_setting('TimeZone')").fetchone()[0])
        # Then every one runs in UTC, and the outage probe (its own connection) finds the database
        assert zones == {"UTC"}
        assert reachable(timeout_s=5)
    finally:
        db.close_all()


def test_webhook_events_are_stored_once_and_correlated_with_every_process_behind_pgbouncer_in_transaction_mode(
    pgbouncer, pg_url, rabbitmq_url, tmp_path
):
    # Given the release step, the web tier and a worker of every queue, all with DATABASE_URL at PgBouncer
    url, _ = pgbouncer
    services.purge_queues(rabbitmq_url)
    env = {"DATABASE_URL": url, "RABBITMQ_URL": rabbitmq_url, "LOG_LEVEL": "INFO", "PATH": f"{BIN}:/usr/bin:/bin"}
    release = subprocess.run([str(BIN / "opsconductor"), "migrate"], env={**os.environ, **env}, capture_output=True,
                             text=True, timeout=300)  # fmt: skip
    assert release.returncode == 0, release.stderr[-3000:]
    init_database(pg_url, application_name="opsconductor-tests", max_connections=4)  # the test's own, direct
    key = create_key(role="admin", name=f"pgbouncer {uuid.uuid4().hex[:6]}")
    worker = start_worker(env, threads=8)
    web, base = start_web(env, workers=2)
    try:
        # When events of two unrelated hosts and services arrive, one by one and in arrays, from many clients at once
        hosts = [f"pgb-{uuid.uuid4().hex[:8]}" for _ in range(2)]
        ids: list[str] = []
        for n in range(10):
            for host in hosts:
                body = {
                    "source": "t",
                    "severity": "high",
                    "host": host,
                    "service": f"api-{host}",
                    "title": f"errors {n}",
                }
                reply = request("POST", f"{base}/api/v1/events/webhook", key=key, json=body)
                assert reply.status == 202, reply.body
                ids.append(reply.json()["event_id"])
        batch = [{"source": "t", "severity": "high", "host": hosts[n % 2], "service": f"api-{hosts[n % 2]}",
                  "title": f"batch {n}"} for n in range(20)]  # fmt: skip
        reply = request("POST", f"{base}/api/v1/events/webhook", key=key, json=batch)
        assert reply.status == 202, reply.body
        ids += [item["event_id"] for item in reply.json()]

        # Then each is stored once and correlated
        def correlated() -> bool:
            with database.atomic():
                rows = list(ProcessedEvent.select(ProcessedEvent.id, ProcessedEvent.correlation_id)
                            .where(ProcessedEvent.id.in_(ids)))  # fmt: skip
            return len(rows) == len(ids) and all(row.correlation_id for row in rows)

        wait_for(correlated, timeout=60, message="every event stored and correlated through pgbouncer")
        # And each incident counts exactly the events placed in it (no placement lost or made twice)
        with database.atomic():
            placed = {e.correlation_id for e in ProcessedEvent.select().where(ProcessedEvent.id.in_(ids))}
            for incident_id in placed:
                in_it = ProcessedEvent.select().where(ProcessedEvent.correlation_id == incident_id).count()
                assert Incident.get_by_id(incident_id).event_count == in_it
        assert len(set(ids)) == 40
        # And the API reads them back through PgBouncer too
        page = request("GET", f"{base}/api/v1/events?host={hosts[0]}&limit=100", key=key).json()
        assert page["total_count"] == 20
        # And PgBouncer carried it all: the product's processes are its clients, sharing at most POOL_SIZE servers
        clients = {row["application_name"] for row in _admin(url, "SHOW CLIENTS")}
        assert {"opsconductor-web", "opsconductor-worker"} <= clients, clients
        servers = [row for row in _admin(url, "SHOW SERVERS") if row["database"] == urlsplit(url).path.lstrip("/")]
        assert 0 < len(servers) <= POOL_SIZE
        assert "ERROR" not in web.output() and "Traceback" not in worker.output(), worker.output()[-3000:]
    finally:
        web.stop()
        worker.stop()

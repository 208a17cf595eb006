"""``opsconductor run``: the whole system in one gevent process, for a first run.

Embedded defaults: a SQLite file under ./var and Dramatiq's in-process broker,
with the workers in the same process. Accepted events are held in memory
until stored: this mode is for trying the product, not for production (use the
Procfile with RabbitMQ and PostgreSQL for that).
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import logging  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import urlsplit  # noqa: E402

import dramatiq  # noqa: E402
import gevent  # noqa: E402
from gevent.event import Event  # noqa: E402
from gevent.pywsgi import WSGIServer  # noqa: E402

from .actions.http import mask_url  # noqa: E402
from .auth import create_key, generate_key  # noqa: E402
from .config import Settings, load_settings  # noqa: E402
from .http.app import Deps, create_app  # noqa: E402
from .http.checks import BrokerCheck, database_check  # noqa: E402
from .migrate import migrate  # noqa: E402
from .publishing import BatchPublisher  # noqa: E402
from .receivers.process import make_outbox, raise_file_limit, watch_counters  # noqa: E402
from .receivers.snmp import TrapReceiver  # noqa: E402
from .receivers.syslog import SyslogReceiver  # noqa: E402
from .runtime import bootstrap  # noqa: E402

logger = logging.getLogger(__name__)

#: Where the generated admin key of the embedded mode is kept between runs.
ADMIN_KEY_FILE = os.path.join("var", "admin.key")

#: Seconds SIGTERM waits for queued events to be stored (Heroku allows 30).
DRAIN_TIMEOUT_S = 25


def admin_key(settings: Settings) -> str:
    """OPSCONDUCTOR_ADMIN_KEY, else the key generated on the first run (kept in var/admin.key)."""
    if settings.admin_key:
        return create_key(role="admin", name="OPSCONDUCTOR_ADMIN_KEY", key=settings.admin_key, actor="startup")
    if os.path.exists(ADMIN_KEY_FILE):
        with open(ADMIN_KEY_FILE) as f:
            key = f.read().strip()
    else:
        key = generate_key()
        os.makedirs(os.path.dirname(ADMIN_KEY_FILE), exist_ok=True)
        with open(os.open(ADMIN_KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(key + "\n")
    return create_key(role="admin", name="embedded admin", key=key, actor="startup")


def database_display(url: str) -> str:
    """``url`` fit for the banner, which lands in logs: its password (user part or query) masked."""
    parts = urlsplit(url)
    # mask_url rebuilds the URL, which turns sqlite:///var/x.db into sqlite:/var/x.db: only when needed
    return mask_url(url) if parts.password is not None or parts.query else url


def main() -> int:
    settings = load_settings()
    if settings.is_postgres:
        from psycogreen.gevent import patch_psycopg

        patch_psycopg()
    bootstrap(settings, role="all-in-one", allow_in_process=True)
    migrate()
    key = admin_key(settings)
    broker = dramatiq.get_broker()
    worker = dramatiq.Worker(broker, worker_threads=4, worker_timeout=100)
    worker.start()
    app = create_app(
        Deps(
            publisher=BatchPublisher(broker),
            checks={"database": database_check, "broker": BrokerCheck(broker)},
            max_body_bytes=settings.max_body_bytes,
            settings=settings,
        )
    )
    server = WSGIServer(("0.0.0.0", settings.port), app, log=None, error_log=logger)
    server.start()
    raise_file_limit()
    outbox = make_outbox(settings, "all-in-one", broker)
    receivers: list[Any] = [
        SyslogReceiver.from_settings(settings, outbox=outbox),
        TrapReceiver.from_settings(settings, outbox=outbox),
    ]
    for receiver in receivers:
        receiver.start()
    publisher = gevent.spawn(outbox.run)
    watchers = watch_counters(settings, "all-in-one", outbox, receivers)
    from . import clock  # after bootstrap: it imports the actors, bound to the broker set there

    # The clock's sweep (overdue approvals, lost executions, idle incidents resolved) in a greenlet.
    sweeper = gevent.spawn(clock.run, settings, interval_s=60)
    tls = f", TLS {settings.syslog_tls_port}" if settings.syslog_tls_cert and settings.syslog_tls_key else ""
    url = f"http://127.0.0.1:{settings.port}"
    print(
        f"OpsConductor Event Engine is running (all-in-one mode).\n"
        f"  Console:    {url}/console  (sign in with the admin key below)\n"
        f"  API:        {url}/api/v1/events  (OpenAPI: {url}/openapi.json)\n"
        f"  Webhook:    POST {url}/api/v1/events/webhook\n"
        f"  HTTP port:  {settings.port}\n"
        f"  Syslog:     UDP {settings.syslog_udp_port}, TCP {settings.syslog_tcp_port}{tls}\n"
        f"  SNMP traps: UDP {settings.snmp_trap_port} (communities: {', '.join(settings.snmp_communities)})\n"
        f"  Database:   {database_display(settings.database_url)}\n"
        f"  Broker:     {'RabbitMQ' if settings.rabbitmq_url else 'in-process (not durable)'}\n"
        f"  Admin key:  {key}\n"
        f"Try:\n"
        f"  curl -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\\n"
        f'       -d \'{{"source":"curl","severity":"high","host":"web-01","title":"CPU high"}}\' \\\n'
        f"       {url}/api/v1/events/webhook\n"
        f"  curl -H 'Authorization: Bearer {key}' {url}/api/v1/events",
        flush=True,
    )
    stop = Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(sig, stop.set)
    stop.wait()
    logger.info("Stopping: no new requests; storing what was accepted.")
    server.stop(timeout=5)
    for receiver in receivers:
        receiver.stop()
    sweeper.kill()
    gevent.killall(watchers)
    outbox.stop(runner=publisher)
    for queue in sorted(broker.get_declared_queues()):
        try:
            broker.join(queue, timeout=DRAIN_TIMEOUT_S * 1000)
        except Exception:  # noqa: BLE001 - report and keep stopping
            logger.warning("Queue %r did not drain in %d s.", queue, DRAIN_TIMEOUT_S)
    worker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

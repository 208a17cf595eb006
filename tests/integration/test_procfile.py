"""`honcho start` runs the Procfile on RabbitMQ and PostgreSQL: release, web, receivers and workers."""

from __future__ import annotations

import re
import socket
import subprocess
import time
import uuid

from tests import services
from tests.http import request
from tests.processes import BIN, Process, free_port, wait_for, wait_http


def test_honcho_start_runs_every_process_type_of_the_procfile(pg_url, rabbitmq_url, tmp_path):
    # Given the Procfile's environment: only the variables the README documents
    services.purge_queues(rabbitmq_url)
    port, udp, trap = free_port(), free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
    key = f"oc_test_{uuid.uuid4().hex}"
    env = {"DATABASE_URL": pg_url, "RABBITMQ_URL": rabbitmq_url, "PORT": str(port), "OPSCONDUCTOR_ADMIN_KEY": key,
           "SYSLOG_UDP_PORT": str(udp), "SYSLOG_TCP_PORT": str(free_port()), "SNMP_TRAP_PORT": str(trap),
           "SPOOL_DIR": str(tmp_path / "spool"), "PATH": f"{BIN}:/usr/bin:/bin"}  # fmt: skip
    # (as a Heroku-style platform deploys it: the release phase has migrated before any process starts; honcho
    # runs ``release`` beside the others, and on a fresh database the agents would race it)
    migrated = subprocess.run(
        [str(BIN / "opsconductor"), "migrate"], env=env, capture_output=True, text=True, timeout=120
    )
    assert migrated.returncode == 0, migrated.stderr
    honcho = Process("honcho", [str(BIN / "honcho"), "start"], env)
    base = f"http://127.0.0.1:{port}"
    try:
        # When it is up
        wait_http(f"{base}/readyz", process=honcho, timeout=60)
        wait_for(lambda: "SNMP traps listening" in honcho.output() and "Syslog listening" in honcho.output(), timeout=30,
                 message="the receivers")  # fmt: skip
        wait_for(lambda: "Database schema is up to date" in honcho.output(), message="the release step")
        # Then a webhook event and a syslog line travel the whole pipeline
        host = f"honcho-{uuid.uuid4().hex[:6]}"
        reply = request(
            "POST", f"{base}/api/v1/events/webhook", key=key, json={"source": "t", "host": host, "title": "via honcho"}
        )
        assert reply.status == 202
        subprocess.run(["logger", "--rfc3164", "-d", "-n", "127.0.0.1", "-P", str(udp), "-t", "app", "-s", f"hello from {host}"],
                       check=True, capture_output=True)  # fmt: skip

        def stored():
            page = request("GET", f"{base}/api/v1/events?limit=1000", key=key).json()
            kinds = {e["source_type"] for e in page["events"] if host in (e["host"] or "") + (e["description"] or "")}
            return kinds == {"webhook", "syslog"}

        wait_for(stored, timeout=30, message="both events stored")
        time.sleep(0.2)
    finally:
        honcho.stop()
    started = set(re.findall(r"(\w+)\.1 started", honcho.output()))
    assert {"release", "web", "syslog", "snmptrap", "normalize", "correlate", "worker"} <= started, honcho.output()[
        -2000:
    ]

"""``make run``'s command on a fresh directory: SQLite, in-process broker, workers in the same process."""

from __future__ import annotations

import re
import socket
import subprocess

from tests.http import request
from tests.processes import BIN, Process, free_port, wait_for, wait_http


def test_the_all_in_one_mode_accepts_an_event_and_shows_it_normalized(tmp_path):
    # Given `opsconductor run` started in an empty directory with nothing but a port
    port, syslog, trap = free_port(), free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
    env = {
        "PORT": str(port),
        "SYSLOG_UDP_PORT": str(syslog),
        "SYSLOG_TCP_PORT": str(free_port()),
        "SNMP_TRAP_PORT": str(trap),
    }
    app = Process("all-in-one", [str(BIN / "opsconductor"), "run"], env, cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/healthz", process=app)
        banner = wait_for(lambda: re.search(r"Admin key:\s+(oc_\S+)", app.output()), message="the banner")
        key = banner.group(1)
        assert f"http://127.0.0.1:{port}" in app.output()
        # When an event is posted with the printed key
        reply = request("POST", f"{base}/api/v1/events/webhook", key=key,
                        json={"source": "curl", "severity": "high", "host": "web-01", "title": "CPU high"})  # fmt: skip
        assert reply.status == 202, reply.body
        event_id = reply.json()["event_id"]
        # Then it is listed, normalized
        # And a syslog line and a trap come from real senders
        subprocess.run(["logger", "--rfc3164", "-d", "-n", "127.0.0.1", "-P", str(syslog), "-t", "kernel",
                        "Out of memory: Killed process 42 (java)"], check=True)  # fmt: skip
        subprocess.run(
            ["snmptrap", "-v", "2c", "-c", "public", f"127.0.0.1:{trap}", "", "1.3.6.1.6.3.1.1.5.1"], check=True
        )
        page = wait_for(
            lambda: (p := request("GET", f"{base}/api/v1/events", key=key).json())["total_count"] == 3 and p,
            message="the three events listed",
        )
    finally:
        app.stop()
    by_source = {e["source_type"]: e for e in page["events"]}
    assert by_source["webhook"]["id"] == event_id
    assert (by_source["webhook"]["severity"], by_source["webhook"]["host"]) == ("high", "web-01")
    assert (by_source["syslog"]["event_type"], by_source["syslog"]["severity"]) == ("oom_kill", "high")
    assert (by_source["snmp"]["event_type"], by_source["snmp"]["severity"]) == ("system_restart", "medium")
    # And the embedded database is a SQLite file under ./var, and the key is kept for the next run
    assert (tmp_path / "var" / "opsconductor.db").exists()
    assert (tmp_path / "var" / "admin.key").read_text().strip() == key
    assert "Traceback" not in app.output()

"""A real syslog receiver process reports its counters to PostgreSQL: they reach ``ops.receiver_stats`` and
``/metrics``, and the receiver keeps receiving while its database is away."""

from __future__ import annotations

import socket
import sys
import uuid

import pytest

from app.models import ReceiverStat
from tests.http import request
from tests.integration.test_receiver_hardening import closed_within, raw_syslog_rows
from tests.processes import Process, free_port, wait_for
from tests.proxy import TcpProxy

#: Seconds between reports in these tests (RECEIVER_REPORT_SECONDS), so a test sees several.
REPORT_S = 1


def start_syslog(env: dict[str, str], spool_dir: str, **overrides: str) -> tuple[Process, int]:
    """A ``python -m app.receivers.syslog`` process reporting every :data:`REPORT_S`; returns it and its TCP port."""
    tcp_port = free_port()
    env = dict(env, SYSLOG_UDP_PORT=str(free_port(socket.SOCK_DGRAM)), SYSLOG_TCP_PORT=str(tcp_port),
               SYSLOG_TLS_PORT=str(free_port()), SPOOL_DIR=spool_dir, RECEIVER_REPORT_SECONDS=str(REPORT_S),
               **overrides)  # fmt: skip
    proc = Process("syslog", [sys.executable, "-m", "app.receivers.syslog"], env)
    wait_for(lambda: "Syslog listening" in proc.output() or not proc.alive(), message="the syslog receiver")
    assert proc.alive(), proc.output()
    return proc, tcp_port


def refuse_one_connection(db, tcp_port: int) -> None:
    """With SYSLOG_MAX_CONNECTIONS=1: hold a served connection, then have a second one refused."""
    marker = uuid.uuid4().hex[:12]
    with socket.create_connection(("127.0.0.1", tcp_port)) as held:
        held.sendall(f"<14>Nov 23 10:00:00 cap-{marker} app: held\n".encode())
        wait_for(lambda: raw_syslog_rows(db, marker), message="the held connection's line stored")
        with socket.create_connection(("127.0.0.1", tcp_port)) as extra:
            assert closed_within(extra, 5) is not None


def row_of(proc: Process) -> ReceiverStat | None:
    return ReceiverStat.get_or_none(ReceiverStat.kind == "syslog", ReceiverStat.pid == proc.proc.pid)


def failed_reports(proc: Process) -> int:
    return proc.output().count("counters not reported")


def warned_reports(proc: Process) -> int:
    return sum(" WARNING " in line and "counters not reported" in line for line in proc.output().splitlines())


@pytest.fixture
def capped_receiver(stack, tmp_path):
    proc, tcp_port = start_syslog(stack.env, str(tmp_path / "spool"), SYSLOG_MAX_CONNECTIONS="1")
    yield proc, tcp_port
    proc.stop()
    assert "Traceback" not in proc.output(), proc.output()


def test_a_refused_connection_is_reported_in_the_table_and_on_metrics(stack, db, capped_receiver):
    proc, tcp_port = capped_receiver
    # Given a receiver whose one connection slot is taken
    # When a second connection is refused
    refuse_one_connection(db, tcp_port)

    # Then its process's row counts the refusal and the line it accepted
    def refused_row():
        row = row_of(proc)
        return row if row and row.counters["syslog"]["connections_refused"] == 1 else None

    row = wait_for(refused_row, message="the refusal in ops.receiver_stats")
    assert row.counters["outbox"]["received"] == 1 and row.hostname == socket.gethostname()

    # And /metrics exports it as a drop with the reason connection_cap
    series = (
        f'opsconductor_receiver_dropped_total{{host="{row.hostname}",kind="syslog",pid="{proc.proc.pid}",'
        f'reason="connection_cap"}} 1.0'
    )
    wait_for(lambda: series in request("GET", f"{stack.base}/metrics").body.decode(), message="the drop on /metrics")


def test_the_receiver_keeps_receiving_while_its_database_is_down_and_reports_again_when_it_is_back(
    stack, db, pg_url, tmp_path
):
    # Given a receiver whose database is reached through a proxy that is down (the pipeline's workers are not)
    proxy = TcpProxy.to(pg_url, 5432)
    proxy.down()
    env = dict(stack.env, DATABASE_URL=proxy.url(pg_url), LOG_LEVEL="DEBUG")  # DEBUG: the failures not warned about
    proc, tcp_port = start_syslog(env, str(tmp_path / "spool"))
    try:
        wait_for(lambda: "the database is unavailable" in proc.output(), message="a failed report")

        # When lines arrive while reports keep failing
        marker = uuid.uuid4().hex[:12]
        with socket.create_connection(("127.0.0.1", tcp_port)) as conn:
            for i in range(3):
                conn.sendall(f"<14>Nov 23 10:00:00 dbdown-{marker} app: line {i}\n".encode())
                wait_for(lambda i=i: len(raw_syslog_rows(db, marker)) == i + 1, message=f"line {i} stored")
        wait_for(lambda: failed_reports(proc) >= 3, message="three failed reports")

        # Then every line was received and stored, the process lives, no report reached the table,
        # and the outage was warned about once, not once a report
        assert proc.alive() and row_of(proc) is None
        assert warned_reports(proc) == 1, proc.output()[-3000:]

        # When the database is reachable again
        proxy.up()

        # Then the next report writes the row, with all three lines, and says so
        row = wait_for(lambda: row_of(proc), message="the report after recovery")
        assert row.counters["outbox"]["received"] == 3
        assert "counters reported to the database again" in proc.output()
    finally:
        proc.stop()
        proxy.close()
    assert "Traceback" not in proc.output(), proc.output()

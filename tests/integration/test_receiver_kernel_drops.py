"""What the kernel drops on a receiver's UDP socket is counted, and what the receiver holds is reported:
real receiver processes, real net-snmp ``snmptrap`` and util-linux ``logger`` senders, the kernel's own buffers."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys

import pytest

from app.models import ReceiverStat
from tests import services
from tests.http import request
from tests.processes import Process, free_port, wait_for

#: A receive buffer so small (the kernel's floor is near it) that a few datagrams fill it.
TINY_RCVBUF = "4096"
#: Traps sent while the receiver is stopped: far more than :data:`TINY_RCVBUF` holds.
BURST = 40


def need(program: str, package: str) -> None:
    if not shutil.which(program):
        if services.under_ci():
            pytest.fail(f"{program} is needed (Debian package {package})", pytrace=False)
        pytest.skip(f"{program} is not installed")


def start_traps(env: dict[str, str], spool_dir: str, *, prefix: tuple[str, ...] = (), **overrides: str):
    port = free_port(socket.SOCK_DGRAM)
    env = dict(env, SNMP_TRAP_PORT=str(port), SPOOL_DIR=spool_dir, RECEIVER_REPORT_SECONDS="1", **overrides)
    proc = Process("snmptrap", [*prefix, sys.executable, "-m", "app.receivers.snmp"], env)
    wait_for(lambda: "SNMP traps listening" in proc.output() or not proc.alive(), message="the trap receiver")
    assert proc.alive(), proc.output()
    return proc, port


def snmptrap(port: int, i: int) -> None:
    r = subprocess.run(
        ["snmptrap", "-v", "2c", "-c", "public", f"127.0.0.1:{port}", "", "1.3.6.1.6.3.1.1.5.3",
         "1.3.6.1.2.1.2.2.1.1.7", "i", str(i)],
        capture_output=True, text=True, timeout=20, env={"MIBS": "", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr


def row_of(proc: Process, kind: str) -> ReceiverStat | None:
    return ReceiverStat.get_or_none(ReceiverStat.kind == kind, ReceiverStat.pid == proc.proc.pid)


def test_traps_the_kernel_drops_while_the_receiver_is_stalled_are_counted_and_exported(stack, db, tmp_path):
    need("snmptrap", "snmp")
    # Given a trap receiver with a tiny receive buffer, stalled (SIGSTOP) as a busy process would be
    proc, port = start_traps(stack.env, str(tmp_path / "spool"), RECEIVER_RCVBUF_BYTES=TINY_RCVBUF)
    try:
        os.kill(proc.proc.pid, signal.SIGSTOP)

        # When a burst of traps arrives from net-snmp while it cannot read, and it then resumes
        for i in range(BURST):
            snmptrap(port, i)
        os.kill(proc.proc.pid, signal.SIGCONT)

        # Then every trap is either accepted or counted as dropped by the kernel, and most were dropped
        def settled():
            row = row_of(proc, "snmptrap")
            if row is None or "kernel_drops" not in row.counters.get("snmp", {}):
                return None
            snmp = row.counters["snmp"]
            return row if snmp["accepted"] + snmp["kernel_drops"] == BURST else None

        row = wait_for(settled, message="accepted + kernel drops == traps sent")
        assert row.counters["snmp"]["kernel_drops"] >= BURST // 2, row.counters
        assert row.counters["outbox"]["received"] == row.counters["snmp"]["accepted"]

        # And /metrics exports the drops with the reason kernel_buffer_full
        series = (
            f'opsconductor_receiver_dropped_total{{host="{row.hostname}",kind="snmptrap",pid="{proc.proc.pid}",'
            f'reason="kernel_buffer_full"}} {float(row.counters["snmp"]["kernel_drops"])}'
        )
        wait_for(lambda: series in request("GET", f"{stack.base}/metrics").body.decode(), message="drops on /metrics")
    finally:
        os.kill(proc.proc.pid, signal.SIGCONT)
        proc.stop()
    assert "Traceback" not in proc.output(), proc.output()


def test_a_syslog_receiver_reports_its_memory_its_buffers_and_the_socket_buffer_it_got(stack, db, tmp_path):
    need("logger", "bsdutils")
    # Given a syslog receiver with the default receive buffer
    udp = free_port(socket.SOCK_DGRAM)
    env = dict(stack.env, SYSLOG_UDP_PORT=str(udp), SYSLOG_TCP_PORT=str(free_port()), SYSLOG_TLS_PORT=str(free_port()),
               SPOOL_DIR=str(tmp_path / "spool"), RECEIVER_REPORT_SECONDS="1")  # fmt: skip
    proc = Process("syslog", [sys.executable, "-m", "app.receivers.syslog"], env)
    try:
        wait_for(lambda: "Syslog listening" in proc.output() or not proc.alive(), message="the syslog receiver")

        # When logger sends it a line
        r = subprocess.run(["logger", "-d", "-n", "127.0.0.1", "-P", str(udp), "-t", "memtest", "hello"],
                           capture_output=True, text=True, timeout=10)  # fmt: skip
        assert r.returncode == 0, r.stderr

        # Then its report holds the line, no kernel drop, its resident memory, its bounded buffer and socket buffer
        row = wait_for(lambda: (x := row_of(proc, "syslog")) and x.counters["outbox"]["received"] == 1 and x,
                       message="the line in the report")  # fmt: skip
        assert row.counters["syslog"]["kernel_drops"] == 0
        assert 20 << 20 < row.counters["process"]["rss_bytes"] < 250 << 20
        assert row.counters["outbox"]["buffer_limit"] > 0 and row.counters["outbox"]["buffered"] == 0
        # root here: SO_RCVBUFFORCE grants the whole default (the kernel reports it doubled)
        assert row.counters["syslog"]["rcvbuf_bytes"] == 2 * 16 * 1024 * 1024

        # And /metrics exports them as gauges of the process
        def exported():
            text = request("GET", f"{stack.base}/metrics").body.decode()
            labels = f'{{host="{row.hostname}",kind="syslog",pid="{proc.proc.pid}"}}'
            return all(
                f"{name}{labels}" in text
                for name in ("opsconductor_receiver_resident_memory_bytes", "opsconductor_receiver_buffered",
                             "opsconductor_receiver_buffer_limit", "opsconductor_receiver_socket_receive_buffer_bytes")
            )  # fmt: skip

        wait_for(exported, message="the gauges on /metrics")
    finally:
        proc.stop()
    assert "Traceback" not in proc.output(), proc.output()


def test_a_receive_buffer_the_kernel_caps_is_warned_about_with_the_sysctl_to_raise(stack, db, tmp_path):
    need("snmptrap", "snmp")
    need("setpriv", "util-linux")
    with open("/proc/sys/net/core/rmem_max") as f:
        rmem_max = int(f.read())
    # Given a receiver without CAP_NET_ADMIN (so SO_RCVBUFFORCE is refused) asking for twice rmem_max
    drop_cap = ("setpriv", "--bounding-set=-net_admin", "--inh-caps=-net_admin")
    asked = str(2 * rmem_max)
    # When it starts
    proc, port = start_traps(stack.env, str(tmp_path / "spool"), prefix=drop_cap, RECEIVER_RCVBUF_BYTES=asked)
    try:
        # Then it warns, naming what it got, what it asked and the sysctl that would grant it
        out = proc.output()
        assert "WARNING" in out and f"got a receive buffer of {rmem_max} bytes, not the {asked} asked for" in out
        assert f"sysctl -w net.core.rmem_max={asked}" in out
        # And it receives with the buffer it got, which its report shows
        snmptrap(port, 1)
        row = wait_for(lambda: (x := row_of(proc, "snmptrap")) and x.counters["snmp"]["accepted"] == 1 and x,
                       message="the trap in the report")  # fmt: skip
        assert row.counters["snmp"]["rcvbuf_bytes"] == 2 * rmem_max
    finally:
        proc.stop()
    assert "Traceback" not in proc.output(), proc.output()

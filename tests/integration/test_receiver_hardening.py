"""What a sender on the network can make the receivers keep, cut, log or hold — over real sockets and processes.

Whole 64 KiB datagrams (syslog and SNMP), a cap on TCP/TLS connections, a TLS handshake deadline and an
idle timeout, SNMPv3 engine ids learned only from authenticated traps, short and rare log lines about
garbage, and a ``make run`` banner without the database password.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest
from pysnmp.proto.api import v2c

from tests import services
from tests.http import request
from tests.integration.test_syslog_receiver import tls_files  # noqa: F401 - a fixture: a self-signed certificate
from tests.processes import BIN, Process, free_port, wait_for, wait_http

#: Short limits, so the tests see them act.
MAX_CONNECTIONS, IDLE_TIMEOUT_S, HANDSHAKE_TIMEOUT_S = 5, 3, 1
USERS = "alice:SHA:authpass123:AES:privpass123"


@pytest.fixture(scope="module")
def syslog_receiver(stack, tls_files, tmp_path_factory):  # noqa: F811 - tls_files is the imported fixture
    ports = {
        "SYSLOG_UDP_PORT": free_port(socket.SOCK_DGRAM),
        "SYSLOG_TCP_PORT": free_port(),
        "SYSLOG_TLS_PORT": free_port(),
    }
    env = dict(
        stack.env,
        **{k: str(v) for k, v in ports.items()},
        SYSLOG_TLS_CERT=tls_files[0],
        SYSLOG_TLS_KEY=tls_files[1],
        SYSLOG_MAX_CONNECTIONS=str(MAX_CONNECTIONS),
        SYSLOG_IDLE_TIMEOUT_SECONDS=str(IDLE_TIMEOUT_S),
        SYSLOG_TLS_HANDSHAKE_TIMEOUT_SECONDS=str(HANDSHAKE_TIMEOUT_S),
        SPOOL_DIR=str(tmp_path_factory.mktemp("spool")),
    )
    proc = Process("syslog", [sys.executable, "-m", "app.receivers.syslog"], env)
    wait_for(lambda: "Syslog listening" in proc.output() or not proc.alive(), message="the syslog receiver")
    assert proc.alive(), proc.output()
    yield ports, proc
    proc.stop()
    assert "Traceback" not in proc.output(), proc.output()


@pytest.fixture(scope="module")
def trap_receiver(stack, tmp_path_factory):
    if not shutil.which("snmptrap"):
        if services.under_ci():
            pytest.fail("net-snmp's snmptrap is needed (Debian package snmp)", pytrace=False)
        pytest.skip("snmptrap is not installed")
    port = free_port(socket.SOCK_DGRAM)
    spool = tmp_path_factory.mktemp("spool")
    env = dict(
        stack.env, SNMP_TRAP_PORT=str(port), SNMP_COMMUNITIES="public", SNMP_V3_USERS=USERS, SPOOL_DIR=str(spool)
    )
    proc = Process("snmptrap", [sys.executable, "-m", "app.receivers.snmp"], env)
    wait_for(lambda: "SNMP traps listening" in proc.output() or not proc.alive(), message="the trap receiver")
    assert proc.alive(), proc.output()
    yield port, proc, spool / "snmp-engine-ids.json"
    proc.stop()
    assert "Traceback" not in proc.output(), proc.output()


def raw_syslog_rows(db, marker: str) -> list[str]:
    cursor = db.execute_sql(
        "SELECT raw_data FROM events.raw_events WHERE source_type = 'syslog' AND raw_data::text LIKE %s",
        (f"%{marker}%",),
    )
    return [row[0] if isinstance(row[0], str) else json.loads(row[0]) for row in cursor.fetchall()]


def find_trap(stack, marker: str, *, timeout: float = 20.0) -> dict:
    def get():
        page = request("GET", f"{stack.base}/api/v1/events?source_type=snmp&limit=1000", key=stack.viewer).json()
        hits = [e for e in page["events"] if marker in json.dumps(e["metadata"].get("varbinds"))]
        return hits[0] if hits else None

    return wait_for(get, timeout=timeout, message=f"a trap with {marker!r}")


def if_index(marker: str) -> int:
    """A unique interface index per trap: equal traps within the de-duplication window fold into one event."""
    return int(marker[:6], 16)


def closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the peer closed ``sock`` (EOF or reset), or None when it is still open after ``seconds``."""
    started = time.monotonic()
    sock.settimeout(seconds)
    try:
        data = sock.recv(1)
    except TimeoutError:
        return None
    except ConnectionResetError:
        data = b""
    assert data == b"", data
    return time.monotonic() - started


# -- datagrams -----------------------------------------------------------------------------------


def test_a_20_kib_syslog_datagram_is_stored_whole(stack, syslog_receiver, db):
    ports, _ = syslog_receiver
    marker = uuid.uuid4().hex[:12]
    # Given a syslog line of 20 KiB, longer than gevent's 8 KiB read
    line = f"<13>Nov 23 10:00:00 big app: {marker} ".encode() + b"x" * 20_000 + f" end-{marker}".encode()
    assert len(line) > 20_000
    # When it is sent as one UDP datagram
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(line, ("127.0.0.1", ports["SYSLOG_UDP_PORT"]))
    # Then the stored raw row holds all of it, up to its last byte
    [raw] = wait_for(lambda: raw_syslog_rows(db, marker), timeout=20, message="the raw row")
    assert raw.encode() == line


def test_a_12_kib_snmp_trap_arrives_whole(stack, trap_receiver):
    port, _, _ = trap_receiver
    marker = uuid.uuid4().hex[:12]
    # Given a v2c trap whose sysName.0 is 12 KiB, built with pysnmp's message API
    big = marker + "y" * 12_000 + f"end-{marker}"
    pdu = v2c.TrapPDU()
    v2c.apiTrapPDU.set_defaults(pdu)
    v2c.apiTrapPDU.set_varbinds(
        pdu,
        [
            ((1, 3, 6, 1, 2, 1, 1, 3, 0), v2c.TimeTicks(5)),
            ((1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0), v2c.ObjectIdentifier((1, 3, 6, 1, 6, 3, 1, 1, 5, 1))),
            ((1, 3, 6, 1, 2, 1, 1, 5, 0), v2c.OctetString(big)),
            ((1, 3, 6, 1, 2, 1, 2, 2, 1, 1, if_index(marker)), v2c.Integer(if_index(marker))),
        ],
    )
    message = v2c.Message()
    v2c.apiMessage.set_defaults(message)
    v2c.apiMessage.set_community(message, "public")
    v2c.apiMessage.set_pdu(message, pdu)
    from pyasn1.codec.ber import encoder

    datagram = encoder.encode(message)
    assert len(datagram) > 12_000
    # When it is sent as one datagram
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(datagram, ("127.0.0.1", port))
    # Then the event carries the whole value
    event = find_trap(stack, f"end-{marker}")
    assert big in json.dumps(event["metadata"]["varbinds"])


def test_garbage_datagrams_are_counted_but_logged_once_and_short(stack, trap_receiver):
    port, proc, _ = trap_receiver
    # Given a 20-byte v1 datagram whose PDU is garbage (pyasn1's error about it is ~46 KB long)
    garbage = b"\x30\x12\x02\x01\x01\x04\x06public\xa4\x05\x02\x01\x01\x30\x00"
    before = proc.output().count("undecodable")
    # When it arrives 200 times
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _ in range(200):
            s.sendto(garbage, ("127.0.0.1", port))
    # Then a good trap sent after them arrives (they were all read) ...
    marker = uuid.uuid4().hex[:12]
    index = str(if_index(marker))
    subprocess.run(["snmptrap", "-v", "2c", "-c", "public", f"127.0.0.1:{port}", "", "1.3.6.1.6.3.1.1.5.1",
                    "1.3.6.1.2.1.1.5.0", "s", marker, f"1.3.6.1.2.1.2.2.1.1.{index}", "i", index],
                   check=True, timeout=20, env={"MIBS": "", "PATH": "/usr/bin:/bin"})  # fmt: skip
    find_trap(stack, marker)
    # ... and the log got at most one short line about them
    lines = [line for line in proc.output().splitlines() if "undecodable" in line]
    assert len(lines) - before <= 1
    assert all(len(line) < 500 for line in lines), max(len(line) for line in lines)


# -- SNMPv3 engine ids ---------------------------------------------------------------------------


def snmptrap_v3(port: int, engine_id: str, auth_key: str, marker: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["snmptrap", "-v", "3", "-e", engine_id, "-u", "alice", "-a", "SHA", "-A", auth_key, "-x", "AES",
         "-X", "privpass123", "-l", "authPriv", f"127.0.0.1:{port}", "", "1.3.6.1.6.3.1.1.5.3",
         "1.3.6.1.2.1.1.5.0", "s", marker, f"1.3.6.1.2.1.2.2.1.1.{if_index(marker)}", "i", str(if_index(marker))],
        capture_output=True, text=True, timeout=20, env={"MIBS": "", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip


def test_forged_v3_traps_with_random_engine_ids_are_not_learned_and_a_real_one_still_arrives(stack, trap_receiver):
    port, proc, state = trap_receiver
    # Given traps for a configured user from 30 random engine ids, with a wrong authentication key
    forged = [uuid.uuid4().hex[:16] for _ in range(30)]
    markers = []
    for engine_id in forged:
        markers.append(uuid.uuid4().hex[:12])
        assert snmptrap_v3(port, f"0x80{engine_id}", "not-the-password", markers[-1]).returncode == 0
    # When a genuine authPriv trap comes from another new engine id
    genuine, marker = "80" + uuid.uuid4().hex[:16], uuid.uuid4().hex[:12]
    r = snmptrap_v3(port, f"0x{genuine}", "authpass123", marker)
    assert r.returncode == 0, r.stderr
    # Then it arrives, and only its engine id is learned and kept
    event = find_trap(stack, marker)
    assert (event["metadata"]["version"], event["metadata"]["user"]) == ("v3", "alice")
    assert json.loads(state.read_text()) == [[genuine, "alice"]]
    page = request("GET", f"{stack.base}/api/v1/events?source_type=snmp&limit=1000", key=stack.viewer).json()
    assert not any(m in json.dumps([e["metadata"] for e in page["events"]]) for m in markers)
    # ... and the forged ones were logged rarely (rate-limited), not once each
    assert proc.output().count("Dropped an SNMPv3 message") < 5


# -- TCP and TLS connections -----------------------------------------------------------------------


def test_a_silent_tls_client_is_dropped_after_the_handshake_timeout(stack, syslog_receiver):
    ports, proc = syslog_receiver
    # Given a client that connects to the TLS port and never says hello
    with socket.create_connection(("127.0.0.1", ports["SYSLOG_TLS_PORT"])) as silent:
        # Then the receiver closes it after the handshake deadline (1 s), not never
        elapsed = closed_within(silent, 15)
    assert elapsed is not None, "the silent TLS client is still connected after 15 s"
    assert elapsed >= HANDSHAKE_TIMEOUT_S * 0.8
    assert "during the handshake" in proc.output()


def test_a_tls_client_still_delivers_and_is_closed_when_idle(stack, syslog_receiver, tls_files):  # noqa: F811
    ports, _ = syslog_receiver
    marker = uuid.uuid4().hex[:12]
    context = ssl.create_default_context(cafile=tls_files[0])
    msg = f"<11>1 2026-11-23T10:00:00Z tls-idle app - - - hello {marker}".encode()
    with (
        socket.create_connection(("127.0.0.1", ports["SYSLOG_TLS_PORT"])) as raw,
        context.wrap_socket(raw, server_side=False, server_hostname="127.0.0.1") as tls,
    ):
        # Given a TLS client that finished its handshake, sent one frame and went quiet
        tls.sendall(b"%d %s" % (len(msg), msg))
        # Then the frame is stored, and the connection closed after the idle timeout
        started = time.monotonic()
        tls.settimeout(15)
        try:
            assert tls.recv(1) == b""
        except (ConnectionResetError, ssl.SSLError):
            pass
        elapsed = time.monotonic() - started
    assert IDLE_TIMEOUT_S * 0.8 <= elapsed < 15
    page = wait_for(
        lambda: (
            (p := request("GET", f"{stack.base}/api/v1/events?host=tls-idle&limit=100", key=stack.viewer).json())
            and any(marker in (e["description"] or "") for e in p["events"])
        ),
        message="the TLS frame stored",
    )
    assert page


def test_a_connection_over_the_cap_is_closed_at_once_and_a_freed_slot_is_usable(stack, syslog_receiver):
    ports, proc = syslog_receiver
    marker = uuid.uuid4().hex[:12]
    address = ("127.0.0.1", ports["SYSLOG_TCP_PORT"])
    # Given as many open TCP connections as the cap allows (5), each having sent a line
    held = [socket.create_connection(address) for _ in range(MAX_CONNECTIONS)]
    try:
        for i, conn in enumerate(held):
            conn.sendall(f"<14>Nov 23 10:00:00 cap-{marker} app: held {i}\n".encode())
        time.sleep(0.3)
        # When one more connects
        with socket.create_connection(address) as extra:
            # Then it is closed at once (well before the idle timeout), and the refusal is logged
            elapsed = closed_within(extra, IDLE_TIMEOUT_S - 1)
        assert elapsed is not None and elapsed < 1.5, elapsed
        assert "Refused a syslog connection" in proc.output()
        # When one held connection closes, a new one is served
        held.pop().close()
        time.sleep(0.3)
        with socket.create_connection(address) as late:
            late.sendall(f"<14>Nov 23 10:00:00 cap-{marker} app: late\n".encode())
    finally:
        for conn in held:
            conn.close()

    def stored():
        page = request("GET", f"{stack.base}/api/v1/events?host=cap-{marker}&limit=100", key=stack.viewer).json()
        return page["total_count"] == MAX_CONNECTIONS + 1 and page

    titles = {e["description"].rsplit(": ", 1)[-1] for e in wait_for(stored, message="six events")["events"]}
    assert "late" in titles


# -- make run ------------------------------------------------------------------------------------


def test_the_make_run_banner_masks_the_database_password(pg_url, tmp_path):
    # Given `opsconductor run` on PostgreSQL with a password in DATABASE_URL (trust auth ignores it)
    parts = urlsplit(pg_url)
    netloc = f"{parts.username or 'postgres'}:hunter2-not-for-logs@{parts.hostname}:{parts.port or 5432}"
    url = urlunsplit(parts._replace(netloc=netloc))
    port = free_port()
    env = {"PORT": str(port), "DATABASE_URL": url, "SYSLOG_UDP_PORT": str(free_port(socket.SOCK_DGRAM)),
           "SYSLOG_TCP_PORT": str(free_port()), "SNMP_TRAP_PORT": str(free_port(socket.SOCK_DGRAM))}  # fmt: skip
    app = Process("all-in-one", [str(BIN / "opsconductor"), "run"], env, cwd=tmp_path)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", process=app, timeout=60)
        banner = wait_for(lambda: re.search(r"Database:\s+(\S+)", app.output()), message="the banner")
    finally:
        app.stop()
    # Then the banner names the database with its password masked
    assert banner.group(1) == url.replace("hunter2-not-for-logs", "***")
    assert "hunter2" not in app.output()
    assert os.path.exists(tmp_path / "var" / "admin.key")

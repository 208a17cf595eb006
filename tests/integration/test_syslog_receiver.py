"""Real senders (util-linux logger, a Python TLS client) -> the syslog receiver -> RabbitMQ -> stored events."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import time
import uuid

import pytest

from tests.http import request
from tests.processes import Process, free_port, wait_for


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1, made with the cryptography package."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    d = tmp_path_factory.mktemp("tls")
    (d / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(d / "cert.pem"), str(d / "key.pem")


@pytest.fixture(scope="module")
def receiver(stack, tls_files, tmp_path_factory):
    ports = {
        "SYSLOG_UDP_PORT": free_port(socket.SOCK_DGRAM),
        "SYSLOG_TCP_PORT": free_port(),
        "SYSLOG_TLS_PORT": free_port(),
    }
    env = dict(stack.env, **{k: str(v) for k, v in ports.items()}, SYSLOG_TLS_CERT=tls_files[0], SYSLOG_TLS_KEY=tls_files[1],
               SPOOL_DIR=str(tmp_path_factory.mktemp("spool")))  # fmt: skip
    proc = Process("syslog", [sys.executable, "-m", "app.receivers.syslog"], env)
    wait_for(lambda: "Syslog listening" in proc.output() or not proc.alive(), message="the syslog receiver")
    assert proc.alive(), proc.output()
    yield ports, proc
    proc.stop()


def find(stack, marker: str, *, count: int = 1, timeout: float = 20.0) -> list[dict]:
    def get():
        page = request("GET", f"{stack.base}/api/v1/events?source_type=syslog&limit=1000", key=stack.viewer).json()
        hits = [e for e in page["events"] if marker in (e["description"] or "")]
        return hits if len(hits) >= count else None

    return wait_for(get, timeout=timeout, message=f"{count} syslog event(s) with {marker!r}")


def logger(*args: str) -> None:
    subprocess.run(["logger", *args], check=True, timeout=10)


def test_logger_rfc3164_over_udp_becomes_a_stored_event(stack, receiver):
    ports, _ = receiver
    marker = uuid.uuid4().hex[:10]
    logger("--rfc3164", "-d", "-n", "127.0.0.1", "-P", str(ports["SYSLOG_UDP_PORT"]), "-t", "sshd", "-p", "auth.warning",
           f"Failed password for alice from 192.0.2.7 port 4242 ssh2 {marker}")  # fmt: skip
    [event] = find(stack, marker)
    assert (event["service"], event["event_type"], event["severity"]) == ("sshd", "authentication_failure", "medium")
    assert event["metadata"]["source_ip"] == "192.0.2.7"
    assert event["metadata"]["format"] == "rfc3164" and event["source"] == "127.0.0.1"


def test_logger_rfc5424_over_tcp_with_both_framings(stack, receiver):
    ports, _ = receiver
    marker = uuid.uuid4().hex[:10]
    port = str(ports["SYSLOG_TCP_PORT"])
    logger("--rfc5424", "-T", "-n", "127.0.0.1", "-P", port, "-t", "app", "-p", "daemon.err", f"lf framed {marker}")
    logger("--rfc5424", "--octet-count", "-T", "-n", "127.0.0.1", "-P", port, "-t", "app", "-p", "daemon.crit",
           f"octet counted {marker}")  # fmt: skip
    events = {e["title"].split()[0]: e for e in find(stack, marker, count=2)}
    assert events["lf"]["severity"] == "high" and events["octet"]["severity"] == "critical"
    assert events["octet"]["metadata"]["format"] == "rfc5424"
    assert events["octet"]["metadata"]["structured_data"]["timeQuality"]["tzKnown"] == "1"


def test_a_tls_client_is_received_on_the_rfc5425_port(stack, receiver, tls_files):
    ports, _ = receiver
    marker = uuid.uuid4().hex[:10]
    context = ssl.create_default_context(cafile=tls_files[0])
    msg = f"<11>1 2026-11-23T10:00:00Z tls-host app - - - Out of disk space {marker}".encode()
    with (
        socket.create_connection(("127.0.0.1", ports["SYSLOG_TLS_PORT"])) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(b"%d %s" % (len(msg), msg))
    [event] = find(stack, marker)
    assert (event["host"], event["event_type"], event["severity"]) == ("tls-host", "disk_space_critical", "critical")


def test_a_slow_client_does_not_stall_others_and_oversize_frames_are_cut(stack, receiver):
    ports, proc = receiver
    marker = uuid.uuid4().hex[:10]
    # Given a client that sends half a frame and then nothing
    slow = socket.create_connection(("127.0.0.1", ports["SYSLOG_TCP_PORT"]))
    slow.sendall(b"<13>Nov 23 10:00:00 slow app: never fin")
    # When another client sends a 100 KiB line and a normal one
    with socket.create_connection(("127.0.0.1", ports["SYSLOG_TCP_PORT"])) as fast:
        fast.sendall(b"<13>Nov 23 10:00:00 big app: " + marker.encode() + b"x" * 100_000 + b"\n")
        fast.sendall(f"<13>Nov 23 10:00:00 fast app: after {marker}\n".encode())
    # Then both arrive, the big one cut to 64 KiB
    events = find(stack, marker, count=2)
    big = next(e for e in events if e["host"] == "big")
    assert len(big["description"]) < 64 * 1024
    slow.close()


def test_a_thousand_concurrent_tcp_connections_are_held(stack, receiver):
    ports, _ = receiver
    marker = uuid.uuid4().hex[:10]
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    conns = [socket.create_connection(("127.0.0.1", ports["SYSLOG_TCP_PORT"])) for _ in range(1000)]
    try:
        for i, c in enumerate(conns):
            c.sendall(f"<14>Nov 23 10:00:00 h-{marker} app: conn {i}\n".encode())
        time.sleep(0.5)
    finally:
        for c in conns:
            c.close()

    def stored():
        page = request("GET", f"{stack.base}/api/v1/events?host=h-{marker}&limit=1", key=stack.viewer).json()
        return page["total_count"] == 1000

    wait_for(stored, timeout=60, message="1000 events from 1000 connections")

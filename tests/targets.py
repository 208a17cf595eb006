"""Real servers that actions target in tests: an HTTP server and an SMTP sink, on ephemeral ports.

Both record what they receive, so tests assert on the bytes that arrived, not on calls.
"""

from __future__ import annotations

import email
import email.policy
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from tests.processes import free_port


class _Recorded:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.items: list[dict[str, Any]] = []
        #: Requests being answered right now, and the most there ever were at once.
        self.in_flight = 0
        self.max_in_flight = 0
        self.changed = threading.Condition(self.lock)

    def enter(self) -> None:
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.changed.notify_all()

    def hold(self, count: int, timeout_s: float) -> None:
        """Wait until ``count`` requests were in flight at once (or ``timeout_s`` passed)."""
        with self.changed:
            self.changed.wait_for(lambda: self.max_in_flight >= count, timeout=timeout_s)

    def leave(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def add(self, item: dict[str, Any]) -> None:
        with self.lock:
            self.items.append(item)

    def wait_for(self, n: int, timeout_s: float) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.items) >= n:
                    return list(self.items)
            time.sleep(0.02)
        raise AssertionError(f"expected {n} arrivals within {timeout_s} s, got {len(self.items)}")


class _Target:
    """A server's ``.url`` and what arrived: ``.received``, ``.wait_for(n, timeout_s)``."""

    def __init__(self, url: str, recorded: _Recorded) -> None:
        self.url, self._recorded = url, recorded

    @property
    def received(self) -> list[dict[str, Any]]:
        with self._recorded.lock:
            return list(self._recorded.items)

    def wait_for(self, n: int, timeout_s: float = 10.0) -> list[dict[str, Any]]:
        """Everything that arrived, once at least ``n`` things did; AssertionError after ``timeout_s``."""
        return self._recorded.wait_for(n, timeout_s)


class HttpTarget(_Target):
    """``.requests``: method, path, headers, json, at."""

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self.received

    @property
    def max_in_flight(self) -> int:
        """The most requests the server was answering at the same time."""
        return self._recorded.max_in_flight


@contextmanager
def http_target(
    responses: dict[str, tuple[Any, ...]] | None = None,
    *,
    delay_s: dict[str, float] | None = None,
    hold: dict[str, tuple[int, float]] | None = None,
) -> Iterator[HttpTarget]:
    """A real threaded HTTP server on 127.0.0.1 that records every request.

    Parameters:
      responses: Per path (query included): ``(status, payload)`` or ``(status, payload, headers)``;
        a str payload is sent as text/plain, anything else as JSON. Default: 200 ``{"ok": true, "path": …}``.
      delay_s: Seconds to wait before answering, per path prefix.
      hold: Per path prefix, ``(count, timeout_s)``: a request waits until ``count`` requests were
        in flight at once, or ``timeout_s`` passed — concurrency proven without racing a clock.
    """
    recorded = _Recorded()
    answers, delays, holds = responses or {}, delay_s or {}, hold or {}

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
            recorded.add(
                {
                    "method": self.command,
                    "path": self.path,
                    "headers": dict(self.headers),
                    "json": body,
                    "at": time.time(),
                }
            )
            recorded.enter()
            try:
                delay = next((d for prefix, d in delays.items() if self.path.startswith(prefix)), 0.0)
                time.sleep(delay)
                held = next((h for prefix, h in holds.items() if self.path.startswith(prefix)), None)
                if held is not None:
                    recorded.hold(*held)
            finally:
                recorded.leave()
            status, payload, *extra = answers.get(self.path, (200, {"ok": True, "path": self.path}))
            text = isinstance(payload, str)
            data = payload.encode() if text else json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8" if text else "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (extra[0] if extra else {}).items():
                    self.send_header(name, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (a timeout test): nothing to answer

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle  # noqa: N815 - http.server's naming

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield HttpTarget(f"http://127.0.0.1:{server.server_address[1]}", recorded)
    finally:
        server.shutdown()
        server.server_close()


class SmtpSink(_Target):
    """``.url`` (smtp://[user:password@]127.0.0.1:port); ``.messages``: mail_from, rcpt_tos, login, message;
    ``.logins``: every AUTH attempt (user, and whether the session was under TLS)."""

    def __init__(self, url: str, recorded: _Recorded, logins: list[dict[str, Any]]) -> None:
        super().__init__(url, recorded)
        self.logins = logins

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.received


@contextmanager
def smtp_sink(
    *, refuse: tuple[str, ...] = (), credentials: tuple[str, str] | None = None, starttls: Any = None
) -> Iterator[SmtpSink]:
    """A real SMTP server (aiosmtpd) on an ephemeral port that records every message it accepts.

    Parameters:
      refuse: Recipients answered with ``550`` (an SMTP refusal).
      credentials: ``(user, password)`` the server accepts (AUTH PLAIN/LOGIN; recorded as ``login``); the
        ``.url`` then carries them. Without ``starttls`` the server offers no STARTTLS and takes AUTH in clear.
      starttls: An ``ssl.SSLContext`` (server side): the server offers STARTTLS and takes AUTH only after it.
    """
    recorded = _Recorded()
    logins: list[dict[str, Any]] = []

    class Handler:
        async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
            if address in refuse:
                return "550 5.1.1 No such mailbox here"
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            login = session.auth_data.login.decode() if session.auth_data else None
            recorded.add(
                {
                    "mail_from": envelope.mail_from,
                    "rcpt_tos": list(envelope.rcpt_tos),
                    "login": login,
                    "message": message,
                }
            )
            return "250 Message accepted for delivery"

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        logins.append({"login": auth_data.login.decode(), "tls": session.ssl is not None})
        ok = credentials is not None and (auth_data.login.decode(), auth_data.password.decode()) == credentials
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    port = free_port()
    options: dict[str, Any] = {}
    if credentials:
        options = {"authenticator": authenticator, "auth_require_tls": starttls is not None}
    if starttls is not None:
        options["tls_context"] = starttls
    controller = Controller(Handler(), hostname="127.0.0.1", port=port, **options)
    controller.start()
    user = f"{quote(credentials[0])}:{quote(credentials[1])}@" if credentials else ""
    try:
        yield SmtpSink(f"smtp://{user}127.0.0.1:{port}", recorded, logins)
    finally:
        controller.stop()


def self_signed_tls(directory: Any) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 (cert.pem, key.pem in ``directory``), made with cryptography."""
    import datetime
    import ipaddress
    from pathlib import Path

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
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    d = Path(directory)
    (d / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(d / "cert.pem"), str(d / "key.pem")

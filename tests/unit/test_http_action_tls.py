"""HTTPS actions with the process's shared TLS settings: ``verify_tls`` still decides per request,
also when requests of both kinds run at once (a local HTTPS server with a self-signed certificate)."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app import actions
from app.config import Settings
from tests.targets import self_signed_tls


@pytest.fixture
def https_url(tmp_path) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    cert, key = self_signed_tls(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/check"
    finally:
        server.shutdown()
        server.server_close()


def _call(url: str, verify: bool) -> actions.Outcome:
    action = {"id": "a", "type": "http", "http": {"method": "GET", "url": url, "verify_tls": verify}}
    return actions.perform(actions.plan(action, {"event": {}}), settings=Settings(), timeout_s=10)


def test_verify_tls_decides_each_request_though_the_tls_settings_are_shared(https_url):
    # Given requests that verify the certificate and requests that do not, interleaved and concurrent
    kinds = [True, False] * 8
    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(lambda verify: _call(https_url, verify), kinds))
    # Then only the unverified ones reach the self-signed server, every time
    for verify, outcome in zip(kinds, outcomes, strict=True):
        if verify:
            assert not outcome.success and "CERTIFICATE_VERIFY_FAILED" in (outcome.error or ""), outcome
        else:
            assert outcome.success and outcome.data["status"] == 200, outcome.error

"""The syslog receiver: UDP, TCP (RFC 6587) and TLS (RFC 5425) gevent servers.

It only frames and enqueues: each frame becomes a raw item for the normalizer,
which parses RFC 3164 / RFC 5424 / CEF / LEEF. ``python -m app.receivers.syslog``
runs it as the ``syslog`` process type.
"""

from __future__ import annotations

if __name__ == "__main__":  # the process entry point patches before anything imports socket or ssl
    from gevent import monkey

    monkey.patch_all()

import logging
import socket
import ssl
import time
from typing import Any

from ..events.envelope import make_item
from ..ids import new_id
from .framing import MAX_FRAME, Framer
from .outbox import Outbox

logger = logging.getLogger(__name__)

#: Receive buffer asked for on the UDP socket, in bytes: absorbs bursts while a batch is published.
UDP_RCVBUF = 16 * 1024 * 1024
#: A TCP connection silent for this long is closed, in seconds.
IDLE_TIMEOUT_S = 900.0


def udp_socket(host: str, port: int, *, reuse_port: bool = True) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port and hasattr(socket, "SO_REUSEPORT"):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    for option in (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF):
        if option is None:
            continue
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, UDP_RCVBUF)
            break
        except OSError:
            continue
    sock.bind((host, port))
    return sock


def tcp_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if hasattr(socket, "SO_REUSEPORT"):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(4096)
    return sock


class SyslogReceiver:
    """UDP, TCP and (with a certificate) TLS servers feeding one :class:`Outbox`.

    Parameters:
      tls_cert, tls_key: PEM files; TLS listens only when both are given.
    """

    def __init__(
        self,
        *,
        outbox: Outbox,
        host: str = "0.0.0.0",
        udp_port: int,
        tcp_port: int,
        tls_port: int | None = None,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        max_frame: int = MAX_FRAME,
    ) -> None:
        self.outbox = outbox
        self.host = host
        self.udp_port, self.tcp_port, self.tls_port = udp_port, tcp_port, tls_port
        self.tls_cert, self.tls_key = tls_cert, tls_key
        self.max_frame = max_frame
        self.stats = {"udp_datagrams": 0, "tcp_frames": 0, "tls_frames": 0, "oversize": 0, "connections": 0,
                      "framing_errors": 0}  # fmt: skip
        self.servers: list[Any] = []

    def _put(self, frame: bytes, peer: str) -> None:
        # PERF: no parsing here; one dict per frame, published in batches by the outbox.
        try:
            text, encoding = frame.decode("utf-8"), None
        except UnicodeDecodeError:
            text, encoding = frame.decode("latin-1"), "latin-1"  # every byte survives JSON; the normalizer re-encodes
        item = make_item(id=new_id(), source_type="syslog", received_at=time.time(), payload=text, source=peer)
        if encoding:
            item["encoding"] = encoding
        self.outbox.put(item)

    def handle_datagram(self, data: bytes, address: tuple[str, int]) -> None:
        self.stats["udp_datagrams"] += 1
        if len(data) > self.max_frame:
            self.stats["oversize"] += 1
            data = data[: self.max_frame]
        self._put(data.rstrip(b"\n\r\x00"), address[0])

    def handle_stream(self, sock: socket.socket, address: tuple[str, int], *, kind: str = "tcp_frames") -> None:
        self.stats["connections"] += 1
        framer = Framer(max_frame=self.max_frame)
        peer = address[0]
        sock.settimeout(IDLE_TIMEOUT_S)
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                for frame in framer.feed(data):
                    self.stats[kind] += 1
                    self._put(frame, peer)
            for frame in framer.finish():
                self.stats[kind] += 1
                self._put(frame, peer)
        except ValueError as e:
            self.stats["framing_errors"] += 1
            logger.warning("Closing syslog connection from %s: %s", peer, e)
        except (OSError, ssl.SSLError) as e:
            logger.info("Syslog connection from %s ended: %s", peer, e)
        finally:
            self.stats["oversize"] += framer.oversize
            self.stats["connections"] -= 1
            sock.close()

    def handle_tls(self, sock: socket.socket, address: tuple[str, int]) -> None:
        self.handle_stream(sock, address, kind="tls_frames")

    def start(self) -> None:
        from gevent.server import DatagramServer, StreamServer

        # spawn=None: handle each datagram inline; a greenlet per datagram loses most of a burst.
        udp = DatagramServer(udp_socket(self.host, self.udp_port), handle=self.handle_datagram, spawn=None)
        tcp = StreamServer(tcp_socket(self.host, self.tcp_port), handle=self.handle_stream)
        self.servers = [udp, tcp]
        if self.tls_cert and self.tls_key and self.tls_port:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.tls_cert, self.tls_key)
            tls = StreamServer(tcp_socket(self.host, self.tls_port), handle=self.handle_tls, ssl_context=context)
            self.servers.append(tls)
        for server in self.servers:
            server.start()
        logger.info(
            "Syslog listening on UDP %d, TCP %d%s.", self.udp_port, self.tcp_port,
            f", TLS {self.tls_port}" if len(self.servers) == 3 else " (TLS off: SYSLOG_TLS_CERT/KEY unset)",
        )  # fmt: skip

    def stop(self) -> None:
        for server in self.servers:
            server.stop(timeout=5)


def main() -> int:
    from .process import serve

    return serve("syslog")


if __name__ == "__main__":
    raise SystemExit(main())

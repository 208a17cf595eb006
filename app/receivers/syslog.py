"""The syslog receiver: UDP, TCP (RFC 6587) and TLS (RFC 5425) gevent servers.

It only frames and enqueues: each frame becomes a raw item for the normalizer,
which parses RFC 3164 / RFC 5424 / CEF / LEEF. ``python -m app.receivers.syslog``
runs it as the ``syslog`` process type.

Anyone can connect, so what a sender can hold is bounded: a cap on concurrent
TCP/TLS connections (more are closed at once), a deadline for the TLS handshake
and an idle timeout. What is refused, cut or closed is counted in ``stats`` and
logged, rate-limited per peer.
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

from ..config import Settings
from ..events.envelope import make_item
from ..ids import new_id
from ..ratelimit import LogLimiter, shorten
from .framing import MAX_FRAME, Framer
from .outbox import Outbox
from .process import serve
from .sockets import UDP_RCVBUF, UdpListener, tcp_socket

logger = logging.getLogger(__name__)

#: Defaults of SYSLOG_MAX_CONNECTIONS, SYSLOG_IDLE_TIMEOUT_SECONDS and SYSLOG_TLS_HANDSHAKE_TIMEOUT_SECONDS.
MAX_CONNECTIONS, IDLE_TIMEOUT_S, TLS_HANDSHAKE_TIMEOUT_S = 2000, 300.0, 10.0


class SyslogReceiver:
    """UDP, TCP and (with a certificate) TLS servers feeding one :class:`Outbox`.

    Parameters:
      tls_cert, tls_key: PEM files; TLS listens only when both are given.
      max_frame: Longest frame kept whole, in bytes; longer ones are cut, counted and logged.
      max_connections: Concurrent TCP and TLS connections; more are closed at once.
      idle_timeout_s: A connection that sends nothing for this long is closed.
      tls_handshake_timeout_s: A TLS client that has not finished its handshake by then is dropped.
      rcvbuf_bytes: UDP receive buffer asked for (RECEIVER_RCVBUF_BYTES).
    """

    #: Names this receiver's counters (``ops.receiver_stats``, ``/metrics``).
    kind = "syslog"

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
        max_connections: int = MAX_CONNECTIONS,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
        tls_handshake_timeout_s: float = TLS_HANDSHAKE_TIMEOUT_S,
        rcvbuf_bytes: int = UDP_RCVBUF,
    ) -> None:
        self.outbox = outbox
        self.host = host
        self.udp_port, self.tcp_port, self.tls_port = udp_port, tcp_port, tls_port
        self.tls_cert, self.tls_key = tls_cert, tls_key
        self.max_frame = max_frame
        self.max_connections = max_connections
        self.idle_timeout_s, self.tls_handshake_timeout_s = idle_timeout_s, tls_handshake_timeout_s
        self.rcvbuf_bytes = rcvbuf_bytes
        #: The UDP socket with its kernel drops (set by :meth:`start`).
        self.udp: UdpListener | None = None
        self.stats = {"udp_datagrams": 0, "tcp_frames": 0, "tls_frames": 0, "oversize": 0, "connections": 0,
                      "framing_errors": 0, "connections_refused": 0, "connections_idle_closed": 0,
                      "tls_handshake_failures": 0}  # fmt: skip
        self.servers: list[Any] = []
        self._context: ssl.SSLContext | None = None
        self._log = LogLimiter(logger)

    @classmethod
    def from_settings(cls, settings: Settings, *, outbox: Outbox) -> SyslogReceiver:
        return cls(
            outbox=outbox,
            udp_port=settings.syslog_udp_port,
            tcp_port=settings.syslog_tcp_port,
            tls_port=settings.syslog_tls_port,
            tls_cert=settings.syslog_tls_cert,
            tls_key=settings.syslog_tls_key,
            max_connections=settings.syslog_max_connections,
            idle_timeout_s=settings.syslog_idle_timeout_s,
            tls_handshake_timeout_s=settings.syslog_tls_handshake_timeout_s,
            rcvbuf_bytes=settings.receiver_rcvbuf_bytes,
        )

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
            self._log.log(
                logging.WARNING,
                address[0],
                "Cut a %d-byte syslog datagram from %s to %d bytes.",
                len(data),
                address[0],
                self.max_frame,
            )
            data = data[: self.max_frame]
        self._put(data.rstrip(b"\n\r\x00"), address[0])

    def handle_stream(self, sock: socket.socket, address: tuple[str, int]) -> None:
        """One TCP connection (RFC 6587)."""
        self._serve(sock, address[0], tls=False)

    def handle_tls(self, sock: socket.socket, address: tuple[str, int]) -> None:
        """One TLS connection (RFC 5425): the handshake is done here, under its own deadline."""
        self._serve(sock, address[0], tls=True)

    def _serve(self, sock: Any, peer: str, *, tls: bool) -> None:
        if self.stats["connections"] >= self.max_connections:
            self.stats["connections_refused"] += 1
            self._log.log(
                logging.WARNING,
                peer,
                "Refused a syslog connection from %s: %d are open (SYSLOG_MAX_CONNECTIONS).",
                peer,
                self.max_connections,
            )
            sock.close()
            return
        self.stats["connections"] += 1
        try:
            if tls:
                sock = self._handshake(sock, peer)
            if sock is not None:
                self._read_frames(sock, peer, "tls_frames" if tls else "tcp_frames")
        finally:
            self.stats["connections"] -= 1
            if sock is not None:
                sock.close()

    def _handshake(self, sock: Any, peer: str) -> Any:
        """The TLS socket, or None (``sock`` closed) when the client did not finish the handshake in time."""
        assert self._context is not None
        sock.settimeout(self.tls_handshake_timeout_s)
        try:
            tls = self._context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            tls.do_handshake()
        except (OSError, ssl.SSLError) as e:  # socket.timeout is an OSError
            self.stats["tls_handshake_failures"] += 1
            self._log.log(
                logging.INFO, peer, "Dropped a TLS syslog client %s during the handshake: %s", peer, shorten(e)
            )
            sock.close()
            return None
        return tls

    def _read_frames(self, sock: Any, peer: str, kind: str) -> None:
        framer = Framer(max_frame=self.max_frame)
        sock.settimeout(self.idle_timeout_s)
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
            self._log.log(logging.WARNING, peer, "Closing syslog connection from %s: %s", peer, shorten(e))
        except TimeoutError:
            self.stats["connections_idle_closed"] += 1
            self._log.log(
                logging.INFO,
                peer,
                "Closing syslog connection from %s: nothing received in %g s.",
                peer,
                self.idle_timeout_s,
            )
        except (OSError, ssl.SSLError) as e:
            self._log.log(logging.INFO, peer, "Syslog connection from %s ended: %s", peer, shorten(e))
        finally:
            if framer.oversize:
                self.stats["oversize"] += framer.oversize
                self._log.log(
                    logging.WARNING,
                    peer,
                    "Cut %d syslog frames from %s to %d bytes.",
                    framer.oversize,
                    peer,
                    self.max_frame,
                )

    def start(self) -> None:
        from gevent.server import StreamServer

        from .datagram import DatagramServer

        # spawn=None: handle each datagram inline; a greenlet per datagram loses most of a burst.
        self.udp = UdpListener(self.host, self.udp_port, rcvbuf_bytes=self.rcvbuf_bytes, name="Syslog")
        udp = DatagramServer(self.udp.sock, handle=self.handle_datagram, spawn=None)
        tcp = StreamServer(tcp_socket(self.host, self.tcp_port), handle=self.handle_stream)
        self.servers = [udp, tcp]
        if self.tls_cert and self.tls_key and self.tls_port:
            self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self._context.load_cert_chain(self.tls_cert, self.tls_key)
            # No ssl_context on the server: gevent would handshake before handle_tls, with no deadline
            # and outside the connection cap; handle_tls does it under both.
            tls = StreamServer(tcp_socket(self.host, self.tls_port), handle=self.handle_tls)
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
    return serve("syslog", SyslogReceiver.from_settings)


if __name__ == "__main__":
    raise SystemExit(main())

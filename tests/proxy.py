"""A TCP proxy the tests can cut, to make PostgreSQL or RabbitMQ unreachable for the processes behind it."""

from __future__ import annotations

import socket
import threading
from urllib.parse import urlsplit, urlunsplit


class TcpProxy:
    """Forwards ``127.0.0.1:<port>`` to ``target``; while down it drops every connection and refuses new ones.

    Parameters:
      target_host, target_port: Where connections are forwarded to (PostgreSQL, RabbitMQ).
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._up = True
        self._closed = False
        threading.Thread(target=self._accept, daemon=True, name=f"proxy-{self.port}").start()

    @classmethod
    def to(cls, url: str, default_port: int) -> TcpProxy:
        parts = urlsplit(url)
        return cls(parts.hostname or "127.0.0.1", parts.port or default_port)

    def url(self, url: str) -> str:
        """``url`` with its host and port replaced by the proxy's."""
        parts = urlsplit(url)
        credentials = parts.netloc.rpartition("@")[0]
        netloc = f"{credentials}@127.0.0.1:{self.port}" if credentials else f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    @property
    def is_up(self) -> bool:
        return self._up

    def down(self, *, drop_open: bool = True) -> None:
        """Cut: every new connection is reset at once and, with ``drop_open``, every open one too (an outage).

        Without ``drop_open`` only new connections fail, as when a server refuses connections it
        cannot take: the connections already open (a consumer's) live on.
        """
        with self._lock:
            self._up = False
            if not drop_open:
                return
            doomed, self._sockets = self._sockets, set()
        for sock in doomed:
            # Wake the pump blocked in recv (SHUT_RD sends nothing); it closes both ends with a reset.
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
                sock.shutdown(socket.SHUT_RD)
            except OSError:
                pass

    def up(self) -> None:
        """Forward again (the outage ends)."""
        with self._lock:
            self._up = True

    def close(self) -> None:
        self._closed = True
        self.down()
        _close(self._listener)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._up:
                _close(client, reset=True)
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
                server.settimeout(None)
            except OSError:
                _close(client, reset=True)
                continue
            with self._lock:
                if not self._up:
                    _close(client, reset=True)
                    _close(server, reset=True)
                    continue
                self._sockets.update((client, server))
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._sockets.discard(source)
                self._sockets.discard(sink)
            _close(source)
            _close(sink)


#: SO_LINGER on, 0 s: close() sends RST rather than FIN, so the peer sees the connection fail, as when a server dies.
_RESET = b"\x01\x00\x00\x00\x00\x00\x00\x00"


def _close(sock: socket.socket, *, reset: bool = False) -> None:
    try:
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
        sock.close()
    except OSError:
        pass

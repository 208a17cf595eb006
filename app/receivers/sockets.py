"""The listening sockets of the receivers: UDP with a large receive buffer, TCP with a long backlog.

Both set ``SO_REUSEPORT`` where the kernel has it, so several receiver processes share a port.
"""

from __future__ import annotations

import socket

#: Receive buffer asked for on a UDP socket, in bytes: absorbs bursts while a batch is published.
UDP_RCVBUF = 16 * 1024 * 1024


def udp_socket(host: str, port: int, *, reuse_port: bool = True) -> socket.socket:
    """A UDP socket bound to ``host:port``, with the largest receive buffer the kernel grants up to :data:`UDP_RCVBUF`."""
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
    """A TCP socket listening on ``host:port``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if hasattr(socket, "SO_REUSEPORT"):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(4096)
    return sock

"""The listening sockets of the receivers: UDP with a sized receive buffer and its kernel drops, TCP with a long backlog.

Both set ``SO_REUSEPORT`` where the kernel has it, so several receiver processes share a port
(the kernel spreads datagrams and connections over them by the sender's address and port).

A UDP sender cannot retry, so what the kernel drops because the receive buffer is full is lost
for good. The buffer is asked for with ``SO_RCVBUFFORCE`` (granted to a process with
``CAP_NET_ADMIN``, e.g. root in a container) and else ``SO_RCVBUF``, which the kernel caps at
``net.core.rmem_max``: :class:`UdpListener` logs a warning naming the sysctl when it got less than it
asked for, and counts the socket's drops (the ``drops`` column of ``/proc/net/udp``, the kernel's
own per-socket counter) so they show in the counters and on ``/metrics``.
"""

from __future__ import annotations

import logging
import os
import socket
import sys

logger = logging.getLogger(__name__)

#: Default of RECEIVER_RCVBUF_BYTES: asked for per UDP socket. Linux doubles it for its bookkeeping and a
#: small datagram takes 0.8-2.3 KB of it, so 16 MiB hold ~1 s of 25,000 datagrams/s arriving while the
#: receiver is busy (a batch published, a pause of the process).
UDP_RCVBUF = 16 * 1024 * 1024

#: Linux's ``SO_RCVBUFFORCE`` (Python's socket module does not name it): ``SO_RCVBUF`` past rmem_max, with CAP_NET_ADMIN.
SO_RCVBUFFORCE: int | None = getattr(socket, "SO_RCVBUFFORCE", 33 if sys.platform.startswith("linux") else None)

#: Where the kernel lists UDP sockets with their inode and drop counter.
PROC_NET_UDP = ("/proc/net/udp", "/proc/net/udp6")
#: Where the kernel keeps the cap of ``SO_RCVBUF``.
PROC_RMEM_MAX = "/proc/sys/net/core/rmem_max"


def udp_socket(host: str, port: int, *, reuse_port: bool = True, rcvbuf_bytes: int = UDP_RCVBUF) -> socket.socket:
    """A UDP socket bound to ``host:port``, with the largest receive buffer the kernel grants up to ``rcvbuf_bytes``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port and hasattr(socket, "SO_REUSEPORT"):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    for option in (SO_RCVBUFFORCE, socket.SO_RCVBUF):
        if option is None:
            continue
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, rcvbuf_bytes)
            break
        except OSError:
            continue  # SO_RCVBUFFORCE needs CAP_NET_ADMIN; SO_RCVBUF is capped at rmem_max instead
    sock.bind((host, port))
    return sock


def rmem_max() -> int | None:
    """The kernel's cap on ``SO_RCVBUF`` (``net.core.rmem_max``) in bytes, or None where it cannot be read."""
    try:
        with open(PROC_RMEM_MAX) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def kernel_drops(inode: int) -> int | None:
    """Datagrams the kernel dropped for the UDP socket ``inode`` (receive buffer full), or None if not listed."""
    wanted = str(inode)
    for path in PROC_NET_UDP:
        try:
            with open(path) as f:
                next(f, None)  # the header
                for line in f:
                    fields = line.split()
                    # sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
                    if len(fields) >= 13 and fields[9] == wanted:
                        return int(fields[12])
        except (OSError, ValueError):
            continue
    return None


class UdpListener:
    """A receiver's UDP socket with what the kernel granted it and dropped for it.

    Parameters:
      host, port: Where to listen.
      rcvbuf_bytes: Receive buffer asked for (RECEIVER_RCVBUF_BYTES).
      name: What listens, for the log (``syslog``, ``SNMP traps``).
    """

    def __init__(self, host: str, port: int, *, rcvbuf_bytes: int = UDP_RCVBUF, name: str = "UDP") -> None:
        self.sock = udp_socket(host, port, rcvbuf_bytes=rcvbuf_bytes)
        self.port = self.sock.getsockname()[1]
        self.rcvbuf_bytes = rcvbuf_bytes
        #: What the kernel granted, as it reports it (twice what was set: its bookkeeping is included).
        self.granted_bytes = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        self.inode = os.fstat(self.sock.fileno()).st_ino
        self._last = 0
        if self.granted_bytes < 2 * rcvbuf_bytes:
            cap = rmem_max()
            logger.warning(
                "%s on UDP %d got a receive buffer of %d bytes, not the %d asked for (RECEIVER_RCVBUF_BYTES): the "
                "kernel caps it at net.core.rmem_max=%s. Bursts beyond it are dropped by the kernel (counted as "
                "kernel_buffer_full); run `sysctl -w net.core.rmem_max=%d` on the host, or give the process "
                "CAP_NET_ADMIN.", name, self.port, self.granted_bytes // 2, rcvbuf_bytes,
                cap if cap is not None else "?", rcvbuf_bytes,
            )  # fmt: skip

    def drops(self) -> int:
        """Datagrams the kernel dropped for this socket since it was opened (the last known count if unlisted)."""
        found = kernel_drops(self.inode)
        if found is not None:
            self._last = max(self._last, found)
        return self._last

    def counters(self) -> dict[str, int]:
        """``kernel_drops`` and ``rcvbuf_bytes`` (granted), for the receiver's counters."""
        return {"kernel_drops": self.drops(), "rcvbuf_bytes": self.granted_bytes}


def tcp_socket(host: str, port: int) -> socket.socket:
    """A TCP socket listening on ``host:port``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if hasattr(socket, "SO_REUSEPORT"):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(4096)
    return sock

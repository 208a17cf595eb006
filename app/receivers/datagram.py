"""A gevent datagram server that reads whole datagrams.

gevent's :class:`gevent.server.DatagramServer` reads 8 KiB and the kernel drops
the rest of a longer datagram without a word; syslog over UDP and SNMP both
allow up to 64 KiB. Import this module after gevent's monkey patching (the
receivers import it in ``start``).
"""

from __future__ import annotations

import errno
from typing import Any

from gevent.server import DatagramServer as _GeventDatagramServer

#: Bytes read per datagram: the largest UDP payload (65,507 bytes over IPv4) fits, so no read cuts one.
MAX_DATAGRAM = 65535


class DatagramServer(_GeventDatagramServer):
    """gevent's datagram server, reading up to :data:`MAX_DATAGRAM` bytes per datagram."""

    max_read = MAX_DATAGRAM

    def do_read(self) -> tuple[bytes, Any] | None:
        try:
            data, address = self._socket.recvfrom(self.max_read)
        except OSError as err:
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return None
            raise
        return data, address

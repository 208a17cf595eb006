"""The SNMP trap receiver: a gevent datagram server feeding :class:`app.snmp.engine.TrapEngine`.

Authentication (community allow-list, USM) happens here, because a trap that
fails it must not be stored; the decoded trap is enqueued raw and the
normalizer maps it to an event. ``python -m app.receivers.snmp`` runs it as the
``snmptrap`` process type; several processes may share the port (SO_REUSEPORT).
"""

from __future__ import annotations

if __name__ == "__main__":  # the process entry point patches before anything imports socket
    from gevent import monkey

    monkey.patch_all()

import logging
import os
import time
from typing import Any

from ..config import Settings
from ..events.envelope import make_item
from ..ids import new_id
from ..snmp.engine import TrapEngine, parse_v3_users
from .outbox import Outbox
from .process import serve
from .sockets import UDP_RCVBUF, UdpListener

logger = logging.getLogger(__name__)

#: Seconds between ticks of pysnmp's timer (USM cache expiry).
TICK_S = 0.5


class TrapReceiver:
    """Receives traps on UDP ``port`` and puts accepted ones into ``outbox``."""

    #: Names this receiver's counters (``ops.receiver_stats``, ``/metrics``): its engine's.
    kind = "snmp"

    def __init__(
        self, *, outbox: Outbox, engine_factory: Any, host: str = "0.0.0.0", port: int, rcvbuf_bytes: int = UDP_RCVBUF
    ) -> None:
        self.outbox = outbox
        self.host, self.port = host, port
        self.rcvbuf_bytes = rcvbuf_bytes
        #: The UDP socket with its kernel drops (set by :meth:`start`).
        self.udp: UdpListener | None = None
        self._engine_factory = engine_factory
        self.engine: TrapEngine | None = None
        self.server: Any = None
        self._ticker: Any = None

    @classmethod
    def from_settings(cls, settings: Settings, *, outbox: Outbox) -> TrapReceiver:
        users = parse_v3_users(settings.snmp_v3_users)
        state = os.path.join(settings.spool_dir, "snmp-engine-ids.json")
        os.makedirs(settings.spool_dir, exist_ok=True)

        def factory(send: Any) -> TrapEngine:
            return TrapEngine(communities=settings.snmp_communities, v3_users=users, send=send, state_file=state)

        return cls(
            outbox=outbox, engine_factory=factory, port=settings.snmp_trap_port,
            rcvbuf_bytes=settings.receiver_rcvbuf_bytes,
        )  # fmt: skip

    def handle(self, data: bytes, address: tuple[str, int]) -> None:
        assert self.engine is not None
        trap = self.engine.feed(data, address)
        if trap is not None:
            self.outbox.put(
                make_item(id=new_id(), source_type="snmp", received_at=time.time(), payload=trap, source=address[0])
            )

    def _tick(self) -> None:
        import gevent

        while True:
            gevent.sleep(TICK_S)
            if self.engine is not None:
                self.engine.tick()

    def start(self) -> None:
        import gevent

        from .datagram import DatagramServer

        self.udp = UdpListener(self.host, self.port, rcvbuf_bytes=self.rcvbuf_bytes, name="SNMP traps")
        sock = self.udp.sock
        self.engine = self._engine_factory(lambda data, addr: sock.sendto(data, addr))
        # spawn=None: decode inline, in arrival order; a greenlet per datagram loses bursts.
        self.server = DatagramServer(sock, handle=self.handle, spawn=None)
        self.server.start()
        self._ticker = gevent.spawn(self._tick)
        logger.info("SNMP traps listening on UDP %d.", self.port)

    def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.kill()
        if self.server is not None:
            self.server.stop(timeout=5)
        if self.engine is not None:
            logger.info("SNMP trap counts: %s", self.engine.stats)


def main() -> int:
    return serve("snmptrap", TrapReceiver.from_settings)


if __name__ == "__main__":
    raise SystemExit(main())

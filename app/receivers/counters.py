"""The receivers' counters in the database: each receiver process reports its own, the console and ``/metrics`` read all.

Counters live in the process that counts them (:class:`app.receivers.outbox.Outbox`,
:class:`app.receivers.syslog.SyslogReceiver`, :class:`app.snmp.engine.TrapEngine`); every
``RECEIVER_REPORT_SECONDS`` the process upserts them into ``ops.receiver_stats``
(:class:`app.receivers.reporter.Reporter`), one row per process. A process that misses
:data:`STALE_AFTER_REPORTS` reports is shown as stale (it died, hangs, or cannot reach the
database); rows not updated for :data:`FORGET_AFTER` are deleted by the next report of any receiver.

The functions here run inside a transaction (:func:`app.db.in_transaction`) and hold no state.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from peewee import EXCLUDED

from ..models import ReceiverStat

#: ``{component: {counter: n}}``: the outbox's counters under ``outbox``, each receiver's under its kind.
Counters = Mapping[str, Mapping[str, int]]

#: The counters that count input lost, cut or refused, by (component, counter), with the reason they name.
DROPS: dict[tuple[str, str], str] = {
    ("outbox", "dropped_full"): "buffer_full",  # memory buffer and disk spool both full
    ("syslog", "oversize"): "oversize",  # frames cut to the longest kept (the tail is lost)
    ("syslog", "connections_refused"): "connection_cap",  # over SYSLOG_MAX_CONNECTIONS
    ("syslog", "framing_errors"): "framing_error",  # connection closed on bad RFC 6587 framing
    ("syslog", "tls_handshake_failures"): "tls_handshake",  # client never finished its TLS handshake
    ("snmp", "rejected_community"): "bad_community",
    ("snmp", "rejected_auth"): "auth_failed",  # SNMPv3 unknown user, engine id or key
    ("snmp", "rejected_rate"): "rate_limited",  # unauthenticated SNMPv3 beyond the allowed rate
    ("snmp", "decode_errors"): "undecodable",
    # datagrams the kernel dropped on the UDP socket: its receive buffer was full (RECEIVER_RCVBUF_BYTES)
    ("syslog", "kernel_drops"): "kernel_buffer_full",
    ("snmp", "kernel_drops"): "kernel_buffer_full",
}

#: Reports a process may miss before it is shown as stale (and left out of totals and /metrics).
STALE_AFTER_REPORTS = 3

#: Rows of processes not heard from for this long are deleted (their processes are gone).
FORGET_AFTER = timedelta(days=1)


@dataclass(frozen=True, kw_only=True)
class Identity:
    """Who reports: one receiver process, for its whole life."""

    kind: str
    hostname: str
    pid: int
    started_at: datetime

    @classmethod
    def of_this_process(cls, kind: str, *, started_at: datetime) -> Identity:
        return cls(kind=kind, hostname=socket.gethostname(), pid=os.getpid(), started_at=started_at)

    @property
    def process(self) -> str:
        """``<hostname>:<pid>:<start in ms>``: a kernel that reuses a pid still makes a new row."""
        return f"{self.hostname}:{self.pid}:{int(self.started_at.timestamp() * 1000)}"


def drops(counters: Counters) -> dict[str, int]:
    """What ``counters`` lost, cut or refused, by reason (every reason of :data:`DROPS` the process has, even at 0)."""
    found: dict[str, int] = {}
    for (component, counter), reason in DROPS.items():
        if counter in counters.get(component, {}):
            found[reason] = found.get(reason, 0) + int(counters[component][counter])
    return found


def save(identity: Identity, counters: Counters, *, interval_s: float, at: datetime) -> int:
    """Upsert the row of ``identity`` with ``counters`` as of ``at``; delete rows idle for :data:`FORGET_AFTER`.

    Parameters:
      interval_s: Seconds until the next report, stored so readers know when this one is stale.

    Returns:
      The number of rows deleted as forgotten.
    """
    ReceiverStat.insert(
        process=identity.process, kind=identity.kind, hostname=identity.hostname, pid=identity.pid,
        started_at=identity.started_at, updated_at=at, interval_s=interval_s, counters=counters,
    ).on_conflict(
        conflict_target=[ReceiverStat.process],
        update={ReceiverStat.updated_at: EXCLUDED.updated_at, ReceiverStat.interval_s: EXCLUDED.interval_s,
                ReceiverStat.counters: EXCLUDED.counters},
    ).execute()  # fmt: skip
    return ReceiverStat.delete().where(ReceiverStat.updated_at < at - FORGET_AFTER).execute()


@dataclass(frozen=True, kw_only=True)
class Report:
    """One receiver process as last reported, read at ``at``."""

    kind: str
    hostname: str
    pid: int
    started_at: datetime
    updated_at: datetime
    interval_s: float
    counters: Counters
    #: Seconds since the last report.
    age_s: float
    #: Missed :data:`STALE_AFTER_REPORTS` reports: dead, hung, or cut off from the database.
    stale: bool
    drops: dict[str, int] = field(default_factory=dict)

    @property
    def dropped(self) -> int:
        return sum(self.drops.values())

    @property
    def accepted(self) -> int:
        """Items put into the outbox (frames, traps), on their way to the ``normalize`` queue."""
        return int(self.counters.get("outbox", {}).get("received", 0))

    @property
    def spooled(self) -> int:
        return int(self.counters.get("outbox", {}).get("spooled", 0))

    @property
    def memory(self) -> dict[str, int]:
        """What the process held when it reported (gauges; absent from reports of older versions), by name:
        ``rss_bytes``, ``buffered`` items and their ``buffer_limit``, ``spool_bytes``, and ``rcvbuf_bytes``
        (the UDP receive buffers the kernel granted, summed over the process's sockets)."""
        outbox = self.counters.get("outbox", {})
        found = {name: int(outbox[name]) for name in ("buffered", "buffer_limit", "spool_bytes") if name in outbox}
        if "rss_bytes" in self.counters.get("process", {}):
            found["rss_bytes"] = int(self.counters["process"]["rss_bytes"])
        rcvbufs = [int(c["rcvbuf_bytes"]) for c in self.counters.values() if "rcvbuf_bytes" in c]
        if rcvbufs:
            found["rcvbuf_bytes"] = sum(rcvbufs)
        return found


def read(*, at: datetime) -> list[Report]:
    """Every reported receiver process, ordered by kind, host and pid, with its staleness as of ``at``."""
    reports = []
    for row in ReceiverStat.select().order_by(ReceiverStat.kind, ReceiverStat.hostname, ReceiverStat.pid):
        age_s = max(0.0, (at - row.updated_at).total_seconds())
        reports.append(
            Report(kind=row.kind, hostname=row.hostname, pid=row.pid, started_at=row.started_at,
                   updated_at=row.updated_at, interval_s=row.interval_s, counters=row.counters or {}, age_s=age_s,
                   stale=age_s > STALE_AFTER_REPORTS * row.interval_s, drops=drops(row.counters or {}))
        )  # fmt: skip
    return reports


@dataclass
class Totals:
    """Sums over the live (not stale) processes."""

    processes: int = 0
    accepted: int = 0
    spooled: int = 0
    drops: dict[str, int] = field(default_factory=dict)

    @property
    def dropped(self) -> int:
        return sum(self.drops.values())


def totals(reports: Iterable[Report]) -> Totals:
    """What the live processes of ``reports`` accepted, spooled and dropped (by reason), together."""
    found = Totals()
    for report in reports:
        if report.stale:
            continue
        found.processes += 1
        found.accepted += report.accepted
        found.spooled += report.spooled
        for reason, n in report.drops.items():
            found.drops[reason] = found.drops.get(reason, 0) + n
    return found

"""Running a receiver as its own process: bootstrap, outbox, servers, graceful stop."""

from __future__ import annotations

import logging
import os
import resource
import signal
from collections.abc import Callable
from typing import Any

import dramatiq

from ..config import Settings
from ..publishing import publish_items
from .counters import Counters, drops
from .outbox import Outbox
from .reporter import Reporter
from .spool import Spool

logger = logging.getLogger(__name__)


def raise_file_limit() -> None:
    """Thousands of TCP connections need thousands of descriptors: take the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def make_outbox(settings: Settings, name: str, broker: dramatiq.Broker) -> Outbox:
    return Outbox(publish=lambda items: publish_items(broker, items), spool=Spool(settings.spool_dir, name))


#: Seconds between the counters a receiver logs (only when they changed).
STATS_EVERY_S = 60.0


def rss_bytes() -> int:
    """This process's resident memory now, in bytes (its peak where ``/proc`` is missing)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def counters_of(outbox: Outbox, receivers: list[Any]) -> dict[str, dict[str, int]]:
    """This process's counters now: the outbox's under ``outbox``, each receiver's under its ``kind``.

    Beside the counters, gauges of what the process holds: ``outbox.buffered`` items in memory (of
    ``outbox.buffer_limit``), ``outbox.spool_bytes`` on disk, each UDP socket's ``rcvbuf_bytes`` with its
    ``kernel_drops``, and ``process.rss_bytes``.
    """
    counters = {"outbox": {**outbox.stats, "buffered": len(outbox.memory), "buffer_limit": outbox.max_memory,
                           "spool_bytes": outbox.spool.bytes}}  # fmt: skip
    for receiver in receivers:
        stats = getattr(receiver, "stats", None) or getattr(getattr(receiver, "engine", None), "stats", None)
        if stats:
            listener = getattr(receiver, "udp", None)
            counters[receiver.kind] = {**stats, **(listener.counters() if listener is not None else {})}
    counters["process"] = {"rss_bytes": rss_bytes()}
    return counters


def log_stats(name: str, snapshot: Callable[[], Counters]) -> None:
    """Every minute, the counters that tell an operator whether anything is being dropped (a new drop: WARNING)."""
    import gevent

    last: Counters = {}
    while True:
        gevent.sleep(STATS_EVERY_S)
        counters = snapshot()
        counters = {component: values for component, values in counters.items() if component != "process"}
        if counters != last:
            dropped = sum(drops(counters).values()) > sum(drops(last).values())
            (logger.warning if dropped else logger.info)("%s counters: %s", name, counters)
            last = counters


def watch_counters(settings: Settings, name: str, outbox: Outbox, receivers: list[Any]) -> list[Any]:
    """Start logging this process's counters and reporting them to the database; returns the greenlets to kill."""
    import gevent

    def snapshot() -> Counters:
        return counters_of(outbox, receivers)

    reporter = Reporter(kind=name, snapshot=snapshot, interval_s=settings.receiver_report_s)
    return [gevent.spawn(log_stats, name, snapshot), gevent.spawn(reporter.run)]


def serve(name: str, make_receiver: Callable[..., Any]) -> int:
    """Run a receiver until SIGTERM or SIGINT.

    Parameters:
      name: The process type (``syslog`` or ``snmptrap``): the role, spool and log name.
      make_receiver: Builds the receiver, called as ``make_receiver(settings, outbox=outbox)``
        (e.g. ``SyslogReceiver.from_settings``).
    """
    import gevent
    from gevent.event import Event

    from ..runtime import bootstrap

    settings = bootstrap(role=name, db_connections=1)
    if settings.is_postgres:
        from psycogreen.gevent import patch_psycopg

        patch_psycopg()  # the counters' reports wait for PostgreSQL cooperatively, never holding up receiving
    raise_file_limit()
    outbox = make_outbox(settings, name, dramatiq.get_broker())
    receivers = [make_receiver(settings, outbox=outbox)]
    for receiver in receivers:
        receiver.start()
    publisher = gevent.spawn(outbox.run)
    watchers = watch_counters(settings, name, outbox, receivers)
    stop = Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(sig, stop.set)
    stop.wait()
    logger.info("Stopping %s: closing listeners, publishing or spooling what is buffered.", name)
    for receiver in receivers:
        receiver.stop()
    gevent.killall(watchers)
    outbox.stop(runner=publisher)
    logger.info("%s stopped: %s", name, outbox.stats)
    return 0

"""A database outage under load on the real stack, measured: the integration test and ``bench/outage.py`` share it.

The Procfile's processes (``web``, ``syslog``, ``normalize``, ``correlate``, ``evaluate``) reach
PostgreSQL through a :class:`~tests.proxy.TcpProxy` that is cut for the outage, while syslog
lines (TCP, so none is lost on the way) and webhook requests keep arriving.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pika

from app.models import ProcessedEvent, RawEvent
from tests.http import request
from tests.processes import Process, free_port, start_web, start_worker, wait_for
from tests.proxy import TcpProxy

#: The queues of the event pipeline, whose dead letters (``<queue>.XQ``) must stay empty.
PIPELINE = ("normalize", "correlate", "evaluate")


@dataclass
class Figures:
    """What a run sent, what the product accepted and stored, what it dead-lettered, and how fast it drained."""

    outage_s: float
    sent: int = 0
    accepted: int = 0
    refused: int = 0
    stored: int = 0
    dead_lettered: dict[str, int] = field(default_factory=dict)
    raw_database_errors: int = 0
    drain_s: float | None = None

    def lines(self) -> list[str]:
        drain = "not drained" if self.drain_s is None else f"{self.drain_s:.1f} s after recovery"
        return [
            f"outage:        {self.outage_s:.0f} s of PostgreSQL unreachable",
            f"sent:          {self.sent} events (syslog lines and webhook events)",
            f"accepted:      {self.accepted} (webhook requests refused with 503: {self.refused})",
            f"stored:        {self.stored}",
            f"dead-lettered: {sum(self.dead_lettered.values())} {self.dead_lettered}",
            f"raw rows with a database error: {self.raw_database_errors}",
            f"drain:         {drain}",
        ]


class Stack:
    """The Procfile's event pipeline as real processes, on a database reached through ``proxy``."""

    def __init__(self, env: dict[str, str], proxy: TcpProxy, tmp_dir: str) -> None:
        self.syslog_port = free_port()
        self.env = dict(env, DATABASE_URL=proxy.url(env["DATABASE_URL"]), SYSLOG_TCP_PORT=str(self.syslog_port),
                        SYSLOG_UDP_PORT=str(free_port(socket.SOCK_DGRAM)), SPOOL_DIR=f"{tmp_dir}/spool")  # fmt: skip
        self.processes: list[Process] = []

    def start(self) -> str:
        """Start every process; return the web base URL."""
        for queue in PIPELINE:
            self.processes.append(start_worker(self.env, queues=(queue,)))
        syslog = Process("syslog", [sys.executable, "-m", "app.receivers.syslog"], self.env)
        self.processes.append(syslog)
        web, base = start_web(self.env)
        self.processes.append(web)
        wait_for(lambda: _accepts(self.syslog_port), timeout=30, message="the syslog receiver")
        return base

    def stop(self) -> None:
        for process in self.processes:
            process.stop()

    def output(self) -> str:
        """The end of each process's log, for an assertion's message."""
        return "\n".join(f"--- {p.name}\n{p.output()[-4000:]}" for p in self.processes)

    def logs(self) -> str:
        """Every process's whole log, for searching."""
        return "\n".join(f"--- {p.name}\n{p.output()}" for p in self.processes)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class Traffic:
    """Syslog lines over TCP and webhook requests, each uniquely titled, at a steady rate until stopped.

    Parameters:
      lines_per_s: Syslog lines a second, sent in ``bursts_per_s`` bursts (as a busy host logs).
      requests_per_s: Webhook requests a second, of ``events_per_request`` events each.
    """

    def __init__(self, *, syslog_port: int, base: str, key: str, lines_per_s: int = 100, bursts_per_s: int = 2,
                 requests_per_s: int = 2, events_per_request: int = 25) -> None:  # fmt: skip
        tag = uuid.uuid4().hex[:8]
        self.syslog_host, self.webhook_host = f"outage-sl-{tag}", f"outage-wh-{tag}"
        self.syslog_port, self.base, self.key = syslog_port, base, key
        self.lines_per_s, self.bursts_per_s = lines_per_s, bursts_per_s
        self.requests_per_s, self.events_per_request = requests_per_s, events_per_request
        self.lines = self.webhook_sent = self.webhook_accepted = self.refused = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._syslog, daemon=True),
                         threading.Thread(target=self._webhook, daemon=True)]  # fmt: skip

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    @property
    def sent(self) -> int:
        return self.lines + self.webhook_sent

    @property
    def accepted(self) -> int:
        return self.lines + self.webhook_accepted  # TCP: every line sent reached the receiver

    def _paced(self, rate: int):
        started, n = time.monotonic(), 0
        while not self._stop.is_set():
            yield n
            n += 1
            ahead = started + n / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)

    def _syslog(self) -> None:
        with socket.create_connection(("127.0.0.1", self.syslog_port)) as sock:
            per_burst = max(1, self.lines_per_s // self.bursts_per_s)
            for burst in self._paced(self.bursts_per_s):
                first = burst * per_burst
                lines = (
                    f"<14>Nov 23 10:00:00 {self.syslog_host} app: line {n}\n" for n in range(first, first + per_burst)
                )
                sock.sendall("".join(lines).encode())
                self.lines += per_burst

    def _webhook(self) -> None:
        for n in self._paced(self.requests_per_s):
            batch = [{"source": "outage-test", "severity": "high", "host": self.webhook_host,
                      "title": f"request {n} event {i}"} for i in range(self.events_per_request)]  # fmt: skip
            self.webhook_sent += len(batch)
            try:
                reply = request("POST", f"{self.base}/api/v1/events/webhook", json=batch, key=self.key, timeout=20)
            except OSError:
                self.refused += 1
                continue
            if reply.status == 202:
                self.webhook_accepted += len(batch)
            else:
                self.refused += 1


def stored(traffic: Traffic) -> int:
    hosts = [traffic.syslog_host, traffic.webhook_host]
    return ProcessedEvent.select().where(ProcessedEvent.source_host.in_(hosts)).count()


def queue_depths(url: str, queues: tuple[str, ...]) -> dict[str, int]:
    """Ready messages per queue (declared passively: a queue that does not exist counts 0)."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    depths = {}
    for queue in queues:
        channel = connection.channel()
        try:
            depths[queue] = channel.queue_declare(queue, passive=True).method.message_count
            channel.close()
        except pika.exceptions.ChannelClosedByBroker:
            depths[queue] = 0
    connection.close()
    return depths


def consumers(url: str, queue: str) -> int:
    """Consumers attached to ``queue`` (0 when it does not exist)."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        return connection.channel().queue_declare(queue, passive=True).method.consumer_count
    except pika.exceptions.ChannelClosedByBroker:
        return 0
    finally:
        connection.close()


def raw_database_errors(since: datetime) -> int:
    """Raw rows received from ``since`` on whose processing error is a database failure (a transient
    error taken for bad input); rows other tests left in the database are not counted."""
    text = RawEvent.processing_errors.cast("text")
    bad = text.contains("DatabaseUnavailable") | text.contains("database")
    return RawEvent.select().where(bad & (RawEvent.received_at >= since)).count()


def run_outage(
    *, rabbitmq_url: str, traffic: Traffic, proxy: TcpProxy, outage_s: float, lead_s: float = 5.0, tail_s: float = 5.0,
    drain_timeout_s: float = 120.0, progress=None,
) -> Figures:  # fmt: skip
    """Send traffic, cut the database for ``outage_s``, keep sending ``tail_s`` after it returns, then measure.

    The drain time runs from the database's return until every accepted event is stored and the
    pipeline's queues are empty.
    """
    figures = Figures(outage_s=outage_s)
    started = datetime.now(UTC)
    traffic.start()
    time.sleep(lead_s)
    proxy.down()
    cut_at = time.monotonic()
    while time.monotonic() - cut_at < outage_s:
        time.sleep(min(10.0, outage_s))
        if progress:
            progress(f"outage {time.monotonic() - cut_at:.0f}/{outage_s:.0f} s: sent {traffic.sent}")
    proxy.up()
    back_at = time.monotonic()
    time.sleep(tail_s)
    traffic.stop()
    deadline = back_at + drain_timeout_s
    while time.monotonic() < deadline:
        if stored(traffic) >= traffic.accepted and not any(queue_depths(rabbitmq_url, PIPELINE).values()):
            figures.drain_s = time.monotonic() - back_at
            break
        time.sleep(0.5)
    figures.sent, figures.accepted, figures.refused = traffic.sent, traffic.accepted, traffic.refused
    figures.stored = stored(traffic)
    figures.dead_lettered = queue_depths(rabbitmq_url, tuple(f"{q}.XQ" for q in PIPELINE))
    figures.raw_database_errors = raw_database_errors(started)
    return figures

"""``/metrics``: Prometheus metrics of the whole deployment, read at scrape time.

Every figure comes from what all processes share — RabbitMQ's queues and the database — so any
``web`` process answers for the deployment, with no per-process state to aggregate. Queue depths
are read with passive declares on a short-lived AMQP connection; the answer is cached for
:data:`CACHE_S` so a fast scraper cannot load RabbitMQ or PostgreSQL.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import dramatiq
import falcon
import peewee
import pika
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from ..agents import health as agent_health
from ..db import database, in_transaction, is_postgres, release_connection
from ..errors import DatabaseUnavailable
from ..executions.store import STATUSES as EXECUTION_STATUSES
from ..models import Approval, Execution, Incident, RawEvent
from ..receivers import counters as receiver_counters
from ..timeutil import now

#: Queues of the pipeline, each with its delay (``.DQ``) and dead-letter (``.XQ``) queue.
QUEUES = ("normalize", "correlate", "evaluate", "decide", "execute", "rollback", "notify", "agent_terraform",
          "agent_kubernetes", "agent_cost")
#: Seconds an answer is reused.
CACHE_S = 5.0


def queue_depths(broker: dramatiq.Broker) -> dict[tuple[str, str], int]:
    """Messages per (queue, kind): ``ready``, ``delayed`` (``.DQ``) and ``dead`` (``.XQ``); also the console's health page.

    Raises:
      pika.exceptions.AMQPError: RabbitMQ did not answer.
    """
    depths: dict[tuple[str, str], int] = {}
    if isinstance(broker, RabbitmqBroker):
        connection = pika.BlockingConnection(broker.parameters)  # several nodes: the first that answers
        try:
            channel = connection.channel()
            for queue in QUEUES:
                for kind, name in (("ready", queue), ("delayed", f"{queue}.DQ"), ("dead", f"{queue}.XQ")):
                    try:
                        depths[(queue, kind)] = channel.queue_declare(name, passive=True).method.message_count
                    except pika.exceptions.ChannelClosedByBroker:
                        channel = connection.channel()  # not declared yet: nothing in it
                        depths[(queue, kind)] = 0
        finally:
            connection.close()
    else:  # the in-process broker of the all-in-one mode
        for name, queue in getattr(broker, "queues", {}).items():
            base, _, suffix = name.partition(".")
            depths[(base, {"DQ": "delayed", "XQ": "dead"}.get(suffix, "ready"))] = queue.qsize()
    return depths


def _by_status(model: Any) -> dict[str, int]:
    query: Any = model.select(model.status, peewee.fn.COUNT(model.id)).group_by(model.status).tuples()
    return {status: n for status, n in query}


def _counts() -> dict[str, Any]:
    unparsed = RawEvent.select().where(RawEvent.processed == False)  # noqa: E712 - the partial index's condition
    return {
        "incidents": _by_status(Incident),
        "executions": _by_status(Execution),
        "approvals_pending": Approval.select().where(Approval.status == "pending").count(),
        "unparsed": unparsed.count(),
        "events_estimate": (
            database.execute_sql(
                "SELECT reltuples::bigint FROM pg_class WHERE oid = 'events.processed_events'::regclass"
            ).fetchone()[0]
            if is_postgres()
            else None
        ),
        "receivers": receiver_counters.read(at=now()),
        "agents": agent_health.up_by_agent(now()),
    }


class Deployment(Collector):
    """Reads the deployment's state at scrape time."""

    def __init__(self, broker: dramatiq.Broker) -> None:
        self.broker = broker

    def collect(self) -> Iterator[GaugeMetricFamily]:
        queues = GaugeMetricFamily(
            "opsconductor_queue_messages", "Messages waiting in a queue", labels=["queue", "kind"]
        )
        up = GaugeMetricFamily("opsconductor_broker_up", "Whether RabbitMQ answered the scrape")
        try:
            for (queue, kind), depth in sorted(queue_depths(self.broker).items()):
                queues.add_metric([queue, kind], depth)
            up.add_metric([], 1)
        except pika.exceptions.AMQPError:
            up.add_metric([], 0)
        yield queues
        yield up
        database_up = GaugeMetricFamily("opsconductor_database_up", "Whether the database answered the scrape")
        try:
            counts = in_transaction(_counts)
        except DatabaseUnavailable:
            # The figures below live in the database: without it only the broker's are known, and an
            # alert on this gauge tells "database down" from "web down" (a failed scrape).
            database_up.add_metric([], 0)
            yield database_up
            return
        finally:
            release_connection()
        database_up.add_metric([], 1)
        yield database_up
        incidents = GaugeMetricFamily("opsconductor_incidents", "Incidents by status", labels=["status"])
        for status in ("open", "flapping", "acknowledged", "resolved", "closed"):
            incidents.add_metric([status], counts["incidents"].get(status, 0))
        yield incidents
        executions = GaugeMetricFamily("opsconductor_executions", "Executions by status", labels=["status"])
        # Every status, even at 0, as for incidents: a series that appears only once it is non-zero
        # cannot be told from one nobody exports, and graphs leave gaps where it was 0.
        for status in sorted({*EXECUTION_STATUSES, *counts["executions"]}):
            executions.add_metric([status], counts["executions"].get(status, 0))
        yield executions
        yield GaugeMetricFamily("opsconductor_approvals_pending", "Approval requests waiting for a human",
                                value=counts["approvals_pending"])  # fmt: skip
        yield GaugeMetricFamily("opsconductor_raw_events_unparsed", "Input stored raw because it could not be parsed",
                                value=counts["unparsed"])  # fmt: skip
        if counts["events_estimate"] is not None:
            yield GaugeMetricFamily("opsconductor_events_stored_estimate", "Stored events (PostgreSQL's estimate)",
                                    value=max(0, counts["events_estimate"]))  # fmt: skip
        yield from _receiver_metrics(counts["receivers"])
        agents = GaugeMetricFamily("opsconductor_agent_up", "Whether a process of each enabled, started agent "
                                   "heartbeats (1) or none does (0)", labels=["agent"])  # fmt: skip
        for name, up in sorted(counts["agents"].items()):
            agents.add_metric([name], 1 if up else 0)
        yield agents


def _receiver_metrics(reports: list[receiver_counters.Report]) -> Iterator[Any]:
    """Each live receiver process's counters, labelled by process: a sum over processes would fall when one
    stops, which Prometheus takes for a counter reset (``sum by (kind, reason) (rate(...))`` adds them up)."""
    labels = ["kind", "host", "pid"]
    dropped = CounterMetricFamily("opsconductor_receiver_dropped", "Input a receiver lost, cut or refused, by reason",
                                  labels=[*labels, "reason"])  # fmt: skip
    accepted = CounterMetricFamily("opsconductor_receiver_accepted", "Items a receiver took in for the normalizer",
                                   labels=labels)  # fmt: skip
    spooled = CounterMetricFamily("opsconductor_receiver_spooled", "Items a receiver spooled to disk while the "
                                  "broker was away", labels=labels)  # fmt: skip
    age = GaugeMetricFamily("opsconductor_receiver_report_age_seconds", "Seconds since a receiver process last "
                            "reported its counters (stale ones too)", labels=[*labels, "stale"])  # fmt: skip
    held = {
        "rss_bytes": GaugeMetricFamily("opsconductor_receiver_resident_memory_bytes", "Resident memory of a receiver "
                                       "process", labels=labels),
        "buffered": GaugeMetricFamily("opsconductor_receiver_buffered", "Items a receiver holds in memory on their "
                                      "way to the broker", labels=labels),
        "buffer_limit": GaugeMetricFamily("opsconductor_receiver_buffer_limit", "Items a receiver holds in memory "
                                          "before it spools the oldest", labels=labels),
        "spool_bytes": GaugeMetricFamily("opsconductor_receiver_spool_bytes", "Bytes a receiver has spooled on "
                                         "disk", labels=labels),
        "rcvbuf_bytes": GaugeMetricFamily("opsconductor_receiver_socket_receive_buffer_bytes", "UDP receive buffer "
                                          "the kernel granted a receiver (RECEIVER_RCVBUF_BYTES)", labels=labels),
    }  # fmt: skip
    for report in reports:
        process = [report.kind, report.hostname, str(report.pid)]
        age.add_metric([*process, "true" if report.stale else "false"], report.age_s)
        if report.stale:
            continue  # its counters are old: the series ends, as a restarted process's does
        accepted.add_metric(process, report.accepted)
        spooled.add_metric(process, report.spooled)
        for reason, n in sorted(report.drops.items()):
            dropped.add_metric([*process, reason], n)
        for name, value in report.memory.items():
            held[name].add_metric(process, value)
    yield from (dropped, accepted, spooled, age, *held.values())


class Metrics:
    """The Prometheus text exposition; readable without a key, like ``/healthz`` (it holds no secrets)."""

    def __init__(self, broker: dramatiq.Broker) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(Deployment(broker))
        self._lock = threading.Lock()
        self._cached: tuple[float, bytes] = (0.0, b"")

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        with self._lock:
            if self._cached[0] <= time.monotonic():
                self._cached = (time.monotonic() + CACHE_S, generate_latest(self.registry))
            body = self._cached[1]
        resp.content_type = "text/plain; version=0.0.4; charset=utf-8"
        resp.data = body

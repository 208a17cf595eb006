"""A long PostgreSQL outage under load on the real stack: what was sent, accepted, stored, dead-lettered, and the drain time.

Starts the Procfile's event pipeline (``web``, ``syslog``, ``normalize``, ``correlate``,
``evaluate``) on a database (``--database``, default ``opsconductor_outage_bench``, dropped and
created on the server DATABASE_URL names) reached through a TCP proxy, against the broker
RABBITMQ_URL names (its pipeline queues are purged). Syslog lines (TCP) and webhook requests
flow at a steady rate; the proxy is cut for ``--outage-s`` seconds (default 600) and restored;
the traffic goes on for 5 s; then the script waits until every accepted event is stored and the
queues are empty.

The retry ladder is the default (12 retries, about 30 minutes) unless ``RETRY_LIMIT`` /
``RETRY_MAX_BACKOFF_MS`` are set; ``--short-ladder`` sets 2 retries 1-2 s apart, so that an
outage longer than a few seconds would dead-letter everything in flight if it spent retries.

``--timeline-s N`` also prints, every N seconds from the cut until the end, the messages ready
in each pipeline queue and the events stored but not yet correlated: which stage binds the drain.

    .venv/bin/python bench/outage.py [--outage-s 600] [--short-ladder] [--lines-per-s 100] [--requests-per-s 2]
                                     [--timeline-s 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.auth import create_key  # noqa: E402
from app.db import database, init_database  # noqa: E402
from app.migrate import migrate  # noqa: E402
from app.models import ProcessedEvent  # noqa: E402
from tests.outage import PIPELINE, Stack, Traffic, queue_depths, run_outage  # noqa: E402
from tests.proxy import TcpProxy  # noqa: E402
from tests.services import purge_queues, recreate_database  # noqa: E402


class Timeline:
    """Queue depths (messages ready) and events not yet correlated, sampled every ``every_s`` seconds in a thread."""

    def __init__(self, *, rabbitmq_url: str, every_s: float) -> None:
        self.rabbitmq_url, self.every_s = rabbitmq_url, every_s
        self.samples: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = 0.0

    def start(self) -> None:
        self._started = time.monotonic()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                depths = queue_depths(self.rabbitmq_url, PIPELINE)
                # the bench's own connection goes straight to the database, not through the proxy the outage cuts
                waiting = ProcessedEvent.select().where(ProcessedEvent.correlation_id.is_null()).count()
                database.close()
            except Exception as e:  # noqa: BLE001 - a sample missed is reported, not fatal
                self.samples.append(f"{time.monotonic() - self._started:6.0f} s  sample failed: {e!r}")
                continue
            ready = "  ".join(f"{q} {n:5d}" for q, n in depths.items())
            self.samples.append(f"{time.monotonic() - self._started:6.0f} s  {ready}  uncorrelated events {waiting:6d}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--outage-s", type=float, default=600.0)
    parser.add_argument("--short-ladder", action="store_true", help="RETRY_LIMIT=2, RETRY_MAX_BACKOFF_MS=2000")
    parser.add_argument("--lines-per-s", type=int, default=100)
    parser.add_argument("--requests-per-s", type=int, default=2, help="webhook requests of 25 events each")
    parser.add_argument("--database", default="opsconductor_outage_bench")
    parser.add_argument("--timeline-s", type=float, default=0.0, help="sample queue depths every N s (0: off)")
    args = parser.parse_args()
    base = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/test"
    url = urlunsplit(urlsplit(base)._replace(path="/" + args.database))
    rabbit = os.environ.get("RABBITMQ_URL") or "amqp://guest:guest@127.0.0.1:5672/%2F"
    recreate_database(args.database, base)
    purge_queues(rabbit)
    init_database(url, application_name="opsconductor-bench", max_connections=4)
    migrate()
    env = {"DATABASE_URL": url, "RABBITMQ_URL": rabbit, "LOG_LEVEL": "WARNING"}
    if args.short_ladder:
        env.update(RETRY_LIMIT="2", RETRY_MAX_BACKOFF_MS="2000")
    proxy = TcpProxy.to(url, 5432)
    stack = Stack(env, proxy, tempfile.mkdtemp(prefix="oc-outage-"))
    key = create_key(role="ingest", name="outage bench")
    started = time.monotonic()
    timeline = Timeline(rabbitmq_url=rabbit, every_s=args.timeline_s) if args.timeline_s > 0 else None
    try:
        web = stack.start()
        if timeline:
            timeline.start()
        traffic = Traffic(syslog_port=stack.syslog_port, base=web, key=key, lines_per_s=args.lines_per_s,
                          requests_per_s=args.requests_per_s)  # fmt: skip
        figures = run_outage(rabbitmq_url=rabbit, traffic=traffic, proxy=proxy, outage_s=args.outage_s,
                             drain_timeout_s=max(120.0, args.outage_s / 2), progress=lambda s: print(s, flush=True))  # fmt: skip
    finally:
        if timeline:
            timeline.stop()
        stack.stop()
        proxy.close()
    if timeline:
        print(f"timeline (from the start of traffic; the cut is at 5 s, recovery at {args.outage_s + 5:.0f} s):")
        print("\n".join(timeline.samples))
    print(f"retry ladder:  {'2 retries, 1-2 s apart' if args.short_ladder else 'default (12 retries, ~30 min)'}")
    print("\n".join(figures.lines()))
    print(f"run:           {time.monotonic() - started:.0f} s in all")
    ok = not any(figures.dead_lettered.values()) and figures.stored == figures.accepted and figures.drain_s is not None
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

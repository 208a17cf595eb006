"""Cost of growth: queries and the pipeline's stages with 0, 1 M and 5 M events already stored.

One PostgreSQL database (``--database``, on DATABASE_URL's server), prepared as bench/pipeline.py
does (topology of 2,000 hosts, 100 rules), then 5,000 open incidents made by the real correlator
(5,000 events on hosts, services and messages of their own, 30 minutes ago). For each level of
``--levels`` the history is filled up to that many stored events (received over the 30 days before,
correlated into closed incidents, inserted by PostgreSQL itself: ``generate_series``), the tables are
analyzed, and then:

- each query operators and the console run is timed in this process (median and p95 of
  ``--repeat``): the events page with and without filters, one event, the incidents page, one
  incident, analytics over 24 hours;
- the stages run alone on ``--events`` new events (bench/stages.py: normalize, evaluate, correlate).

    .venv/bin/python bench/growth.py [--levels 0,1000000,5000000] [--events 10000] [--repeat 20]
        [--database opsconductor_bench_growth]

A figure that grows with the level is a query or a stage that reads history it does not need.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import stages  # noqa: E402
from bench.autonomy import percentile  # noqa: E402
from bench.pipeline import prepare_database  # noqa: E402

#: Open incidents the history holds, as the issue asks.
OPEN_INCIDENTS = 5_000
#: Events per closed incident of the history.
PER_INCIDENT = 200
#: Rows inserted per statement while filling the history.
FILL_CHUNK = 250_000

_FILL_INCIDENTS_SQL = """
INSERT INTO events.incidents (id, status, title, root_event_id, root_fingerprint, severity, severity_score,
  event_count, hosts, services, templates, fingerprints, link_keys, match_keys, opened_at, last_event_at, closed_at)
SELECT md5('inc' || g)::uuid, 'closed', 'history ' || g, md5('ev' || g * %(per)s)::uuid, 'fp-hist-' || g, 'low', 0.2,
  %(per)s, jsonb_build_array('app-' || lpad((g %% 40)::text, 2, '0') || '-' || lpad((g %% 50)::text, 2, '0')),
  '["web"]'::jsonb, '[]'::jsonb, '[]'::jsonb, '[]'::jsonb, '{}'::jsonb, t, t + interval '10 minutes', t + interval '1 hour'
FROM (SELECT g, now() - interval '1 day' - (g %% 2500000) * interval '1 second' AS t
      FROM generate_series(%(lo)s, %(hi)s - 1) AS g) AS s
ON CONFLICT DO NOTHING
"""
_FILL_EVENTS_SQL = """
WITH s AS (
  SELECT g, md5('ev' || g)::uuid AS id, now() - interval '1 day' - (g %% 2500000) * interval '1 second' AS t,
         'app-' || lpad((g %% 40)::text, 2, '0') || '-' || lpad(((g / 40) %% 50)::text, 2, '0') AS host
  FROM generate_series(%(lo)s, %(hi)s - 1) AS g
), raw AS (
  INSERT INTO events.raw_events (id, source_system, source_type, raw_data, received_at, processed, fingerprint)
  SELECT id, 'history', 'webhook', jsonb_build_object('host', host, 'title', 'history ' || g), t, true,
         'fp-hist-' || g FROM s
)
INSERT INTO events.processed_events (id, raw_event_id, source_type, source, event_type, severity, source_host,
  source_service, title, event_data, tags, occurred_at, received_at, processed_at, fingerprint, occurrences,
  last_seen_at, correlation_id)
SELECT id, id, 'webhook', 'history', 'alert', (ARRAY['critical','high','medium','low','info'])[1 + g %% 5], host,
  (ARRAY['web','db','cache'])[1 + g %% 3], 'history event ' || g, jsonb_build_object('value', g %% 100),
  '["prod"]'::jsonb, t, t, t, 'fp-hist-' || g, 1, t, md5('inc' || (g / %(per)s))::uuid
FROM s
"""


def _stored_history() -> int:
    from app.db import database

    return int(
        database.execute_sql("SELECT count(*) FROM events.processed_events WHERE source = 'history'").fetchone()[0]
    )


def fill_history(level: int) -> float:
    """Stored events of the history up to ``level`` (with their closed incidents); returns seconds taken."""
    from app.db import database

    started = time.monotonic()
    have = _stored_history()
    for lo in range(have, level, FILL_CHUNK):
        hi = min(lo + FILL_CHUNK, level)
        with database.atomic():
            database.execute_sql(_FILL_EVENTS_SQL, {"lo": lo, "hi": hi, "per": PER_INCIDENT})
            database.execute_sql(
                _FILL_INCIDENTS_SQL, {"lo": lo // PER_INCIDENT, "hi": hi // PER_INCIDENT + 1, "per": PER_INCIDENT}
            )
        print(f"  history: {hi:,} events stored", flush=True)
    database.execute_sql("ANALYZE")
    return time.monotonic() - started


def open_incidents(n: int) -> int:
    """``n`` open incidents, made by the correlator from events that share nothing; returns how many are open."""
    from app.correlation.store import CLAIM, correlate_batch
    from app.events.envelope import make_item
    from app.events.store import store_batch
    from app.ids import new_id
    from app.models import Incident

    at = time.time() - 1800

    def word(k: int) -> str:  # letters only: digits and hex would be variables of one template
        out = ""
        for _ in range(5):
            k, r = divmod(k, 26)
            out += chr(97 + r)
        return out

    for k in range(0, n, 500):
        items = [
            make_item(
                id=new_id(),
                source_type="webhook",
                received_at=at + i * 0.01,
                payload={
                    "source": "growth",
                    "host": f"solo-{i:05d}",
                    "service": f"svc-{i:05d}",
                    "severity": "high",
                    "title": f"{word(i * 7919 + 13)} {word(i * 104729 + 7)} {word(i)} failed",
                },
            )  # fmt: skip
            for i in range(k, min(k + 500, n))
        ]
        correlate_batch(store_batch(items, window_s=300).event_ids, claim=CLAIM)
    return Incident.select().where(Incident.status == "open").count()


def _time(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), percentile(times, 0.95)


def queries(repeat: int) -> dict[str, tuple[float, float]]:
    """Median and p95 (ms) of each query the API and the console run."""
    from app.correlation.query import get_incident, list_incidents
    from app.events.query import EventFilter, analytics, get_event, list_events
    from app.models import Incident, ProcessedEvent

    now = datetime.now(UTC)
    event = ProcessedEvent.select(ProcessedEvent.id).order_by(ProcessedEvent.occurred_at.desc()).first()
    incident = Incident.select(Incident.id).where(Incident.status == "open").first()
    return {
        "events page": _time(lambda: list_events(EventFilter(limit=50)), repeat),
        # what the page's total_count cost when every match was counted (it is estimated past 10,000 now)
        "exact count of all events": _time(lambda: ProcessedEvent.select().count(), repeat),
        "events of a host": _time(lambda: list_events(EventFilter(host="app-01-01", limit=50)), repeat),
        "events critical, last hour": _time(
            lambda: list_events(EventFilter(severity=["critical"], start_time=now - timedelta(hours=1), limit=50)),
            repeat,
        ),
        "one event": _time(lambda: get_event(event.id), repeat),
        "open incidents page": _time(
            lambda: list_incidents(status="open", severity=None, host=None, since=None, limit=50, offset=0), repeat
        ),
        "incidents of a host": _time(
            lambda: list_incidents(status=None, severity=None, host="solo-00042", since=None, limit=50, offset=0),
            repeat,
        ),
        "one incident": _time(lambda: get_incident(incident.id), repeat),
        "analytics 24 h by severity": _time(
            lambda: analytics(timerange=timedelta(hours=24), groupby="severity", now=now), repeat
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", default="0,1000000", help="stored events of history, e.g. 0,1000000,5000000")
    parser.add_argument("--events", type=int, default=10_000, help="new events each stage takes at each level")
    parser.add_argument("--processes", type=int, default=1, help="processes per stage")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--stage-timeout", type=float, default=180.0)
    parser.add_argument("--no-stages", action="store_true", help="time the queries only")
    parser.add_argument("--database", default="opsconductor_bench_growth")
    args = parser.parse_args()
    base = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/test"
    url = urlunsplit(urlsplit(base)._replace(path="/" + args.database))
    rabbit = os.environ.get("RABBITMQ_URL") or "amqp://guest:guest@127.0.0.1:5672/%2F"
    env = dict(os.environ, DATABASE_URL=url, RABBITMQ_URL=rabbit, LOG_LEVEL="WARNING")
    ctx = {"env": env, "rabbit": rabbit, "url": url, "base": base}

    prepare_database(args, url, base, env, rabbit)
    started = time.monotonic()
    print(f"{open_incidents(OPEN_INCIDENTS):,} open incidents in {time.monotonic() - started:.0f} s", flush=True)
    results: dict[int, dict[str, Any]] = {}
    for level in (int(x) for x in args.levels.split(",")):
        print(f"history {level:,}: filled in {fill_history(level):.0f} s", flush=True)
        figures: dict[str, Any] = {"queries": queries(args.repeat)}
        for name, (p50, p95) in figures["queries"].items():
            print(f"  {name:<28} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms", flush=True)
        if not args.no_stages:
            figures["stages"] = stages.stages_run(0, args, args.processes, ctx, fresh=False)
            print("  stages: " + ", ".join(f"{k} {v:,.0f}" for k, v in figures["stages"].items()), flush=True)
        results[level] = figures
    levels = list(results)
    print("SUMMARY (p50 ms of each query; events/s of each stage) at " + ", ".join(f"{lv:,}" for lv in levels))
    for name in results[levels[0]]["queries"]:
        print(f"  {name:<28} " + "  ".join(f"{results[lv]['queries'][name][0]:8.1f}" for lv in levels))
    if not args.no_stages:
        for stage in stages.STAGES:
            print(f"  {stage:<28} " + "  ".join(f"{results[lv]['stages'][stage]:8,.0f}" for lv in levels))
    return 0


if __name__ == "__main__":
    sys.exit(main())

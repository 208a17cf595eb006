"""Correlation + rule evaluation benchmark on the real stack, with 100 active trigger rules.

Stores N events (2,000 hosts behind 40 switches, a mix of messages) in a PostgreSQL
database (``--database``, default ``opsconductor_bench``) on the server DATABASE_URL names,
against the broker RABBITMQ_URL names, declares the topology and 100 rules, then sends the
events' ids to the ``correlate`` queue in batches of 500, as the normalizer does, and
times worker processes (correlate → evaluate → decide) until every event is correlated
and the evaluate queue is empty. The workers are started and connected before the clock starts.

    .venv/bin/python bench/pipeline.py [--events 50000] [--workers 1] [--runs 3] [--layout procfile|shared]
        [--correlators 1,2] [--correlate-only] [--database opsconductor_bench]
    .venv/bin/python bench/pipeline.py --stages [--processes 1,2] [--events 50000] [--batch 100] [--runs 3]

``--correlators 1,2`` runs each number of correlate processes in turn and prints the ratio of their
medians: how correlation scales out (``--correlate-only`` times it with no evaluator competing for
the cores).

``--stages`` measures each stage alone from raw webhook items (normalize, then correlate, then evaluate:
events/s with 1 and 2 processes of each, peak RSS), then all stages at once; it prints the binding stage
and how many processes of each type 10,000 events/s need (see :mod:`bench.stages`).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from urllib.parse import urlsplit, urlunsplit  # noqa: E402

from tests.processes import start_worker  # noqa: E402
from tests.services import purge_queues, recreate_database  # noqa: E402

MESSAGES = ["Database connection timeout after {n} ms", "CPU usage {n}% above threshold", "Disk /var {n}% full",
            "Service nginx restarted (exit code {n})", "Login failed for user u{n}", "Replication lag {n} s"]  # fmt: skip


def rules(n: int) -> list[dict]:
    out = []
    for i in range(n):
        kind = i % 4
        if kind == 0:
            cond = {"severity": ["critical", "high"], "host": {"$regex": f"^app-{i % 40:02d}-"}}
        elif kind == 1:
            cond = {"metadata.value": {"$gt": 90 + i % 10}, "event_type": "alert"}
        elif kind == 2:
            cond = {"$or": [{"title": {"$contains": "timeout"}}, {"service": "db"}], "severity": {"$gte": "medium"}}
        else:
            cond = {
                "$and": [
                    {"tags": {"$contains": "prod"}},
                    {"$not": {"host": {"$in": [f"app-00-{j:02d}" for j in range(10)]}}},
                ]
            }
        out.append({"name": f"bench rule {i}", "conditions": cond, "max_triggers_per_hour": 5, "cooldown_minutes": 5})
    return out


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--workers", type=int, default=1, help="processes per queue group")
    parser.add_argument(
        "--correlators",
        default=None,
        help="correlate processes (procfile layout; default --workers): one number, or several separated by commas"
        " (1,2): each configuration runs --runs times, and the ratio of each median to the first is printed",
    )
    parser.add_argument(
        "--correlate-only",
        action="store_true",
        help="start no rule evaluator (its queue keeps what the correlators hand on): time correlation alone",
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--layout",
        choices=("procfile", "shared"),
        default="procfile",
        help="procfile: correlate and evaluate processes apart (default); shared: every queue in each",
    )
    parser.add_argument(
        "--database",
        default="opsconductor_bench",
        help="the database (dropped and created) on the server DATABASE_URL names",
    )
    parser.add_argument(
        "--stages",
        action="store_true",
        help="per-stage rates (normalize, correlate, evaluate each alone from raw webhook items), then all at once"
        " (see bench/stages.py)",
    )
    parser.add_argument("--processes", default="1,2", help="with --stages: processes per stage, e.g. 1,2")
    parser.add_argument("--batch", type=int, default=100, help="with --stages: raw items per normalize message")
    parser.add_argument(
        "--stage-timeout", type=float, default=300.0, help="with --stages: seconds a stage may take (then: its rate)"
    )
    return parser.parse_args()


def raw_items(run: int, n: int, *, start: float | None = None) -> list[dict[str, Any]]:
    """``n`` webhook items as the edge makes them: 2,000 hosts, a mix of messages, one every 10 ms of event time."""
    from app.events.envelope import make_item
    from app.ids import new_id

    rng = random.Random(run)
    hosts = [f"app-{s:02d}-{h:02d}" for s in range(40) for h in range(50)]
    now = time.time() if start is None else start
    items = []
    for i in range(n):
        payload = {"source": "bench", "host": rng.choice(hosts), "service": rng.choice(["web", "db", "cache"]),
                   "severity": rng.choice(["critical", "high", "medium", "low", "info"]),
                   "title": rng.choice(MESSAGES).format(n=rng.randint(1, 999)), "event_type": "alert",
                   "metadata": {"value": rng.randint(0, 100)}, "tags": ["prod"] if i % 2 else ["dev"]}  # fmt: skip
        items.append(make_item(id=new_id(), source_type="webhook", received_at=now + i * 0.01, payload=payload))
    return items


def prepare_database(args: argparse.Namespace, url: str, base: str, env: dict[str, str], rabbit: str) -> None:
    """A fresh database with the topology (2,000 hosts behind 40 switches) and 100 rules; queues purged."""
    recreate_database(args.database, base)
    purge_queues(rabbit)
    subprocess.run(
        [str(Path(sys.executable).parent / "opsconductor"), "migrate"], env=env, check=True, capture_output=True
    )
    from app.correlation.query import replace_topology
    from app.db import init_database
    from app.models import TriggerRule
    from app.rules.evaluation import columns_of
    from app.rules.triggers import parse_trigger

    init_database(url, application_name="opsconductor-bench")
    hosts = [f"app-{s:02d}-{h:02d}" for s in range(40) for h in range(50)]
    replace_topology({"hosts": {h: f"sw-{h[4:6]}" for h in hosts}}, actor="bench")
    for body in rules(100):
        TriggerRule.create(**columns_of(parse_trigger(body)))


def _prepare(
    run: int, args: argparse.Namespace, url: str, base: str, env: dict[str, str], rabbit: str
) -> list[list[str]]:
    """A fresh database holding the run's events, topology and rules; returns the event ids in batches of 500."""
    from app.events.store import store_batch

    prepare_database(args, url, base, env, rabbit)
    items = raw_items(run, args.events)
    return [store_batch(items[k : k + 500], window_s=300).event_ids for k in range(0, len(items), 500)]


def _start(args: argparse.Namespace, correlators: int, env: dict[str, str], rabbit: str) -> list[Any]:
    """The worker processes, started and connected (the clock measures work, not start-up)."""
    import pika

    if args.layout == "procfile":
        # As the Procfile deploys it: correlate and evaluate (+ decide) in their own processes.
        workers = [start_worker(env, queues=("correlate",)) for _ in range(correlators)]
        if not args.correlate_only:
            workers += [start_worker(env, queues=("evaluate", "decide")) for _ in range(args.workers)]
    else:
        workers = [start_worker(env, queues=("correlate", "evaluate", "decide")) for _ in range(correlators)]
    conn = pika.BlockingConnection(pika.URLParameters(rabbit))
    channel = conn.channel()
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if channel.queue_declare("correlate", passive=True).method.consumer_count >= correlators:
                break
        except pika.exceptions.ChannelClosedByBroker:
            channel = conn.channel()
        time.sleep(0.2)
    conn.close()
    return workers


def _measure(args: argparse.Namespace, ids: list[list[str]], workers: list[Any], rabbit: str) -> tuple[float, float]:
    """Send the batches to ``correlate``; returns seconds until all are correlated, and until all are evaluated."""
    import pika
    from dramatiq import Message
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    from app.models import ProcessedEvent

    total = len({i for b in ids for i in b})
    started = time.time()
    broker = RabbitmqBroker(url=rabbit, confirm_delivery=True)
    for batch_ids in ids:
        broker.enqueue(
            Message(queue_name="correlate", actor_name="correlate", args=(batch_ids,), kwargs={}, options={})
        )
    broker.close()
    try:
        while ProcessedEvent.select().where(ProcessedEvent.correlation_id.is_null(False)).count() < total:
            time.sleep(0.1)
        correlated_s = time.time() - started
        if args.correlate_only:
            return correlated_s, correlated_s
        conn = pika.BlockingConnection(pika.URLParameters(rabbit))
        channel = conn.channel()
        while channel.queue_declare("evaluate", passive=True).method.message_count:
            time.sleep(0.1)
        conn.close()
        time.sleep(0.5)  # the last evaluate messages in flight
        return correlated_s, time.time() - started
    finally:
        for w in workers:
            w.stop()


def main() -> int:
    args = _parse()
    base = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/test"
    url = urlunsplit(urlsplit(base)._replace(path="/" + args.database))
    rabbit = os.environ.get("RABBITMQ_URL") or "amqp://guest:guest@127.0.0.1:5672/%2F"
    env = dict(os.environ, DATABASE_URL=url, RABBITMQ_URL=rabbit, LOG_LEVEL="WARNING")
    if args.stages:
        from bench import stages

        stages.main(args, {"env": env, "rabbit": rabbit, "url": url, "base": base})
        return 0
    configurations = [int(n) for n in (args.correlators or str(args.workers)).split(",")]
    medians: list[tuple[int, float, float]] = []
    for correlators in configurations:
        correlated, rates = [], []
        for run in range(args.runs):
            ids = _prepare(run, args, url, base, env, rabbit)
            workers = _start(args, correlators, env, rabbit)
            correlated_s, elapsed = _measure(args, ids, workers, rabbit)
            from app.models import Incident, RuleExecution

            total = len({i for b in ids for i in b})
            correlated.append(total / correlated_s)
            rates.append(total / elapsed)
            print(f"correlators={correlators} run {run + 1}: events={total} correlated_in={correlated_s:.1f}s "
                  f"({total / correlated_s:.0f}/s) correlated+evaluated_in={elapsed:.1f}s rate={total / elapsed:.0f} events/s "
                  f"incidents={Incident.select().count()} firings={RuleExecution.select().count()}", flush=True)  # fmt: skip
        medians.append((correlators, statistics.median(correlated), statistics.median(rates)))
        what = "correlated (no evaluator)" if args.correlate_only else "correlated and evaluated with 100 rules"
        print(
            f"MEDIAN of {args.runs}, {correlators} correlate process(es): {medians[-1][2]:.0f} events/s {what}; "
            f"correlated alone: {medians[-1][1]:.0f} events/s",
            flush=True,
        )
    for correlators, corr, rate in medians[1:]:
        print(f"RATIO {correlators} vs {medians[0][0]} correlate process(es): correlated {corr / medians[0][1]:.2f}x, "
              f"end to end {rate / medians[0][2]:.2f}x", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Correlation + rule evaluation benchmark on the real stack, with 100 active trigger rules.

Stores N events (2,000 hosts behind 40 switches, a mix of messages) in a PostgreSQL
database (``--database``, default ``opsconductor_bench``) on the server DATABASE_URL names,
against the broker RABBITMQ_URL names, declares the topology and 100 rules, then sends the
events' ids to the ``correlate`` queue in batches of 500, as the normalizer does, and
times worker processes (correlate → evaluate → decide) until every event is correlated
and the evaluate queue is empty. The workers are started and connected before the clock starts.

    .venv/bin/python bench/pipeline.py [--events 50000] [--workers 1] [--runs 3] [--layout procfile|shared]
        [--database opsconductor_bench]
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--workers", type=int, default=1, help="processes per queue group")
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
    args = parser.parse_args()
    base = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/test"
    url = urlunsplit(urlsplit(base)._replace(path="/" + args.database))
    rabbit = os.environ.get("RABBITMQ_URL") or "amqp://guest:guest@127.0.0.1:5672/%2F"
    env = dict(os.environ, DATABASE_URL=url, RABBITMQ_URL=rabbit, LOG_LEVEL="WARNING")
    rates = []
    for run in range(args.runs):
        recreate_database(args.database, base)
        purge_queues(rabbit)
        subprocess.run(
            [str(Path(sys.executable).parent / "opsconductor"), "migrate"], env=env, check=True, capture_output=True
        )
        from dramatiq import Message
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        from app.correlation.query import replace_topology
        from app.db import init_database
        from app.events.envelope import make_item
        from app.events.store import store_batch
        from app.ids import new_id
        from app.models import ProcessedEvent, TriggerRule
        from app.rules.evaluation import columns_of
        from app.rules.triggers import parse_trigger

        init_database(url, application_name="opsconductor-bench")
        rng = random.Random(run)
        hosts = [f"app-{s:02d}-{h:02d}" for s in range(40) for h in range(50)]
        replace_topology({"hosts": {h: f"sw-{h[4:6]}" for h in hosts}}, actor="bench")
        for body in rules(100):
            TriggerRule.create(**columns_of(parse_trigger(body)))
        now = time.time()
        ids = []
        for k in range(0, args.events, 500):
            batch = []
            for i in range(k, min(k + 500, args.events)):
                host = rng.choice(hosts)
                payload = {"source": "bench", "host": host, "service": rng.choice(["web", "db", "cache"]),
                           "severity": rng.choice(["critical", "high", "medium", "low", "info"]),
                           "title": rng.choice(MESSAGES).format(n=rng.randint(1, 999)), "event_type": "alert",
                           "metadata": {"value": rng.randint(0, 100)}, "tags": ["prod"] if i % 2 else ["dev"]}  # fmt: skip
                batch.append(make_item(id=new_id(), source_type="webhook", received_at=now + i * 0.01, payload=payload))
            ids.append(store_batch(batch, window_s=300).event_ids)
        import pika

        total = len({i for b in ids for i in b})
        # The workers boot first (imports, broker connection): the clock measures work, not start-up.
        if args.layout == "procfile":
            # As the Procfile deploys it: correlate and evaluate (+ decide) in their own processes.
            workers = [start_worker(env, queues=("correlate",)) for _ in range(args.workers)]
            workers += [start_worker(env, queues=("evaluate", "decide")) for _ in range(args.workers)]
        else:
            workers = [start_worker(env, queues=("correlate", "evaluate", "decide")) for _ in range(args.workers)]
        conn = pika.BlockingConnection(pika.URLParameters(rabbit))
        channel = conn.channel()
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if channel.queue_declare("correlate", passive=True).method.consumer_count >= args.workers:
                    break
            except pika.exceptions.ChannelClosedByBroker:
                channel = conn.channel()
            time.sleep(0.2)
        conn.close()
        started = time.time()
        broker = RabbitmqBroker(url=rabbit, confirm_delivery=True)
        for batch_ids in ids:
            broker.enqueue(
                Message(queue_name="correlate", actor_name="correlate", args=(batch_ids,), kwargs={}, options={})
            )
        broker.close()
        try:
            while ProcessedEvent.select().where(ProcessedEvent.correlation_id.is_null(False)).count() < total:
                time.sleep(0.2)
            correlated_s = time.time() - started
            conn = pika.BlockingConnection(pika.URLParameters(rabbit))
            channel = conn.channel()
            while channel.queue_declare("evaluate", passive=True).method.message_count:
                time.sleep(0.1)
            conn.close()
            time.sleep(0.5)  # the last evaluate messages in flight
            elapsed = time.time() - started
        finally:
            for w in workers:
                w.stop()
        from app.models import Incident, RuleExecution

        rate = total / elapsed
        rates.append(rate)
        print(f"run {run + 1}: events={total} correlated_in={correlated_s:.1f}s correlated+evaluated_in={elapsed:.1f}s "
              f"rate={rate:.0f} events/s incidents={Incident.select().count()} firings={RuleExecution.select().count()}",
              flush=True)  # fmt: skip
    print(
        f"MEDIAN of {args.runs}: {statistics.median(rates):.0f} events/s correlated and evaluated with 100 rules",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Correlation + rule evaluation benchmark on the real stack, with 100 active trigger rules.

Stores N events (2,000 hosts behind 40 switches; by default events that form many incidents,
see :func:`incident_payloads`, or with ``--shape mix`` a random mix of six messages) in a PostgreSQL
database (``--database``, default ``opsconductor_bench``) on the server DATABASE_URL names,
against the broker RABBITMQ_URL names, declares the topology and 100 rules, then sends the
events' ids to the ``correlate`` queue in batches of 500, as the normalizer does, and
times worker processes (correlate → evaluate → decide) until every event is correlated
and the evaluate queue is empty. The workers are started and connected before the clock starts.

    .venv/bin/python bench/pipeline.py [--events 50000] [--workers 1] [--runs 3] [--layout procfile|shared]
        [--correlators 1,2] [--correlate-only] [--shape incidents|mix] [--database opsconductor_bench]
    .venv/bin/python bench/pipeline.py --stages [--processes 1,2] [--events 50000] [--batch 100] [--runs 3]

``--correlators 1,2`` runs each number of correlate processes in turn and prints the ratio of their
medians: how correlation scales out (``--correlate-only`` times it with no evaluator competing for
the cores). Each run of one configuration uses the same events as that run of the first, and the script
checks they made the same incidents (the same partition of the events); it exits 1 when they did not.

``--stages`` measures each stage alone from raw webhook items (normalize, then correlate, then evaluate:
events/s with 1 and 2 processes of each, peak RSS), then all stages at once; it prints the binding stage
and how many processes of each type 10,000 events/s need (see :mod:`bench.stages`).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
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
        "--shape",
        choices=("incidents", "mix"),
        default="incidents",
        help="incidents: events that form many incidents (problems of one host and service, switch outages, one-offs);"
        " mix: the earlier random mix of six messages, which forms a handful of incidents (nothing to do in parallel)",
    )
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
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="py-spy record (raw, --gil) each correlate process while it works, into DIR (see bench/pyspy.py)",
    )
    parser.add_argument("--processes", default="1,2", help="with --stages: processes per stage, e.g. 1,2")
    parser.add_argument("--batch", type=int, default=100, help="with --stages: raw items per normalize message")
    parser.add_argument(
        "--stage-timeout", type=float, default=300.0, help="with --stages: seconds a stage may take (then: its rate)"
    )
    return parser.parse_args()


#: Letters of the problems' made-up words: never a hexadecimal number (the templates keep them as words).
_CONSONANTS, _VOWELS = "ghklmnprstvz", "iou"
#: Hosts (``app-SS-HH``) behind 40 switches (``sw-SS``), as the topology declares them.
HOSTS = [f"app-{s:02d}-{h:02d}" for s in range(40) for h in range(50)]


def _word(rng: random.Random) -> str:
    return "".join(rng.choice(_CONSONANTS) + rng.choice(_VOWELS) for _ in range(rng.randint(2, 3)))


def incident_payloads(run: int, n: int) -> list[tuple[float, dict[str, Any], str]]:
    """``n`` events that form many incidents, as (seconds from the start, webhook payload, label), in time order.

    One event every 10 ms of event time on average. Most belong to problems of one host and service
    each (5-60 events within two minutes, a message template of made-up words of their own, so no two
    problems share a template or a service); some to switch outages (the switch's trap, then two
    complaints from each of 15-40 hosts behind it); a tenth are one-off events on hosts of their own.
    The label names the problem an event belongs to (``noise-N`` for a one-off).
    """
    rng = random.Random(run)
    duration = n * 0.01
    out: list[tuple[float, dict[str, Any], str]] = []
    problem = 0
    outages = max(1, n // 5000)
    for k in range(outages):
        switch, start = f"sw-{rng.randrange(40):02d}", rng.uniform(0, max(1.0, duration - 120))
        out.append((start, {"source": "bench", "host": switch, "severity": "critical", "title": f"Switch {switch} unreachable",
                            "event_type": "alert", "metadata": {"value": 100}, "tags": ["prod"]}, f"outage-{k}"))  # fmt: skip
        for host in rng.sample([h for h in HOSTS if h[4:6] == switch[3:]], rng.randint(15, 40)):
            for _ in range(2):
                out.append((start + rng.uniform(-20, 120), {"source": "bench", "host": host, "severity": "high",
                            "title": f"Uplink lost on {host}", "event_type": "alert",
                            "metadata": {"value": rng.randint(0, 100)}, "tags": ["prod"]}, f"outage-{k}"))  # fmt: skip
    noise = n // 10
    while len(out) < n - noise:
        problem += 1
        words = [_word(rng) for _ in range(3)]
        host, service = rng.choice(HOSTS), f"{_word(rng)}-{problem}"
        start, severity = rng.uniform(0, max(1.0, duration - 120)), rng.choice(["critical", "high", "medium", "low"])
        tail = rng.choice(["timeout after {n} ms", "lag {n} s", "at {n}% of its limit", "exit code {n}"])
        for _ in range(min(rng.randint(5, 60), n - noise - len(out))):
            title = f"{words[0].capitalize()} {words[1]} {words[2]} {tail.format(n=rng.randint(1, 999))}"
            out.append((start + rng.uniform(0, 120), {"source": "bench", "host": host, "service": service,
                        "severity": severity, "title": title, "event_type": "alert",
                        "metadata": {"value": rng.randint(0, 100)}, "tags": ["prod"] if problem % 2 else ["dev"]},
                        f"problem-{problem}"))  # fmt: skip
    while len(out) < n:
        k = len(out)
        out.append((rng.uniform(0, duration), {"source": "bench", "host": f"misc-{k}", "service": f"misc-{k}",
                    "severity": rng.choice(["medium", "low", "info"]), "title": f"{_word(rng).capitalize()} {_word(rng)} check",
                    "event_type": "alert", "metadata": {"value": rng.randint(0, 100)}, "tags": ["dev"]}, f"noise-{k}"))  # fmt: skip
    out.sort(key=lambda e: e[0])
    return out


def raw_items(run: int, n: int, *, start: float | None = None, shape: str = "mix") -> list[dict[str, Any]]:
    """``n`` webhook items as the edge makes them, one every 10 ms of event time on average.

    ``shape`` "incidents": many incidents (:func:`incident_payloads`); "mix" (what bench/stages.py and
    bench/agent_routing.py time): 2,000 hosts and a mix of six messages at random, which the correlator
    groups into a handful of incidents (all but a few events into one).
    """
    from app.events.envelope import make_item
    from app.ids import new_id

    now = time.time() if start is None else start
    if shape == "incidents":
        return [make_item(id=new_id(), source_type="webhook", received_at=now + t, payload=payload)
                for t, payload, _ in incident_payloads(run, n)]  # fmt: skip
    rng = random.Random(run)
    items = []
    for i in range(n):
        payload = {"source": "bench", "host": rng.choice(HOSTS), "service": rng.choice(["web", "db", "cache"]),
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
    replace_topology({"hosts": {h: f"sw-{h[4:6]}" for h in HOSTS}}, actor="bench")
    for body in rules(100):
        TriggerRule.create(**columns_of(parse_trigger(body)))


def _prepare(
    run: int, args: argparse.Namespace, url: str, base: str, env: dict[str, str], rabbit: str
) -> list[list[str]]:
    """A fresh database holding the run's events, topology and rules; returns the event ids in batches of 500."""
    from app.events.store import store_batch

    prepare_database(args, url, base, env, rabbit)
    items = raw_items(run, args.events, shape=args.shape)
    return [store_batch(items[k : k + 500], window_s=300).event_ids for k in range(0, len(items), 500)]


def _start(args: argparse.Namespace, correlators: int, env: dict[str, str], rabbit: str) -> list[Any]:
    """The worker processes, started and connected (the clock measures work, not start-up)."""
    import pika

    if args.layout == "procfile":
        # As the Procfile deploys it: correlate and evaluate (+ decide) in their own processes.
        workers = [_correlator(env) for _ in range(correlators)]
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


def _correlator(env: dict[str, str]) -> Any:
    """A correlate worker process (as :func:`tests.processes.start_worker` starts one) logging how it decided each
    batch (:mod:`bench.correlator_worker`), for :func:`_outcomes`."""
    from tests.processes import BIN, Process, reap_retired

    reap_retired()
    argv = [str(BIN / "dramatiq"), "bench.correlator_worker", "--processes", "1", "--threads", "4",
            "--queues", "correlate"]  # fmt: skip
    return Process("worker", argv, env)


def _outcomes(workers: list[Any]) -> Counter[str]:
    """How the correlate workers decided their batches (rehearsed, conflict, unsure, skipped), and the events of
    the conflicts placed as rehearsed (reused) and anew (redone; "same": as rehearsed all the same); see
    :func:`app.correlation.store._count`."""
    counts: Counter[str] = Counter()
    for worker in workers:
        pattern = r"Correlator batch: (\w+)(?: \((\d+) reused, (\d+) redone, (\d+) same\))?"
        for m in re.finditer(pattern, worker.output()):
            counts[m[1]] += 1
            if m[2] is not None:
                counts.update(reused=int(m[2]), redone=int(m[3]), same=int(m[4]))
    return counts


def _process_tree(leader: int) -> list[int]:
    """``leader`` and its descendants (dramatiq's main process forks its worker processes)."""
    pids, k = [leader], 0
    while k < len(pids):
        try:
            children = Path(f"/proc/{pids[k]}/task/{pids[k]}/children").read_text().split()
        except OSError:
            children = []
        pids += [int(c) for c in children]
        k += 1
    return pids


def _cpu_s(pids: list[int]) -> float:
    """CPU seconds (user + system) the processes used so far."""
    ticks, total = os.sysconf("SC_CLK_TCK"), 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (proc(5) fields 14 and 15)
    return total / ticks


def _measure(
    args: argparse.Namespace, ids: list[list[str]], workers: list[Any], rabbit: str, correlators: int = 0
) -> tuple[float, float, float]:
    """Send the batches to ``correlate``; returns seconds until all are correlated, and until all are evaluated,
    and the CPU seconds the ``correlators`` first workers (the correlate processes) used until all were correlated."""
    import pika
    from dramatiq import Message
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    from app.models import ProcessedEvent

    total = len({i for b in ids for i in b})
    pids = [pid for w in workers[:correlators] for pid in _process_tree(w.proc.pid)]
    spies = []
    if args.profile is not None:
        from bench.pyspy import record

        spies = record(pids[1:] if len(pids) > 1 else pids, args.profile, 3600, str(Path(sys.executable).parent / "py-spy"),
                       gil=True)  # fmt: skip
    cpu_before = _cpu_s(pids)
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
        cpu_s = _cpu_s(pids) - cpu_before
        for spy in spies:
            spy.send_signal(signal.SIGINT)  # py-spy writes what it sampled and exits
        for spy in spies:
            spy.wait(timeout=60)
        if args.correlate_only:
            return correlated_s, correlated_s, cpu_s
        conn = pika.BlockingConnection(pika.URLParameters(rabbit))
        channel = conn.channel()
        while channel.queue_declare("evaluate", passive=True).method.message_count:
            time.sleep(0.1)
        conn.close()
        time.sleep(0.5)  # the last evaluate messages in flight
        return correlated_s, time.time() - started, cpu_s
    finally:
        for w in workers:
            w.stop()


#: The events grouped by incident, each event named by what it holds (ids differ from run to run).
Partition = frozenset[frozenset[tuple[str, str]]]


def _partition() -> Partition:
    """The run's incidents as sets of events (fingerprint and first receipt: the same events in every run)."""
    from app.models import ProcessedEvent

    groups: dict[str, set[tuple[str, str]]] = {}
    rows = ProcessedEvent.select(ProcessedEvent.correlation_id, ProcessedEvent.fingerprint, ProcessedEvent.title)
    for incident_id, fingerprint, title in rows.tuples():
        groups.setdefault(str(incident_id), set()).add((fingerprint, title))
    return frozenset(frozenset(g) for g in groups.values())


def _differing(one: Partition, other: Partition) -> int:
    """How many events are not in a group the other partition has too."""
    return sum(len(g) for g in one ^ other) // 2


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
    correlated: dict[int, list[float]] = {c: [] for c in configurations}
    rates: dict[int, list[float]] = {c: [] for c in configurations}
    #: Correlate processes' CPU seconds per 20,000 events, by configuration.
    cpu: dict[int, list[float]] = {c: [] for c in configurations}
    mismatches = 0
    # Each run times every configuration in turn on the same events: the machine's load drifts less within a run.
    for run in range(args.runs):
        first: Partition | None = None
        for correlators in configurations:
            ids = _prepare(run, args, url, base, env, rabbit)
            workers = _start(args, correlators, env, rabbit)
            correlated_s, elapsed, cpu_s = _measure(args, ids, workers, rabbit, correlators)
            outcomes = _outcomes(workers[:correlators]) if args.layout == "procfile" else Counter()
            from app.models import Incident, RuleExecution

            total = len({i for b in ids for i in b})
            partition = _partition()
            if first is not None:
                differ = _differing(first, partition)
                print(f"correlators={correlators} run {run + 1}: "
                      + (f"SAME incidents as {configurations[0]} process(es) ({len(partition)})" if not differ else
                         f"DIFFERENT incidents from {configurations[0]} process(es): {differ} events grouped otherwise"
                         f" ({len(partition)} incidents against {len(first)})"), flush=True)  # fmt: skip
                mismatches += bool(differ)
            else:
                first = partition
            correlated[correlators].append(total / correlated_s)
            rates[correlators].append(total / elapsed)
            cpu[correlators].append(cpu_s * 20_000 / total)
            print(f"correlators={correlators} run {run + 1}: events={total} correlated_in={correlated_s:.1f}s "
                  f"({total / correlated_s:.0f}/s) correlated+evaluated_in={elapsed:.1f}s rate={total / elapsed:.0f} events/s "
                  f"correlator_cpu={cpu_s:.1f}s ({cpu[correlators][-1]:.1f}s per 20k events) "
                  f"incidents={Incident.select().count()} firings={RuleExecution.select().count()} "
                  f"load={os.getloadavg()[0]:.1f} outcomes={' '.join(f'{k}:{v}' for k, v in sorted(outcomes.items()))}",
                  flush=True)  # fmt: skip
        for correlators in configurations[1:]:
            print(f"run {run + 1}: ratio {correlators} vs {configurations[0]} correlate process(es): correlated "
                  f"{correlated[correlators][-1] / correlated[configurations[0]][-1]:.2f}x", flush=True)  # fmt: skip
    medians = [(c, statistics.median(correlated[c]), statistics.median(rates[c])) for c in configurations]
    what = "correlated (no evaluator)" if args.correlate_only else "correlated and evaluated with 100 rules"
    for correlators, corr, rate in medians:
        print(f"MEDIAN of {args.runs}, {correlators} correlate process(es): {rate:.0f} events/s {what}; "
              f"correlated alone: {corr:.0f} events/s; correlator CPU {statistics.median(cpu[correlators]):.1f} s "
              "per 20,000 events", flush=True)  # fmt: skip
    for correlators, corr, rate in medians[1:]:
        ratios = sorted(a / b for a, b in zip(correlated[correlators], correlated[configurations[0]], strict=True))
        print(f"RATIO {correlators} vs {medians[0][0]} correlate process(es): correlated {corr / medians[0][1]:.2f}x "
              f"(median of the runs' ratios {statistics.median(ratios):.2f}x), end to end {rate / medians[0][2]:.2f}x",
              flush=True)  # fmt: skip
    if len(configurations) > 1:
        print(
            f"INCIDENTS {'the same' if not mismatches else f'DIFFERENT in {mismatches} run(s)'} with "
            f"{', '.join(map(str, configurations))} correlate process(es)",
            flush=True,
        )
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())

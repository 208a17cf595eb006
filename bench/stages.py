"""Per-stage rates of the event pipeline: normalize, correlate, evaluate, each alone, then all at once.

Run through ``bench/pipeline.py --stages [--processes 1,2]``. Each run starts from a fresh database
(topology and 100 rules, see :mod:`bench.pipeline`) and:

1. **normalize**: the raw items (webhook items, ``--batch`` per message, as the web tier publishes
   arrays) wait in the ``normalize`` queue; N normalize processes start; timed until every raw row is
   stored. Their messages to ``correlate`` wait in its queue, as the normalizer batched them.
2. **evaluate**: the stored events' ids, ``--batch`` per message, wait in the ``evaluate`` queue; N
   evaluate (+ decide) processes drain it with 100 active rules; the rate is the sustained drain rate
   of the queue (messages taken between 90 % and 10 % of the backlog, times events per message: with
   no completion row per event, the end of the work is not visible).
3. **correlate**: N correlate processes drain the normalizer's messages; timed until every stored
   event belongs to an incident.
4. **end to end**: a new database; the raw items are published while N processes of each type run;
   timed until every event is stored, then correlated, and the evaluate queue is empty.

A stage that does not finish within ``--stage-timeout`` seconds is reported at the rate it reached.

Each stage alone has both cores (with RabbitMQ and PostgreSQL): its rate with 1 process and with 2
says what one added process brings, and so how many processes of each type 10,000 events/s need.
Peak RSS of every process is sampled throughout.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from bench.memory import RssSampler
from bench.pipeline import _cpu_s, _process_tree, prepare_database, raw_items
from tests.processes import start_worker
from tests.services import purge_queues

#: Stages in pipeline order, with the queues of their processes.
STAGES: dict[str, tuple[str, ...]] = {
    "normalize": ("normalize",),
    "correlate": ("correlate",),
    "evaluate": ("evaluate", "decide"),
}


def _channel(rabbit: str) -> Any:
    import pika

    return pika.BlockingConnection(pika.URLParameters(rabbit)).channel()


def _ready(channel: Any, queue: str) -> int:
    return channel.queue_declare(queue, passive=True).method.message_count


def _wait(predicate: Callable[[], bool], *, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _start(env: dict[str, str], stage: str, processes: int, rabbit: str) -> list[Any]:
    """``processes`` workers of ``stage``, each connected to its queue before this returns."""
    workers = [start_worker(env, queues=STAGES[stage]) for _ in range(processes)]
    try:
        channel = _channel(rabbit)
        queue = STAGES[stage][0]
        _wait(
            lambda: channel.queue_declare(queue, passive=True).method.consumer_count >= processes,
            timeout_s=60,
            what=f"{processes} consumers of {queue}",
        )
        channel.connection.close()
    except BaseException:
        for w in workers:  # not left running (they would take the next run's messages)
            w.stop()
        raise
    return workers


def _publish(rabbit: str, items: list[dict[str, Any]], batch: int) -> None:
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    from app.publishing import normalize_message

    broker = RabbitmqBroker(url=rabbit, confirm_delivery=True)
    for k in range(0, len(items), batch):
        broker.enqueue(normalize_message(items[k : k + batch]))
    broker.close()


#: Events received before this instant are history (bench/growth.py): the counts leave them out.
SINCE: list[float] = [0.0]


def _counts() -> tuple[int, int, int]:
    """(raw rows, stored events, stored events not yet in an incident) received since :data:`SINCE`."""
    from app.db import database

    row = database.execute_sql(
        "SELECT (SELECT count(*) FROM events.raw_events WHERE received_at >= to_timestamp(%s)), count(*),"
        " count(*) FILTER (WHERE correlation_id IS NULL) FROM events.processed_events"
        " WHERE occurred_at >= to_timestamp(%s)",  # the bench's items carry no time of their own: indexed
        (SINCE[0], SINCE[0]),
    ).fetchone()
    return int(row[0]), int(row[1]), int(row[2])


def _drain_rate(channel: Any, queue: str, events_per_message: float, timeout_s: float) -> float:
    """Events/s taken from ``queue`` while its backlog fell from 90 % to 10 % (sustained, not the tail)."""
    total = _ready(channel, queue)
    marks: dict[float, float] = {}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready = _ready(channel, queue)
        now = time.monotonic()
        for share in (0.9, 0.1):
            if share not in marks and ready <= total * share:
                marks[share] = now
        if 0.1 in marks:
            break
        time.sleep(0.02)
    else:
        raise TimeoutError(f"{queue} did not drain")
    taken = total * 0.8 * events_per_message
    return taken / max(marks[0.1] - marks.get(0.9, marks[0.1]), 1e-3)


def _timed(count: Callable[[], int], target: int, timeout_s: float) -> float:
    """Events/s until ``count()`` reaches ``target``; past ``timeout_s``, the rate reached so far (and a warning)."""
    started = time.monotonic()
    deadline = started + timeout_s
    done = count()
    while done < target and time.monotonic() < deadline:
        time.sleep(0.05)
        done = count()
    elapsed = time.monotonic() - started
    if done < target:
        print(f"  (timed out after {elapsed:.0f} s at {done} of {target} events: the rate so far)", flush=True)
    return done / elapsed


def _stored_ids(batch: int) -> list[list[str]]:
    from app.db import database

    rows = database.execute_sql(
        "SELECT id::text FROM events.processed_events WHERE occurred_at >= to_timestamp(%s) ORDER BY received_at",
        (SINCE[0],),
    ).fetchall()
    ids = [r[0] for r in rows]
    return [ids[k : k + batch] for k in range(0, len(ids), batch)]


def _send(rabbit: str, queue: str, batches: list[list[str]]) -> None:
    from dramatiq import Message
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    broker = RabbitmqBroker(url=rabbit, confirm_delivery=True)
    for ids in batches:
        broker.enqueue(Message(queue_name=queue, actor_name=queue, args=(ids,), kwargs={}, options={}))
    broker.close()


def _profile(args: argparse.Namespace, pids: list[int]) -> list[Any]:
    """With ``--profile DIR``, py-spy (raw, GIL-holding samples) on the worker processes ``pids`` (not their leader)."""
    if getattr(args, "profile", None) is None:
        return []
    import sys
    from pathlib import Path

    from bench.pyspy import record

    return record(pids[1:] or pids, args.profile, 3600, str(Path(sys.executable).parent / "py-spy"), gil=True)


def _stop_profile(spies: list[Any]) -> None:
    """py-spy writes what it sampled when interrupted."""
    import signal

    for spy in spies:
        spy.send_signal(signal.SIGINT)
    for spy in spies:
        spy.wait(timeout=60)


def _stage(env: dict[str, str], stage: str, processes: int, rabbit: str, rss: dict[str, float]) -> Any:
    """Start ``stage``'s processes; the caller times them inside the returned context, which stops them."""
    from contextlib import contextmanager

    @contextmanager
    def running() -> Any:
        workers = _start(env, stage, processes, rabbit)
        sampler = RssSampler({f"{stage}{i}": w for i, w in enumerate(workers)}).start()
        try:
            yield workers
        finally:
            sampler.stop()
            rss[stage] = max(sampler.peaks_mib().values())
            for w in workers:
                w.stop()

    return running()


def stages_run(
    run: int, args: argparse.Namespace, processes: int, ctx: dict[str, Any], *, fresh: bool = True
) -> dict[str, float]:
    """One run of every stage alone with ``processes`` processes each; events/s by stage and peak RSS (MiB).

    Parameters:
      fresh: Start from a new database (else: on top of what it holds, bench/growth.py).
    """
    env, rabbit = ctx["env"], ctx["rabbit"]
    if fresh:
        prepare_database(args, ctx["url"], ctx["base"], env, rabbit)
    SINCE[0] = time.time() - 1
    items = raw_items(run, args.events, start=SINCE[0] + 1)
    n = len(items)
    out: dict[str, float] = {}
    rss: dict[str, float] = {}
    channel = _channel(rabbit)

    _publish(rabbit, items, args.batch)
    with _stage(env, "normalize", processes, rabbit, rss):
        out["normalize"] = _timed(lambda: _counts()[0], n, args.stage_timeout)
    stored = _counts()[1]

    # The rule evaluator takes the stored events in the normalizer's batches (correlated or not: it reads
    # the incident only to skip flapping ones), so it is timed before the correlator, which is slower.
    batches = _stored_ids(args.batch)
    _send(rabbit, "evaluate", batches)
    with _stage(env, "evaluate", processes, rabbit, rss):
        out["evaluate"] = _drain_rate(channel, "evaluate", stored / max(len(batches), 1), args.stage_timeout)
        _wait(lambda: _ready(channel, "evaluate") == 0, timeout_s=args.stage_timeout, what="the evaluate queue empty")

    # The normalizer's messages to ``correlate`` have waited in its queue.
    with _stage(env, "correlate", processes, rabbit, rss) as workers:
        pids = [pid for w in workers for pid in _process_tree(w.proc.pid)]
        spies = _profile(args, pids)
        cpu_before = _cpu_s(pids)
        out["correlate"] = _timed(lambda: stored - _counts()[2], stored, args.stage_timeout)
        out["correlate_cpu_s_per_20k"] = (_cpu_s(pids) - cpu_before) * 20_000 / max(stored, 1)
        _stop_profile(spies)
    channel.connection.close()
    purge_queues(rabbit)
    out["stored_events"] = stored
    out.update({f"rss_{k}": v for k, v in rss.items()})
    return out


def end_to_end_run(run: int, args: argparse.Namespace, processes: int, ctx: dict[str, Any]) -> dict[str, float]:
    """Raw items published while every stage runs (``processes`` of each): stored, correlated and evaluated/s."""
    env, rabbit = ctx["env"], ctx["rabbit"]
    prepare_database(args, ctx["url"], ctx["base"], env, rabbit)
    SINCE[0] = 0.0
    items = raw_items(run, args.events)
    n = len(items)
    workers: dict[str, Any] = {}
    try:
        for stage in STAGES:
            workers.update({f"{stage}{i}": w for i, w in enumerate(_start(env, stage, processes, rabbit))})
        channel = _channel(rabbit)
        sampler = RssSampler(workers).start()
    except BaseException:
        for w in workers.values():
            w.stop()
        raise
    try:
        started = time.monotonic()
        _publish(rabbit, items, args.batch)
        published_s = time.monotonic() - started
        stored_rate = _timed(lambda: _counts()[0], n, args.stage_timeout)
        stored = _counts()[1]
        correlated_rate = _timed(lambda: stored - _counts()[2], stored, args.stage_timeout)
        _wait(lambda: _ready(channel, "evaluate") == 0, timeout_s=args.stage_timeout, what="the evaluate queue empty")
        done_s = time.monotonic() - started
    finally:
        sampler.stop()
        channel.connection.close()
        for w in workers.values():
            w.stop()
        purge_queues(rabbit)
    peaks = sampler.peaks_mib()
    return {
        "published": n / published_s,
        "stored": stored_rate,
        "correlated": min(correlated_rate, stored_rate),
        "end_to_end": stored / done_s,
        **{f"rss_all_{stage}": max(v for k, v in peaks.items() if k.startswith(stage)) for stage in STAGES},
    }


def main(args: argparse.Namespace, ctx: dict[str, Any]) -> None:
    """Print each stage's median rate per number of processes, the binding stage, and processes per 10,000/s."""
    configurations = [int(n) for n in args.processes.split(",")]
    table: dict[int, dict[str, float]] = {}
    for processes in configurations:
        runs = []
        for run in range(args.runs):
            figures = stages_run(run, args, processes, ctx)
            figures.update(end_to_end_run(run, args, processes, ctx))
            runs.append(figures)
            print(f"processes={processes} run {run + 1}: "
                  + ", ".join(f"{k} {v:,.0f}" for k, v in figures.items()), flush=True)  # fmt: skip
        table[processes] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    for processes, figures in table.items():
        print(f"MEDIAN of {args.runs}, {processes} process(es) per stage ({args.events} events, {args.batch} per "
              f"normalize message, 100 rules):", flush=True)  # fmt: skip
        for stage in STAGES:
            print(f"  {stage:<10} {figures[stage]:>9,.0f} events/s alone   peak RSS {figures[f'rss_{stage}']:.0f} MiB")
        print(
            f"  correlate CPU: {figures['correlate_cpu_s_per_20k']:.2f} s per 20,000 events (its processes, user + system)"
        )
        print(f"  all stages at once: {figures['end_to_end']:,.0f} events/s stored, correlated and evaluated "
              f"(stored {figures['stored']:,.0f}/s, correlated {figures['correlated']:,.0f}/s, published "
              f"{figures['published']:,.0f}/s); peak RSS "
              + ", ".join(f"{s} {figures[f'rss_all_{s}']:.0f} MiB" for s in STAGES))  # fmt: skip
        binding = min(STAGES, key=lambda s: figures[s])
        print(f"  binding stage: {binding}")
    first = table[configurations[0]]
    for processes in configurations[1:]:
        added = processes - configurations[0]
        for stage in STAGES:
            per_added = (table[processes][stage] - first[stage]) / added
            print(f"  {stage}: {configurations[0]} -> {processes} processes: x{table[processes][stage] / first[stage]:.2f} "
                  f"({per_added:+,.0f} events/s per added process)")  # fmt: skip
    for stage in STAGES:
        per_process = first[stage] / configurations[0]
        print(f"  {stage}: {per_process:,.0f} events/s per process -> {10_000 / per_process:.1f} per 10,000 events/s")

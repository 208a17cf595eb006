"""The correlator in one process, on the pipeline bench's events: CPU, time under the lock, the server's CPU, the collector.

A/B runs of correlator code on a shared machine: :func:`app.correlation.store.correlate_batch` is called on
the batches of :mod:`bench.pipeline` (the ``incidents`` shape, stored in ``--database``) one after the other,
in this process, booted as a worker (:mod:`app.worker`: its garbage collector settings). It prints this
process's CPU seconds, the wall time spent in the decisions under the lock, the CPU of this process's
PostgreSQL backend, the collector's time, and hashes of the partition and of the correlations' reasons (an
A/B must give the same).

``--processes 2`` stands for two correlate processes: batches go in turn to two held-incident caches
(:class:`app.correlation.held.HeldIncidents`), none rehearsed, as two processes' batches are when each
changes the incidents the other's next batch relates to (their rehearsals do not stand). The time under the
lock is then the serialized part: what bounds two processes' rate.

    RABBITMQ_URL=... .venv/bin/python bench/correlator_inprocess.py [--events 20000] [--processes 1|2]
        [--database opsconductor_bench] [--profile FILE]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import os
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _backend_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of the PostgreSQL backend ``pid`` (a server on this machine)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--processes", type=int, choices=(1, 2), default=1)
    parser.add_argument("--database", default="opsconductor_bench", help="dropped and created")
    parser.add_argument("--run", type=int, default=0, help="the events' seed (bench/pipeline.py's run)")
    parser.add_argument("--profile", type=Path, default=None, help="cProfile statistics of the batches, to FILE")
    args = parser.parse_args()
    base = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/test"
    url = urlunsplit(urlsplit(base)._replace(path="/" + args.database))
    rabbit = os.environ.get("RABBITMQ_URL") or "amqp://guest:guest@127.0.0.1:5672/%2F"
    env = dict(os.environ, DATABASE_URL=url, RABBITMQ_URL=rabbit, LOG_LEVEL="WARNING")
    from bench import pipeline

    shape = argparse.Namespace(database=args.database, events=args.events, shape="incidents")
    batches = pipeline._prepare(args.run, shape, url, base, env, rabbit)
    os.environ.update(DATABASE_URL=url, RABBITMQ_URL=rabbit)
    import app.worker  # noqa: F401 - boots as a worker does (its collector's settings)
    from app.correlation import store
    from app.correlation.held import HeldIncidents
    from app.db import database, in_transaction
    from app.models import EventCorrelation

    caches = [HeldIncidents() for _ in range(args.processes)]
    locked_s = [0.0]
    decide = store._decide

    def timed(*a: Any, **kw: Any) -> Any:
        started = time.perf_counter()
        try:
            return decide(*a, **kw)
        finally:
            locked_s[0] += time.perf_counter() - started

    store._decide = timed  # type: ignore[assignment]
    if args.processes > 1:
        store._rehearsing = lambda: False  # type: ignore[assignment]
    collecting = [0.0, 0.0]

    def collector(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            collecting[1] = time.perf_counter()
        else:
            collecting[0] += time.perf_counter() - collecting[1]

    gc.callbacks.append(collector)
    backend = in_transaction(lambda: database.execute_sql("SELECT pg_backend_pid()").fetchone()[0])
    profile = None
    if args.profile is not None:
        import cProfile

        profile = cProfile.Profile()
    backend_before, started, cpu_before = _backend_cpu_s(backend), time.perf_counter(), time.process_time()
    if profile is not None:
        profile.enable()
    for k, batch in enumerate(batches):
        store._held = caches[k % args.processes]
        store.correlate_batch(batch, claim=store.CLAIM)
    if profile is not None:
        profile.disable()
        profile.dump_stats(args.profile)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_before
    server = _backend_cpu_s(backend) - backend_before
    groups = sorted(sorted(g) for g in pipeline._partition())
    reasons = in_transaction(
        lambda: sorted(r for (r,) in EventCorrelation.select(EventCorrelation.correlation_reason).tuples())
    )
    print(f"processes={args.processes} events={args.events} wall={wall:.2f}s cpu={cpu:.2f}s "
          f"under_lock={locked_s[0]:.2f}s server_cpu={server:.2f}s gc={collecting[0]:.2f}s "
          f"rate={args.events / wall:.0f}/s incidents={len(groups)} "
          f"partition={hashlib.sha1(repr(groups).encode()).hexdigest()[:12]} "
          f"reasons={hashlib.sha1(chr(10).join(reasons).encode()).hexdigest()[:12]} outcomes={dict(store.OUTCOMES)}",
          flush=True)  # fmt: skip


if __name__ == "__main__":
    main()

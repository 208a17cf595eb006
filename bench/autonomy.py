"""Latency of autonomous response on the real stack: webhook accepted → first action started.

Starts gunicorn (web), a dramatiq worker for normalize → correlate → evaluate → decide and a
``dramatiq-gevent`` executor against RABBITMQ_URL and a PostgreSQL database ``opsconductor_bench``
next to DATABASE_URL. One trigger rule fires for every event; its low-risk playbook's first step
calls a local HTTP server, which stamps the arrival. Events are sent at a steady rate (default
100 firings/min); the latency of each is the arrival at the server minus the moment the 202 came
back (both clocks are this machine's).

    .venv/bin/python bench/autonomy.py [--firings 100] [--per-minute 100] [--runs 3] [--database opsconductor_bench]
        [--pipeline workers|procfile [--no-nice]] [--profile DIR]

Also prints each hop's latency (from the rows' stamps), each process's CPU per firing (user + system
over the sending and draining, whatever else the machine runs) and peak resident memory (RSS).
``--profile DIR`` samples (on CPU) the executor's and the pipeline's worker processes with py-spy while the
firings are sent (``pip install py-spy``; DIR/<process>-<run>.txt, raw stacks) and prints their
hottest frames. ``--pipeline procfile`` runs each stage as the Procfile does (its own process, its ``nice``;
``--no-nice`` drops that) instead of one worker for the stages and one executor.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.memory import RssSampler, describe  # noqa: E402
from bench.pyspy import cpu_seconds  # noqa: E402
from bench.webhook import procfile  # noqa: E402
from tests.http import request  # noqa: E402
from tests.processes import Process, start_web, start_worker  # noqa: E402
from tests.services import purge_queues, recreate_database  # noqa: E402


class Recorder(BaseHTTPRequestHandler):
    hits: dict[str, float] = {}

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        Recorder.hits.setdefault(self.path.rsplit("/", 1)[-1], time.time())
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"ok": true}')

    def log_message(self, *args: object) -> None:
        pass


#: The Procfile's process types that ``--pipeline procfile`` runs (each stage its own process, as deployed).
PIPELINE = ("normalize", "correlate", "evaluate", "decide", "execute", "rollback")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


#: Each hop's stamps, in order: the webhook's 202 (``received_at``), stored (the normalizer's transaction
#: start), fired (the evaluator's RuleExecution), decided, execution started (the executor).
STAGES_SQL = """
SELECT e.event_data->>'nonce', extract(epoch FROM e.received_at), extract(epoch FROM e.processed_at),
       extract(epoch FROM r.started_at), extract(epoch FROM d.created_at), extract(epoch FROM x.started_at)
FROM events.processed_events e
JOIN rules.rule_executions r ON r.triggering_event_id = e.id
LEFT JOIN autonomous.decision_log d ON d.rule_execution_id = r.id
LEFT JOIN autonomous.executions x ON x.rule_execution_id = r.id
"""
STAGES = ("normalize", "correlate+evaluate", "decide", "execute pickup", "first step")


def stage_latencies(url: str, hits: dict[str, float]) -> dict[str, tuple[float, float]]:
    """Each hop's (p50, p99) in seconds, from the rows' stamps and the target's arrival times."""
    import psycopg2

    conn = psycopg2.connect(url)
    with conn.cursor() as cur:
        cur.execute(STAGES_SQL)
        rows = cur.fetchall()
    conn.close()
    gaps: dict[str, list[float]] = {name: [] for name in STAGES}
    for nonce, *stamps in rows:
        if nonce not in hits or None in stamps:
            continue
        marks = [float(t) for t in stamps] + [hits[nonce]]
        for name, a, b in zip(STAGES, marks, marks[1:], strict=False):
            gaps[name].append(b - a)
    return {name: (percentile(v, 0.5), percentile(v, 0.99)) for name, v in gaps.items() if v}


def group_pids(pgid: int) -> list[int]:
    """Every process of the process group ``pgid`` (a worker's master and the processes it forked)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rpartition(")")[2].split()[2]) == pgid:
                    pids.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
    return pids


def group_cpu(groups: dict[str, int]) -> dict[str, float]:
    """CPU seconds (user + system) used so far by each named process group."""
    out = dict.fromkeys(groups, 0.0)
    for name, pgid in groups.items():
        for pid in group_pids(pgid):
            try:
                out[name] += cpu_seconds([pid])
            except OSError:  # it ended between listing and reading
                continue
    return out


def hottest(path: Path, top: int = 20) -> str:
    """The frames of a ``py-spy record --format raw`` file with the most samples: inclusive and own."""
    import collections

    total, inclusive, own = 0, collections.Counter[str](), collections.Counter[str]()
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count, frames = int(count_text), stack.split(";")
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return f"  {path.name}: no samples"
    lines = [f"  {path.name}: {total} samples; inclusive:"]
    lines += [f"    {100 * n / total:5.1f} %  {f}" for f, n in inclusive.most_common(top)]
    lines.append("  own:")
    lines += [f"    {100 * n / total:5.1f} %  {f}" for f, n in own.most_common(top)]
    return "\n".join(lines)


def one_run(
    args: argparse.Namespace, env: dict[str, str], target: str, run: int
) -> tuple[float, float, int, dict[str, float]]:
    from app.auth import create_key
    from app.db import init_database

    init_database(env["DATABASE_URL"], application_name="bench", max_connections=2)
    key = create_key(role="admin", name="bench")
    if args.pipeline == "procfile":
        workers = {name: Process(name, argv, env) for name, argv in procfile(PIPELINE, nice=not args.no_nice).items()}
    else:
        workers = {
            "pipeline": start_worker(env, queues=("normalize", "correlate", "evaluate", "decide"), threads=8),
            "execute": start_worker(env, queues=("execute", "rollback"), threads=100, gevent=True),
        }
    web, base = start_web(env)
    rss = RssSampler({"web": web, **workers}).start()
    try:
        request("PUT", f"{base}/api/v1/topology", key=key, json={"criticality": {"bench-host": "low"}})
        rule = request(
            "POST",
            f"{base}/api/v1/rules/triggers",
            key=key,
            json={
                "name": "bench firing",
                "conditions": {"event_type": "bench_firing"},
                "max_triggers_per_hour": 100_000,
            },
        )
        request("POST", f"{base}/api/v1/rules/responses", key=key, json={
            "name": "bench playbook", "response_type": "investigation", "trigger_rule_id": rule.json()["rule_id"],
            "actions": [{"id": "hit", "type": "diagnostic",
                         "http": {"method": "POST", "url": f"{target}/hit/{{{{ event.metadata.nonce }}}}"}}]})  # fmt: skip
        time.sleep(3)  # the evaluator refreshes its rules within 2 s
        accepted: dict[str, float] = {}
        refused: dict[int, int] = {}  # a webhook's status other than 202, and how often
        interval = 60.0 / args.per_minute
        groups = {"web": web.proc.pid, **{name: worker.proc.pid for name, worker in workers.items()}}
        cpu_before = group_cpu(groups)
        spies = []
        if args.profile:
            out = Path(args.profile)
            out.mkdir(parents=True, exist_ok=True)
            seconds = max(2, int(args.firings * interval))
            for name in workers:
                for pid in group_pids(groups[name]):
                    if pid == groups[name]:
                        continue  # the master only waits for its workers
                    argv = [args.py_spy, "record", "--format", "raw", "--nonblocking", "-d", str(seconds),
                            "-r", "100", "-o", str(out / f"{name}-{run + 1}-{pid}.txt"), "-p", str(pid)]  # fmt: skip
                    spies.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        start = time.monotonic()
        for i in range(args.firings):
            nonce = uuid.uuid4().hex
            reply = request("POST", f"{base}/api/v1/events/webhook", key=key, json={
                "source": "bench", "event_type": "bench_firing", "severity": "high", "host": "bench-host",
                "title": f"bench firing {nonce}", "metadata": {"nonce": nonce}})  # fmt: skip
            if reply.status == 202:
                accepted[nonce] = time.time()
            else:
                refused[reply.status] = refused.get(reply.status, 0) + 1
            time.sleep(max(0.0, start + (i + 1) * interval - time.monotonic()))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(n in Recorder.hits for n in accepted):
            time.sleep(0.2)
        latencies = [Recorder.hits[n] - t for n, t in accepted.items() if n in Recorder.hits]
        missing = len(accepted) - len(latencies)
        cpu_after = group_cpu(groups)
        rss.stop()
        for spy in spies:
            spy.wait(60)
        if args.profile:
            for path in sorted(Path(args.profile).glob(f"*-{run + 1}-*.txt")):
                print(hottest(path), flush=True)
        fired = max(1, len(latencies))
        print("  CPU ms per firing: " + ", ".join(
            f"{name} {1000 * (cpu_after[name] - cpu_before[name]) / fired:.1f}" for name in groups))  # fmt: skip
        if refused:
            print(f"  webhook refused: {refused} (of {args.firings})")
        if not latencies:
            raise SystemExit(f"no firing reached the target ({len(accepted)} accepted, {missing} without an action)")
        stages = stage_latencies(env["DATABASE_URL"], Recorder.hits)
        print(
            "  per hop p50/p99 ms: " + ", ".join(f"{k} {a * 1000:.0f}/{b * 1000:.0f}" for k, (a, b) in stages.items())
        )
        return percentile(latencies, 0.5), percentile(latencies, 0.99), missing, rss.peaks_mib()
    finally:
        rss.stop()
        web.stop()
        for worker in workers.values():
            worker.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--firings", type=int, default=100)
    parser.add_argument("--per-minute", type=float, default=100.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--database", default="opsconductor_bench", help="the database (dropped and created) on DATABASE_URL's server"
    )
    parser.add_argument(
        "--profile", metavar="DIR", help="sample the executor and pipeline workers with py-spy into DIR"
    )
    parser.add_argument(
        "--pipeline",
        choices=("workers", "procfile"),
        default="workers",
        help="workers: one worker for normalize..decide and one executor; procfile: the Procfile's process types",
    )
    parser.add_argument("--no-nice", action="store_true", help="--pipeline procfile without the Procfile's nice -n N")
    parser.add_argument("--py-spy", default=str(Path(sys.executable).parent / "py-spy"), help="the py-spy executable")
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    target = f"http://127.0.0.1:{server.server_address[1]}"
    base = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/test"
    url = urlunsplit(urlsplit(base)._replace(path="/" + args.database))
    rabbit = os.environ.get("RABBITMQ_URL") or "amqp://guest:guest@127.0.0.1:5672/%2F"
    env = dict(os.environ, DATABASE_URL=url, RABBITMQ_URL=rabbit, LOG_LEVEL="WARNING", AUTONOMY_MODE="auto",
               BUSINESS_HOURS="00:00-00:00")  # fmt: skip
    results = []
    for run in range(args.runs):
        recreate_database(args.database, base)
        purge_queues(rabbit)
        subprocess.run([str(Path(sys.executable).parent / "opsconductor"), "migrate"], env=env, check=True,
                       capture_output=True)  # fmt: skip
        Recorder.hits = {}
        p50, p99, missing, peaks = one_run(args, env, target, run)
        results.append((p50, p99, missing))
        print(
            f"run {run + 1}: p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, {missing} firings without an action;"
            f" peak RSS: {describe(peaks)}",
            flush=True,
        )
    summary = {
        "firings": args.firings,
        "per_minute": args.per_minute,
        "p50_ms_median": round(statistics.median(r[0] for r in results) * 1000),
        "p99_ms_median": round(statistics.median(r[1] for r in results) * 1000),
        "missing": [r[2] for r in results],
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())

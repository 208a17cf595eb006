"""Webhook benchmark on the real stack: accepted events/s, stored events/s, accept-to-stored latency.

Starts its own web (gunicorn, gevent worker) and normalize worker processes
against RABBITMQ_URL and a PostgreSQL database ``opsconductor_bench`` next to
DATABASE_URL, drives them with wrk (a separate process, 64 connections), then
waits for the backlog to drain and reads the latencies from the stored rows
(``processed_at - received_at``, both stamped on this machine).

    .venv/bin/python bench/webhook.py [--seconds 15] [--runs 3] [--web-workers 2] [--normalizers 2]
        [--mode single|array|both] [--stack normalize|full|web] [--compare-bare] [--database opsconductor_bench]
        [--no-drain] [--no-nice] [--profile DIR [--profile-gil]]

``--stack full`` runs every process type of the Procfile beside ``web`` (normalize, correlate,
evaluate, decide, execute, rollback, notify, clock, syslog, snmptrap), with the Procfile's commands
(``--no-nice`` drops their ``nice -n N``, to measure what the lower priority of the backlog stages does). ``--compare-bare`` serves
bench/falcon_bare.py (Falcon, orjson, 202: none of the product) with the same gunicorn settings and
workers, beside the same processes, just before each run, and reports ``ratio_to_bare``.

Each run also reports the web workers' CPU time per request (``web_cpu_ms_per_request``, and
``bare_cpu_ms_per_request``): on a machine shared with other work, requests/s swing with what else
runs, while the CPU a request costs holds. ``web_worker_balance`` is the least busy worker's CPU over the
busiest's (wrk opens its connections once and keeps them, so a worker not yet serving then would get none:
each server is driven only once all its workers have loaded the app). ``group_requests``, ``group_publish_ms``
and ``commit_wait_ms`` say where a request waits (app.publishing.STATS, written by each worker as it exits):
requests per group commit, the ms a group's publish takes until RabbitMQ's confirm reaches the publisher
greenlet, the ms a request waits in publish(). ``--no-drain`` measures the web tier alone (no wait for the
stored figures); ``web_cores`` and ``stack_cores`` say how many of the machine's cores the web workers and the
other processes of the stack (the normalizer storing what was accepted, and the rest) kept busy during the run:
they share the cores with RabbitMQ, PostgreSQL and wrk. ``--profile DIR`` samples the product's (and bare
Falcon's) workers with py-spy and prints the share of each stage (bench/pyspy.py; ``--profile-gil`` counts only
Python's own work).

Needs wrk (Debian package ``wrk``). Prints one line per run and the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import pyspy  # noqa: E402
from tests.processes import Process, free_port, wait_http  # noqa: E402
from tests.services import recreate_database  # noqa: E402

BENCH_DB = "opsconductor_bench"

LUA = """
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  math.randomseed(os.time() * 100 + tid)
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(key)s"
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, nil, nil, %(body)s)
end
"""


def single_body() -> str:
    # Each event differs (title carries a counter) so nothing is folded by de-duplication.
    return (
        '\'{"source":"bench","severity":"high","host":"web-\' .. (n % 500) .. \'","service":"nginx",'
        '"title":"CPU high \' .. tid .. \'-\' .. n .. \'-\' .. math.random(1000000000) .. \'","metadata":{"cpu":97.5}}\''
    )


def array_body(size: int) -> str:
    one = '{"source":"bench","severity":"low","host":"h-\' .. i .. \'","title":"batch \' .. n .. \'-\' .. r .. \' item \' .. i .. \'"}'
    return f"(function() local t = {{}} local r = tid .. '-' .. math.random(1000000000) for i = 1, {size} do t[i] = '{one}' end return '[' .. table.concat(t, ',') .. ']' end)()"


def database_urls(name: str = BENCH_DB) -> tuple[str, str]:
    base = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/test"
    return base, urlunsplit(urlsplit(base)._replace(path="/" + name))


def reset_database(base: str, name: str = BENCH_DB) -> None:
    recreate_database(name, base)


def stored_stats(url: str) -> dict[str, float]:
    import psycopg2

    conn = psycopg2.connect(url)
    with conn.cursor() as cur:
        cur.execute(
            "SELECT count(*), extract(epoch FROM max(processed_at) - min(received_at)),"
            " percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM processed_at - received_at)),"
            " percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM processed_at - received_at))"
            " FROM events.processed_events"
        )
        count, span, p50, p99 = cur.fetchone()
    conn.close()
    return {"count": count or 0, "span": float(span or 0), "p50": float(p50 or 0), "p99": float(p99 or 0)}


def raw_count(url: str) -> int:
    import psycopg2

    conn = psycopg2.connect(url)
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM events.raw_events")
        (count,) = cur.fetchone()
    conn.close()
    return count


def parse_wrk(output: str) -> dict[str, float]:
    def ms(value: str) -> float:
        number, unit = re.match(r"([\d.]+)([a-z]+)", value).groups()  # type: ignore[union-attr]
        return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    # Anchored: "+/- Stdev" columns end in percentages too ("68.50%" would match "50%").
    p50 = ms(re.search(r"^\s+50%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    p99 = ms(re.search(r"^\s+99%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99, "errors": float(non2xx.group(1)) if non2xx else 0.0}


#: The Procfile's process types besides ``web`` and ``release`` (and the all-queues ``worker`` and the agents) that
#: ``--stack full`` starts, with their commands as the Procfile writes them.
FULL_STACK = ("normalize", "correlate", "evaluate", "decide", "execute", "rollback", "notify", "clock", "syslog",
              "snmptrap")  # fmt: skip


def procfile(names: Sequence[str], *, nice: bool = True) -> dict[str, list[str]]:
    """The Procfile's commands of the process types ``names``, as argument lists whose programs are this
    interpreter's (``dramatiq`` -> .venv/bin/dramatiq, ``python`` -> this Python).

    Parameters:
      nice: Keep a leading ``nice -n N`` (the Procfile's CPU priorities); False drops it, for A/B runs.
    """
    bin_dir = Path(sys.executable).parent
    commands = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() in names:
            argv = shlex.split(command)
            prefix = argv[:3] if argv[0] == "nice" else []
            program, *rest = argv[len(prefix) :]
            program = sys.executable if program == "python" else str(bin_dir / program)
            commands[name.strip()] = [*(prefix if nice else []), program, *rest]
    missing = set(names) - set(commands)
    if missing:
        raise SystemExit(f"not in the Procfile: {', '.join(sorted(missing))}")
    return {name: commands[name] for name in names}


def start_background(args: argparse.Namespace, env: dict[str, str]) -> list[Process]:
    """The processes that run beside ``web``: normalize workers (``--stack normalize``), every process type
    (``full``), or none (``web``: the web tier and RabbitMQ alone; accepted events wait in the queue, and are
    purged before the next run)."""
    bin_dir = Path(sys.executable).parent
    if args.stack == "web":
        return []
    if args.stack == "full":
        env = dict(env, SYSLOG_UDP_PORT=str(free_port(socket.SOCK_DGRAM)), SYSLOG_TCP_PORT=str(free_port()),
                   SYSLOG_TLS_PORT=str(free_port()), SNMP_TRAP_PORT=str(free_port(socket.SOCK_DGRAM)))  # fmt: skip
        return [Process(name, argv, env) for name, argv in procfile(FULL_STACK, nice=not args.no_nice).items()]
    argv = [str(bin_dir / "dramatiq"), "app.worker", "--queues", "normalize", "correlate", "--processes", "1",
            "--threads", "4"]  # fmt: skip
    return [Process(f"normalize-{i}", argv, env) for i in range(args.normalizers)]


#: The web process's gunicorn settings, unchanged, and a hook that marks each worker ready once its app is loaded.
READY_CONF = """
import os

from app.http.gunicorn_conf import *  # noqa: F403 - the web process's settings


def post_worker_init(worker):
    open(os.path.join(%(dir)r, f"ready-{os.getpid()}"), "w").close()


def worker_exit(server, worker):
    import dataclasses
    import json
    import sys

    publishing = sys.modules.get("app.publishing")  # not loaded by bare Falcon
    if publishing is not None:
        with open(os.path.join(%(dir)r, f"stats-{os.getpid()}.json"), "w") as f:
            json.dump(dataclasses.asdict(publishing.STATS), f)
"""


def group_commit_stats(ready: Path) -> dict[str, float]:
    """The product workers' group commits (app.publishing.STATS, written as each exits): requests per group, ms
    per group's publish and confirm, ms a request waited in publish() for a group and its confirm."""
    totals = {"groups": 0.0, "requests": 0.0, "publish_s": 0.0, "wait_s": 0.0}
    for path in ready.glob("stats-*.json"):
        for name, value in json.loads(path.read_text()).items():
            totals[name] += value
    if not totals["groups"]:
        return {}
    return {
        "group_requests": totals["requests"] / totals["groups"],
        "group_publish_ms": 1000 * totals["publish_s"] / totals["groups"],
        "commit_wait_ms": 1000 * totals["wait_s"] / totals["requests"],
    }


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants alive now (a dramatiq leader's worker processes)."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        pids.append(current)
        todo += [int(child) for child in children]
    return pids


def cpu_seconds(pids: list[int]) -> float:
    """:func:`bench.pyspy.cpu_seconds` of the processes still alive (one that exited meanwhile counts nothing)."""
    total = 0.0
    for pid in pids:
        try:
            total += pyspy.cpu_seconds([pid])
        except OSError:
            continue
    return total


def wait_workers(ready: Path, count: int, web: Process, timeout: float = 60.0) -> None:
    """Wait until ``count`` workers have loaded the app.

    The first worker to answer /healthz would otherwise accept all of wrk's connections, opened at once and
    kept alive for the whole run, while the other still loads the product (bare Falcon loads in a blink, the
    product does not): the run then measured one worker against bare Falcon's two.
    """
    deadline = time.monotonic() + timeout
    while len(list(ready.glob("ready-*"))) < count:
        if time.monotonic() > deadline or not web.alive():
            raise RuntimeError(f"{count} web workers not ready within {timeout:.0f} s:\n{web.output()[-3000:]}")
        time.sleep(0.1)


def drive(args: argparse.Namespace, app: str, env: dict[str, str], key: str, size: int, *, profile: Path | None = None,
          background: Sequence[Process] = ()) -> tuple[dict[str, float], int]:  # fmt: skip
    """Serve ``app`` with gunicorn (the web process's settings) and load it with wrk: wrk's figures, requests sent.

    With ``profile``, py-spy samples each worker while wrk runs and writes its stacks there. The CPU the
    ``background`` processes (and their children) used meanwhile is reported too: they share the cores.
    """
    bin_dir = Path(sys.executable).parent
    port = free_port()
    ready = Path(tempfile.mkdtemp(prefix="oc-bench-ready-"))
    conf = ready / "gunicorn_conf.py"
    conf.write_text(READY_CONF % {"dir": str(ready)})
    web = Process("web", [str(bin_dir / "gunicorn"), "-c", str(conf), "-w", str(args.web_workers),
                          "-b", f"127.0.0.1:{port}", app], env)  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", process=web)
        wait_workers(ready, args.web_workers, web)
        body = single_body() if size == 1 else array_body(size)
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
            lua.write(LUA % {"key": key, "body": body})
        workers = pyspy.worker_pids(web.proc.pid)
        cpu_before = [pyspy.cpu_seconds([w]) for w in workers]
        stack = [pid for process in background for pid in process_tree(process.proc.pid)]
        stack_before = cpu_seconds(stack)
        wall_before = time.monotonic()
        spies = (
            pyspy.record(workers, profile, args.seconds - 1, args.py_spy, gil=args.profile_gil)
            if profile is not None
            else []
        )
        out = subprocess.run(["wrk", "-t", "2", "-c", str(args.connections), "-d", f"{args.seconds}s", "--latency",
                              "-s", lua.name, f"http://127.0.0.1:{port}/api/v1/events/webhook"],
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
        per_worker = [pyspy.cpu_seconds([w]) - before for w, before in zip(workers, cpu_before, strict=True)]
        cpu = sum(per_worker)
        stack_cpu = cpu_seconds(stack) - stack_before
        wall = time.monotonic() - wall_before
        os.unlink(lua.name)
        for spy in spies:
            spy.wait(30)
    finally:
        web.stop()
        commits = group_commit_stats(ready)
        shutil.rmtree(ready, ignore_errors=True)
    try:
        http = parse_wrk(out)
    except (AttributeError, KeyError):
        raise RuntimeError(f"could not read wrk's output:\n{out}") from None
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    http["cpu_ms_per_request"] = 1000 * cpu / max(requests, 1)
    # Cores the web workers, and the rest of the stack (the normalizer storing what was accepted ...), kept busy.
    http["web_cores"] = cpu / wall
    http["stack_cores"] = stack_cpu / wall
    # 1.0: the workers shared the load evenly; near 0: one worker served (nearly) every request.
    http["worker_balance"] = min(per_worker) / max(max(per_worker), 1e-9)
    http.update(commits)
    return http, requests


def run_once(args: argparse.Namespace, mode: str, env: dict[str, str], url: str, run: int) -> dict[str, float]:
    bin_dir = Path(sys.executable).parent
    subprocess.run([str(bin_dir / "opsconductor"), "migrate"], env=env, check=True, capture_output=True)
    key = subprocess.run([str(bin_dir / "opsconductor"), "keys", "create", "--role", "ingest", "--name", "bench"],
                         env=env, check=True, capture_output=True, text=True).stdout.strip()  # fmt: skip
    background = start_background(args, env)
    size = 1 if mode == "single" else args.array_size
    try:
        time.sleep(2)  # let the background processes finish starting before either server is measured
        bare: dict[str, float] = {}
        if args.compare_bare:
            bare_profile = Path(args.profile) / f"bare-{mode}-{run + 1}" if args.profile else None
            bare, _ = drive(args, "bench.falcon_bare:app", env, key, size, profile=bare_profile, background=background)
        profile = Path(args.profile) / f"{mode}-{run + 1}" if args.profile else None
        http, requests = drive(args, "app.http.wsgi:app", env, key, size, profile=profile, background=background)
        accepted = requests * size
        stats = {"count": 0, "span": 0.0, "p50": 0.0, "p99": 0.0}
        if background and not args.no_drain:
            # Wait for the backlog to drain: every accepted event stored, or no progress for 10 s.
            last, still = -1, 0
            while raw_count(url) < accepted and still < 20:
                now = raw_count(url)
                still = still + 1 if now == last else 0
                last = now
                time.sleep(0.5)
            stats = stored_stats(url)
        result = {
            "requests_per_s": http["rps"],
            "accepted_events_per_s": http["rps"] * size,
            "http_p50_ms": http["p50_ms"],
            "http_p99_ms": http["p99_ms"],
            "non_2xx": http["errors"],
            "web_cpu_ms_per_request": http["cpu_ms_per_request"],
            "web_worker_balance": http["worker_balance"],
            "web_cores": http["web_cores"],
            "stack_cores": http["stack_cores"],
            "group_requests": http.get("group_requests", 0.0),
            "group_publish_ms": http.get("group_publish_ms", 0.0),
            "commit_wait_ms": http.get("commit_wait_ms", 0.0),
            "accepted_events": accepted,
            "stored_raw": raw_count(url),
            "stored_events": stats["count"],
            "stored_events_per_s": stats["count"] / stats["span"] if stats["span"] else 0.0,
            "stored_p50_ms": stats["p50"] * 1000,
            "stored_p99_ms": stats["p99"] * 1000,
        }
        if bare:
            result.update(
                bare_requests_per_s=bare["rps"],
                bare_p99_ms=bare["p99_ms"],
                ratio_to_bare=http["rps"] / bare["rps"],
                bare_cpu_ms_per_request=bare["cpu_ms_per_request"],
                bare_worker_balance=bare["worker_balance"],
                bare_web_cores=bare["web_cores"],
                cpu_ratio_to_bare=bare["cpu_ms_per_request"] / http["cpu_ms_per_request"],
            )
        return result
    finally:
        for process in background:
            process.stop()


def _fmt(value: float) -> str:
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.3f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--normalizers", type=int, default=2)
    parser.add_argument("--array-size", type=int, default=100)
    parser.add_argument("--mode", choices=["single", "array", "both"], default="both")
    parser.add_argument(
        "--stack",
        choices=["normalize", "full", "web"],
        default="normalize",
        help="beside web: --normalizers normalize workers, every process type of the Procfile, or nothing",
    )
    parser.add_argument(
        "--compare-bare",
        action="store_true",
        help="before each run, serve bench/falcon_bare.py on the same settings and report the ratio",
    )
    parser.add_argument(
        "--profile", metavar="DIR", help="sample the product's web workers with py-spy into DIR/<mode>-<run>"
    )
    parser.add_argument("--profile-gil", action="store_true", help="count only samples holding the GIL (Python's work)")
    parser.add_argument(
        "--no-drain", action="store_true", help="measure the web tier only: do not wait for the backlog"
    )
    parser.add_argument(
        "--no-nice", action="store_true", help="--stack full: start the Procfile's commands without their nice -n N"
    )
    parser.add_argument("--py-spy", default=shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"))
    parser.add_argument("--database", default=BENCH_DB, help="the benchmark's own database (dropped and created)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is needed (apt-get install wrk)", file=sys.stderr)
        return 2
    base, url = database_urls(args.database)
    sys.path.insert(0, str(ROOT))
    from tests.services import purge_queues

    env = dict(os.environ, DATABASE_URL=url, RABBITMQ_URL=os.environ.get("RABBITMQ_URL") or "amqp://guest:guest@127.0.0.1:5672/%2F",
               LOG_LEVEL="WARNING")  # fmt: skip
    modes = ["single", "array"] if args.mode == "both" else [args.mode]
    for mode in modes:
        results = []
        for run in range(args.runs):
            reset_database(base, args.database)
            purge_queues(env["RABBITMQ_URL"])
            result = run_once(args, mode, env, url, run)
            results.append(result)
            print(f"{mode} run {run + 1}: " + ", ".join(f"{k}={_fmt(v)}" for k, v in result.items()), flush=True)
            if args.profile:
                print(pyspy.summarize(Path(args.profile) / f"{mode}-{run + 1}"), flush=True)
        print(f"{mode} MEDIAN of {args.runs}: " + ", ".join(
            f"{k}={_fmt(statistics.median(r[k] for r in results))}" for k in results[0]), flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

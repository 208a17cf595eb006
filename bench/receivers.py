"""Receiver benchmarks on the real stack: syslog over UDP and TCP, SNMP v2c and v3 traps.

Starts a receiver and normalize workers against RABBITMQ_URL and a PostgreSQL
database ``opsconductor_bench`` next to DATABASE_URL; a separate sender process
sends; then the script waits for the backlog to drain and counts what was stored.

- UDP syslog at increasing rates (distinct lines, 5 s each): sent, stored, lost,
  and the stored rate; the highest rate with zero loss is reported.
- TCP: lines over 100 connections as fast as they go.
- SNMP: v2c and v3 authPriv (SHA/AES) traps captured from net-snmp's snmptrap, replayed at
  increasing rates from 16 source ports (as from many agents: SO_REUSEPORT spreads senders, not
  datagrams, over the receiver processes) to ``--snmp-processes`` receivers on one port, while
  ``--normalizers`` workers of every queue run. Per rate: sent, accepted by the receivers (their
  counters), dropped by the kernel (``/proc/net/udp`` of the port's sockets), stored (occurrences).

    .venv/bin/python bench/receivers.py [--rates 5000,10000,20000] [--normalizers 2]
    .venv/bin/python bench/receivers.py --only snmp --trap-rates 1500,2500,3500 --snmp-processes 2
    # beside the Procfile's stages, with and without their nice -n N (backlog before accepting)
    .venv/bin/python bench/receivers.py --only snmp --trap-rates 2500 --pipeline procfile [--no-nice]
    # A/B: the receivers of another checkout (e.g. `git worktree add /tmp/base <commit>`), same stack
    .venv/bin/python bench/receivers.py --only snmp --receiver-root /tmp/base
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.webhook import database_urls, procfile, reset_database  # noqa: E402
from tests.processes import Process, free_port, start_worker  # noqa: E402
from tests.services import purge_queues  # noqa: E402

#: The Procfile's process types that ``--pipeline procfile`` runs beside the receivers.
PIPELINE = ("normalize", "correlate", "evaluate", "decide", "execute", "rollback", "notify")


def count(url: str, sql: str) -> int:
    import psycopg2

    conn = psycopg2.connect(url)
    with conn.cursor() as cur:
        cur.execute(sql)
        (value,) = cur.fetchone()
    conn.close()
    return int(value or 0)


def drain(url: str, sql: str, expected: int, *, idle_s: float = 10.0) -> tuple[int, float]:
    """Wait until ``expected`` rows or no progress for ``idle_s``; return (count, seconds waited)."""
    started = time.time()
    last, last_change = -1, time.time()
    while True:
        now = count(url, sql)
        if now >= expected:
            return now, time.time() - started
        if now != last:
            last, last_change = now, time.time()
        elif time.time() - last_change > idle_s:
            return now, time.time() - started
        time.sleep(0.25)


def udp_sender(port: int, rate: int, seconds: float, tag: str, result) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent = 0
    start = time.perf_counter()
    per_tick = max(1, rate // 1000)
    while (elapsed := time.perf_counter() - start) < seconds:
        due = int(elapsed * rate)
        while sent < due:
            for _ in range(min(per_tick, due - sent)):
                sock.sendto(
                    b"<14>Nov 23 10:00:00 bench-%s app[1]: line %d of the udp benchmark" % (tag.encode(), sent),
                    ("127.0.0.1", port),
                )
                sent += 1
        time.sleep(0.0005)
    result.value = sent


def tcp_sender(port: int, lines: int, connections: int, result) -> None:
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(connections)]
    per = lines // connections
    for c, s in enumerate(socks):
        s.sendall(b"".join(b"<14>Nov 23 10:00:00 tcp-bench app: conn %d line %d\n" % (c, i) for i in range(per)))
    for s in socks:
        s.close()
    result.value = per * connections


def capture_traps(port_env: dict[str, str]) -> dict[str, bytes]:
    """One v2c and one v3 authPriv trap as net-snmp encodes them."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    target = f"127.0.0.1:{sock.getsockname()[1]}"
    env = {"MIBS": "", "PATH": "/usr/bin:/bin"}
    out = {}
    subprocess.run(["snmptrap", "-v", "2c", "-c", "public", target, "", "1.3.6.1.6.3.1.1.5.3", "1.3.6.1.2.1.2.2.1.1.9", "i", "9"],
                   check=True, env=env)  # fmt: skip
    out["v2c"] = sock.recv(65535)
    subprocess.run(["snmptrap", "-v", "3", "-e", "0x8000000001020399", "-u", "bench", "-a", "SHA", "-A", "authpass123", "-x", "AES",
                    "-X", "privpass123", "-l", "authPriv", target, "", "1.3.6.1.6.3.1.1.5.3", "1.3.6.1.2.1.2.2.1.1.8", "i", "8"],
                   check=True, env=env)  # fmt: skip
    out["v3"] = sock.recv(65535)
    sock.close()
    return out


#: Source sockets of the trap sender: the kernel picks a SO_REUSEPORT receiver by the sender's address and port.
TRAP_SOURCES = 16


def trap_sender(port: int, datagram: bytes, rate: int, seconds: float, result) -> None:
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(TRAP_SOURCES)]
    sent = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        while sent < int(elapsed * rate):
            socks[sent % TRAP_SOURCES].sendto(datagram, ("127.0.0.1", port))
            sent += 1
        time.sleep(0.0005)
    result.value = sent


def port_drops(port: int) -> int:
    """Datagrams the kernel dropped on every UDP socket bound to ``port`` (``/proc/net/udp``'s drops column)."""
    total = 0
    with open("/proc/net/udp") as f:
        for line in list(f)[1:]:
            fields = line.split()
            if int(fields[1].split(":")[1], 16) == port:
                total += int(fields[12])
    return total


def receiver_counters(url: str, kind: str) -> dict[str, int]:
    """The receivers' own counts of ``kind``, summed over their processes: accepted traps."""
    sql = f"SELECT coalesce(sum((counters->'snmp'->>'accepted')::bigint), 0) FROM ops.receiver_stats WHERE kind = '{kind}'"
    return {"accepted": count(url, sql)}


def snmp_bench(args, url: str, trap: int) -> None:
    captured = capture_traps({})
    for version, datagram in captured.items():
        trap_name = "ifIndex 9" if version == "v2c" else "ifIndex 8"
        stored_sql = f"SELECT sum(occurrences) FROM events.processed_events WHERE title LIKE '%{trap_name}%'"
        for rate in (int(r) for r in args.trap_rates.split(",")):
            before, drops_before = count(url, stored_sql), port_drops(trap)
            accepted_before = receiver_counters(url, "snmptrap")["accepted"]
            sent = run_process(trap_sender, trap, datagram, rate, args.seconds)
            stored, _ = drain(url, stored_sql, before + sent)
            time.sleep(2.5)  # the receivers' next report (RECEIVER_REPORT_SECONDS=1)
            accepted = receiver_counters(url, "snmptrap")["accepted"] - accepted_before
            print(
                f"snmp {version} rate={rate}/s processes={args.snmp_processes} sent={sent} accepted={accepted} "
                f"kernel_drops={port_drops(trap) - drops_before} stored={stored - before} "
                f"lost={sent - (stored - before)}",
                flush=True,
            )


def run_process(target, *args) -> int:
    result = multiprocessing.Value("q", 0)
    proc = multiprocessing.Process(target=target, args=(*args, result))
    proc.start()
    proc.join()
    return result.value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="5000,10000,20000,30000")
    parser.add_argument("--trap-rates", default="500,1000,1500,2000")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--normalizers", type=int, default=2)
    parser.add_argument("--tcp-lines", type=int, default=100_000)
    parser.add_argument("--queues", default="", help="queues the workers consume (default: all; e.g. normalize)")
    parser.add_argument("--only", choices=("all", "syslog", "snmp"), default="all")
    parser.add_argument("--snmp-processes", type=int, default=1, help="snmptrap processes sharing the trap port")
    parser.add_argument(
        "--pipeline",
        choices=("workers", "procfile"),
        default="workers",
        help="workers: --normalizers workers of --queues; procfile: the Procfile's process types of every stage",
    )
    parser.add_argument("--no-nice", action="store_true", help="--pipeline procfile without the Procfile's nice -n N")
    parser.add_argument("--receiver-root", default=str(ROOT), help="checkout whose receivers run (A/B comparisons)")
    parser.add_argument("--database", default="opsconductor_bench_receivers")
    args = parser.parse_args()
    base, url = database_urls(args.database)
    rabbit = os.environ.get("RABBITMQ_URL") or "amqp://guest:guest@127.0.0.1:5672/%2F"
    udp, tcp, trap = free_port(socket.SOCK_DGRAM), free_port(), free_port(socket.SOCK_DGRAM)
    env = dict(os.environ, DATABASE_URL=url, RABBITMQ_URL=rabbit, LOG_LEVEL="WARNING", SYSLOG_UDP_PORT=str(udp),
               SYSLOG_TCP_PORT=str(tcp), SNMP_TRAP_PORT=str(trap), SNMP_V3_USERS="bench:SHA:authpass123:AES:privpass123",
               SPOOL_DIR=str(ROOT / "var" / "bench-spool"), RECEIVER_REPORT_SECONDS="1")  # fmt: skip
    reset_database(base, args.database)
    purge_queues(rabbit)
    subprocess.run(
        [str(Path(sys.executable).parent / "opsconductor"), "migrate"], env=env, check=True, capture_output=True
    )
    queues = tuple(q for q in args.queues.split(",") if q)
    if args.pipeline == "procfile":
        stages = procfile(PIPELINE, nice=not args.no_nice)
        workers = [Process(name, argv, env) for name, argv in stages.items()]
    else:
        workers = [start_worker(env, queues=queues) for _ in range(args.normalizers)]
    receivers = Path(args.receiver_root)
    syslog = [Process("syslog", [sys.executable, "-m", "app.receivers.syslog"], env, cwd=receivers)
              for _ in range(1 if args.only != "snmp" else 0)]  # fmt: skip
    traps = [Process("snmptrap", [sys.executable, "-m", "app.receivers.snmp"], env, cwd=receivers)
             for _ in range(args.snmp_processes if args.only != "syslog" else 0)]  # fmt: skip
    try:
        time.sleep(3)
        if args.only != "syslog":
            snmp_bench(args, url, trap)
        if args.only == "snmp":
            return 0
        best = 0
        for rate in (int(r) for r in args.rates.split(",")):
            tag = f"{rate}"
            started = time.time()
            sent = run_process(udp_sender, udp, rate, args.seconds, tag)
            sql = f"SELECT count(*) FROM events.processed_events WHERE source_host = 'bench-{tag}'"
            stored, waited = drain(url, sql, sent)
            lost = sent - stored
            best = rate if lost == 0 else best
            print(f"udp rate={rate}/s sent={sent} stored={stored} lost={lost} stored_per_s={stored / (time.time() - started):.0f}"
                  f" drain_after_send_s={waited:.1f}", flush=True)  # fmt: skip
        print(f"udp highest zero-loss rate: {best}/s", flush=True)
        started = time.time()
        lines = run_process(tcp_sender, tcp, args.tcp_lines, 100)
        sent_s = time.time() - started
        stored, _ = drain(url, "SELECT count(*) FROM events.processed_events WHERE source_host = 'tcp-bench'", lines)
        total = time.time() - started
        print(f"tcp 100 connections: lines={lines} send_s={sent_s:.2f} ({lines / sent_s:.0f} lines/s sent)"
              f" stored={stored} in {total:.1f}s ({stored / total:.0f}/s end to end)", flush=True)  # fmt: skip
    finally:
        for receiver in (*syslog, *traps):
            receiver.stop()
        for w in workers:
            w.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

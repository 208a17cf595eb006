"""Receiver benchmarks on the real stack: syslog over UDP and TCP, SNMP v2c and v3 traps.

Starts a receiver and normalize workers against RABBITMQ_URL and a PostgreSQL
database ``opsconductor_bench`` next to DATABASE_URL; a separate sender process
sends; then the script waits for the backlog to drain and counts what was stored.

- UDP syslog at increasing rates (distinct lines, 5 s each): sent, stored, lost,
  and the stored rate; the highest rate with zero loss is reported.
- TCP: lines over 100 connections as fast as they go.
- SNMP: v2c and v3 authPriv (SHA/AES) traps captured from net-snmp's snmptrap,
  replayed at increasing rates; accepted traps are counted by their stored occurrences.

    .venv/bin/python bench/receivers.py [--rates 5000,10000,20000] [--normalizers 2]
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

from bench.webhook import database_urls, reset_database  # noqa: E402
from tests.processes import Process, free_port, start_worker  # noqa: E402
from tests.services import purge_queues  # noqa: E402


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


def trap_sender(port: int, datagram: bytes, rate: int, seconds: float, result) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        while sent < int(elapsed * rate):
            sock.sendto(datagram, ("127.0.0.1", port))
            sent += 1
        time.sleep(0.0005)
    result.value = sent


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
    args = parser.parse_args()
    base, url = database_urls()
    rabbit = os.environ.get("RABBITMQ_URL") or "amqp://guest:guest@127.0.0.1:5672/%2F"
    udp, tcp, trap = free_port(socket.SOCK_DGRAM), free_port(), free_port(socket.SOCK_DGRAM)
    env = dict(os.environ, DATABASE_URL=url, RABBITMQ_URL=rabbit, LOG_LEVEL="WARNING", SYSLOG_UDP_PORT=str(udp),
               SYSLOG_TCP_PORT=str(tcp), SNMP_TRAP_PORT=str(trap), SNMP_V3_USERS="bench:SHA:authpass123:AES:privpass123",
               SPOOL_DIR=str(ROOT / "var" / "bench-spool"))  # fmt: skip
    reset_database(base)
    purge_queues(rabbit)
    subprocess.run(
        [str(Path(sys.executable).parent / "opsconductor"), "migrate"], env=env, check=True, capture_output=True
    )
    queues = tuple(q for q in args.queues.split(",") if q)
    workers = [start_worker(env, queues=queues) for _ in range(args.normalizers)]
    syslog = Process("syslog", [sys.executable, "-m", "app.receivers.syslog"], env)
    traps = Process("snmptrap", [sys.executable, "-m", "app.receivers.snmp"], env)
    try:
        time.sleep(2)
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
        captured = capture_traps(env)
        for version, datagram in captured.items():
            trap_name = "ifIndex 9" if version == "v2c" else "ifIndex 8"
            for rate in (int(r) for r in args.trap_rates.split(",")):
                before = count(
                    url, f"SELECT sum(occurrences) FROM events.processed_events WHERE title LIKE '%{trap_name}%'"
                )
                sent = run_process(trap_sender, trap, datagram, rate, args.seconds)
                sql = f"SELECT sum(occurrences) FROM events.processed_events WHERE title LIKE '%{trap_name}%'"
                stored, _ = drain(url, sql, before + sent)
                print(
                    f"snmp {version} rate={rate}/s sent={sent} stored={stored - before} lost={sent - (stored - before)}",
                    flush=True,
                )
    finally:
        syslog.stop()
        traps.stop()
        for w in workers:
            w.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

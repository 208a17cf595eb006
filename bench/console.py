"""Console benchmark: each console page's response time with 100,000 events and 5,000 incidents stored.

Seeds a PostgreSQL database ``opsconductor_bench_console`` next to DATABASE_URL (events over a week
on 500 hosts, grouped into incidents of every status, their correlations, a topology, trigger rules,
executions with steps, pending approvals, silences and maintenance windows), starts the real web
(gunicorn, gevent worker) against it and RABBITMQ_URL, signs in through ``/console/login`` like a
browser (the hidden ``csrf_token``, the cookies), then requests each page ``--repeat`` times, one at
a time, and prints the median and p95 per page against the 300 ms target. A page that answers 404
is reported "missing"; any other status than 200 is an error.

    .venv/bin/python bench/console.py [--events 100000] [--incidents 5000] [--repeat 20] [--runs 3]

Each run times every page; the last lines are the medians over the runs. The seed is made once
(``--reuse`` skips it when the database already holds it).
"""

from __future__ import annotations

import argparse
import http.cookiejar
import os
import random
import re
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.processes import start_web  # noqa: E402
from tests.services import recreate_database  # noqa: E402

BENCH_DB = "opsconductor_bench_console"
#: The target every page is held to (issue 12, "Proof").
TARGET_MS = 300.0
#: Rows per INSERT while seeding. PERF: multi-row inserts; one row a statement takes minutes.
CHUNK = 2000
SEVERITIES = ("critical", "high", "medium", "low", "info")
STATUSES = ("open", "open", "acknowledged", "resolved", "closed", "closed", "closed", "flapping")


def database_urls() -> tuple[str, str]:
    base = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/test"
    return base, urlunsplit(urlsplit(base)._replace(path="/" + BENCH_DB))


def _insert(model, rows: list[dict]) -> None:
    from app.db import database

    with database.atomic():
        for i in range(0, len(rows), CHUNK):
            model.insert_many(rows[i : i + CHUNK]).execute()


def seed(url: str, *, events: int, incidents: int) -> dict[str, str]:
    """Fill the database through the models (so every column another release adds gets its default)."""
    from app.db import init_database
    from app.models import (
        Approval,
        EventCorrelation,
        Execution,
        ExecutionStep,
        Incident,
        MaintenanceWindow,
        ProcessedEvent,
        Silence,
        TopologyLink,
        TriggerRule,
    )

    init_database(url, application_name="bench-console")
    rng = random.Random(12)
    now = datetime.now(UTC)
    hosts = [f"host-{i:03d}" for i in range(500)]
    services = [f"svc-{i:02d}" for i in range(20)]
    topology = [{"kind": "host", "node": h, "upstream": f"switch-{i % 25:02d}", "criticality": None}
                for i, h in enumerate(hosts)]  # fmt: skip
    topology += [{"kind": "host", "node": f"switch-{i:02d}", "upstream": f"core-{i % 2}", "criticality": "high"}
                 for i in range(25)]  # fmt: skip
    topology += [{"kind": "service", "node": s, "upstream": hosts[i * 7], "criticality": None}
                 for i, s in enumerate(services)]  # fmt: skip
    _insert(TopologyLink, topology)

    incident_rows, event_rows, correlation_rows = [], [], []
    per = max(1, events // incidents)
    for i in range(incidents):
        opened = now - timedelta(minutes=rng.randint(1, 7 * 24 * 60))
        status = STATUSES[i % len(STATUSES)]
        host, service, severity = rng.choice(hosts), rng.choice(services), SEVERITIES[i % 5]
        inc_id = uuid.uuid4()
        ids = [uuid.uuid4() for _ in range(per if i < incidents - 1 else events - per * (incidents - 1))]
        for n, ev in enumerate(ids):
            at = opened + timedelta(seconds=30 * n)
            event_rows.append({
                "id": ev, "source_type": "webhook", "source": "bench", "event_type": "cpu_high",
                "severity": severity, "source_host": host, "source_service": service,
                "title": f"CPU high on {host} ({i}-{n})", "description": "load above threshold",
                "event_data": {"cpu": 97.5}, "tags": ["bench"], "occurred_at": at, "received_at": at,
                "processed_at": at, "fingerprint": f"fp-{i}-{n}", "last_seen_at": at, "correlation_id": inc_id,
            })  # fmt: skip
            correlation_rows.append({
                "correlation_id": inc_id, "correlation_type": "host_based" if n else "root",
                "primary_event_id": ids[0], "related_event_ids": [str(ev)], "correlation_score": 0.8,
                "correlation_reason": f"same host {host}", "created_at": at,
            })  # fmt: skip
        last = opened + timedelta(seconds=30 * (len(ids) - 1))
        closed = last if status in ("closed", "resolved") else None
        incident_rows.append({
            "id": inc_id, "status": status, "title": f"CPU high on {host}", "root_event_id": ids[0],
            "root_fingerprint": f"fp-{i}-0", "severity": severity, "severity_score": 0.5,
            "event_count": len(ids), "hosts": [host], "services": [service], "templates": ["CPU high on <*>"],
            "fingerprints": [f"fp-{i}-0"], "link_keys": [], "opened_at": opened, "last_event_at": last,
            "closed_at": closed,
        })  # fmt: skip
    _insert(Incident, incident_rows)
    _insert(ProcessedEvent, event_rows)
    _insert(EventCorrelation, correlation_rows)

    _insert(TriggerRule, [{"rule_name": f"rule {i}", "rule_description": "bench rule",
                           "event_conditions": {"severity": ["critical", "high"], "source_host": f"host-{i:03d}"},
                           "severity_threshold": "high", "time_window_minutes": 10, "active": i % 3 != 0}
                          for i in range(60)])  # fmt: skip
    executions, steps, approvals = [], [], []
    for i in range(2000):
        ex_id = uuid.uuid4()
        at = now - timedelta(minutes=rng.randint(1, 7 * 24 * 60))
        status = ("completed", "failed", "rolled_back", "awaiting_approval")[i % 4]
        executions.append({"id": ex_id, "incident_id": incident_rows[i]["id"], "definition": {"actions": []},
                           "status": status, "requested_by": "decider", "risk_score": 0.4, "risk_level": "medium",
                           "created_at": at, "started_at": at})  # fmt: skip
        steps += [{"execution_id": ex_id, "action_id": f"a{n}", "name": f"step {n}", "position": n,
                   "status": "succeeded", "started_at": at, "completed_at": at} for n in range(3)]  # fmt: skip
        if status == "awaiting_approval":
            approvals.append({"execution_id": ex_id, "requested_by": "decider", "approvers": ["operator"],
                              "reason": "risk above threshold", "risk_score": 0.7, "risk_level": "high",
                              "requested_actions": [{"id": "a0", "type": "shell"}], "timeout_minutes": 30.0,
                              "expires_at": now + timedelta(minutes=30), "created_at": at})  # fmt: skip
    _insert(Execution, executions)
    _insert(ExecutionStep, steps)
    _insert(Approval, approvals)
    _insert(Silence, [{"matchers": [{"name": "host", "value": h, "is_regex": False, "is_equal": True}],
                       "starts_at": now - timedelta(hours=2), "ends_at": now + timedelta(hours=i - 50),
                       "created_by": "bench", "comment": "bench silence"} for i, h in enumerate(hosts[:100])])  # fmt: skip
    _insert(MaintenanceWindow, [{"name": f"window {i}", "scope": {"hosts": [hosts[i]]}, "active": True,
                                 "starts_at": now + timedelta(days=i), "ends_at": now + timedelta(days=i, hours=2)}
                                for i in range(30)])  # fmt: skip
    with_incident = next(r for r in incident_rows if r["status"] == "open")
    return {"incident": str(with_incident["id"]), "host": with_incident["hosts"][0]}


class Browser:
    """Cookies kept across requests, as a browser keeps them; redirects followed."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def get(self, path: str) -> tuple[int, bytes]:
        return self._open(urllib.request.Request(self.base + path))

    def post(self, path: str, form: dict[str, str]) -> tuple[int, bytes]:
        data = urllib.parse.urlencode(form).encode()
        req = urllib.request.Request(self.base + path, data=data, method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
        return self._open(req)

    def _open(self, req: urllib.request.Request) -> tuple[int, bytes]:
        try:
            with self.opener.open(req, timeout=30) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()


def sign_in(browser: Browser, key: str) -> bool:
    """Sign in as a browser does; False when the console has no sign-in page (not installed)."""
    status, body = browser.get("/console/login")
    if status == 404:
        return False
    if status != 200:
        raise RuntimeError(f"GET /console/login answered {status}")
    match = re.search(rb'name="csrf_token"\s+value="([^"]+)"', body) or re.search(
        rb'value="([^"]+)"\s+name="csrf_token"', body
    )
    if not match:
        raise RuntimeError("no csrf_token field on the sign-in page")
    status, body = browser.post("/console/login", {"api_key": key, "csrf_token": match.group(1).decode()})
    # the answer is where the console sends a signed-in browser (a page that may not exist yet): the cookie says it
    if not any(c.name == "oc_session" for c in browser.cookies):
        raise RuntimeError(f"signing in failed: {status} {body[:300]!r}")
    return True


def pages(ids: dict[str, str]) -> list[tuple[str, str]]:
    host = urllib.parse.quote(ids["host"])
    return [
        ("incidents", "/console/incidents"),
        ("incidents ?status=open&severity=critical", "/console/incidents?status=open&severity=critical"),
        (f"incidents ?host={ids['host']}", f"/console/incidents?host={host}"),
        ("one incident", f"/console/incidents/{ids['incident']}"),
        ("approvals", "/console/approvals"),
        ("executions", "/console/executions"),
        ("rules", "/console/rules"),
        ("templates", "/console/templates"),
        ("silences", "/console/silences"),
        ("maintenance", "/console/maintenance"),
        ("topology", "/console/topology"),
        ("dead letters", "/console/dead-letters"),
        ("health", "/console/health"),
    ]


def time_pages(browser: Browser, targets: list[tuple[str, str]], repeat: int) -> dict[str, list[float] | str]:
    results: dict[str, list[float] | str] = {}
    for name, path in targets:
        status, _ = browser.get(path)  # warm: the first request of a page compiles its template
        if status == 404:
            results[name] = "missing"
            continue
        if status != 200:
            results[name] = f"error {status}"
            continue
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            status, _ = browser.get(path)
            times.append((time.perf_counter() - started) * 1000)
            if status != 200:
                results[name] = f"error {status}"
                break
        else:
            results[name] = times
    return results


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def report(label: str, results: dict[str, list[float] | str]) -> None:
    print(f"-- {label}")
    for name, times in results.items():
        if isinstance(times, str):
            print(f"{name:45s} {times}")
            continue
        med, high = statistics.median(times), p95(times)
        verdict = "ok" if high < TARGET_MS else "SLOW"
        print(f"{name:45s} median {med:7.1f} ms  p95 {high:7.1f} ms  {verdict} (target {TARGET_MS:.0f} ms)")
    sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--incidents", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=20, help="timed requests per page and run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--web-workers", type=int, default=1)
    parser.add_argument("--reuse", action="store_true", help="keep the seeded database of an earlier run")
    args = parser.parse_args()
    base, url = database_urls()
    env = dict(os.environ, DATABASE_URL=url, LOG_LEVEL="WARNING",
               RABBITMQ_URL=os.environ.get("RABBITMQ_URL") or "amqp://guest:guest@127.0.0.1:5672/%2F")  # fmt: skip
    bin_dir = Path(sys.executable).parent
    ids_file = Path(f"/tmp/{BENCH_DB}.ids")
    if not (args.reuse and ids_file.exists()):
        recreate_database(BENCH_DB, base)
        subprocess.run([str(bin_dir / "opsconductor"), "migrate"], env=env, check=True, capture_output=True)
        started = time.perf_counter()
        ids = seed(url, events=args.events, incidents=args.incidents)
        print(f"seeded {args.events} events, {args.incidents} incidents in {time.perf_counter() - started:.1f} s")
        ids_file.write_text(f"{ids['incident']} {ids['host']}")
    else:
        subprocess.run([str(bin_dir / "opsconductor"), "migrate"], env=env, check=True, capture_output=True)
        incident, host = ids_file.read_text().split()
        ids = {"incident": incident, "host": host}
    key = subprocess.run([str(bin_dir / "opsconductor"), "keys", "create", "--role", "admin", "--name", "bench"],
                         env=env, check=True, capture_output=True, text=True).stdout.strip()  # fmt: skip
    web, address = start_web(env, workers=args.web_workers)
    try:
        browser = Browser(address)
        targets = pages(ids)
        if not sign_in(browser, key):
            report("no console (GET /console/login answered 404)", {name: "missing" for name, _ in targets})
            return 1
        runs = []
        for run in range(args.runs):
            results = time_pages(browser, targets, args.repeat)
            runs.append(results)
            report(f"run {run + 1} ({args.repeat} requests per page)", results)
        merged: dict[str, list[float] | str] = {}
        for name, _ in targets:
            timed = [r[name] for r in runs if not isinstance(r[name], str)]
            merged[name] = [t for times in timed for t in times] if timed else runs[-1][name]  # type: ignore[misc]
        report(f"all {args.runs} runs", merged)
    finally:
        web.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Cost of one Kubernetes agent run: read a cluster of N workloads, record, read the history, forecast, propose.

A local API server (tests/k8s_server.py) serves N Deployments with their pods' usage; PostgreSQL
holds four weeks of hourly history for each (what a month of runs leaves). Each run is timed whole,
and the cluster read alone, so the rest is the agent's own work (history and forecasts). The first
run of an hour also reads a week of per-container use (right-sizing); the later ones do not.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/opsconductor_bench \\
        .venv/bin/python bench/k8s_agent.py [--workloads 50 200 500] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.agents.base import AgentSettings  # noqa: E402
from app.agents.kubernetes import KubernetesAgent  # noqa: E402
from app.agents.kubernetes_client import Cluster  # noqa: E402
from app.db import in_transaction, init_database  # noqa: E402
from app.migrate import migrate  # noqa: E402
from app.models import WorkloadSample  # noqa: E402
from tests.k8s_server import kubernetes_api  # noqa: E402

NOW = datetime(2026, 12, 7, 8, 30, tzinfo=UTC)


def _seed(n: int) -> None:
    WorkloadSample.truncate_table()  # not DELETE: dead rows of the last size would slow this one
    start = NOW.replace(minute=0) - timedelta(weeks=4)
    for i in range(n):
        rows = [{"cluster": "bench", "workload": f"shop/deployment/app-{i}", "at": start + timedelta(hours=h),
                 "replicas": 3, "cpu_m": 600.0 + 400.0 * (h % 24 in (8, 9, 10)), "memory_bytes": 9e8,
                 "containers": {"app": {"cpu_m": 200.0, "memory_bytes": 3e8}}} for h in range(4 * 7 * 24)]  # fmt: skip
        WorkloadSample.insert_many(rows).execute()


def bench(n: int, runs: int, directory: Path) -> tuple[float, float, float, int]:
    with kubernetes_api() as api:
        for i in range(n):
            api.workload("deployments", "shop", f"app-{i}", replicas=3)
            api.usage("shop", f"app-{i}", [("300m", "300Mi")] * 3)
        integration = {"type": "kubernetes", "name": "bench", "kubeconfig": {"file": str(api.kubeconfig(directory))}}
        config = AgentSettings(name="k8s", kind="kubernetes", automation_level="manual", approval_required=True,
                               integrations=(integration,))  # fmt: skip
        in_transaction(lambda: _seed(n))
        totals, reads, proposed = [], [], 0
        for run in range(runs + 1):
            at = NOW + timedelta(minutes=run)
            began = time.perf_counter()
            cluster = Cluster(integration)
            cluster.workloads(), cluster.pod_metrics()
            cluster.close()
            reads.append(time.perf_counter() - began)
            began = time.perf_counter()
            found = KubernetesAgent(now=lambda at=at: at).run(config)
            proposed = proposed or len(found)
            totals.append(time.perf_counter() - began)
    return totals[0], statistics.median(totals[1:]), statistics.median(reads), proposed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", type=int, nargs="+", default=[50, 200, 500])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    init_database(os.environ["DATABASE_URL"], application_name="bench-k8s-agent", max_connections=2)
    migrate()
    with tempfile.TemporaryDirectory() as directory:
        for n in args.workloads:
            opening, total, read, proposed = bench(n, args.runs, Path(directory))
            print(f"{n:5d} workloads, {4 * 7 * 24} hours of history each: first run of the hour {opening * 1000:6.0f} ms, "
                  f"later runs {total * 1000:6.0f} ms median (cluster read {read * 1000:5.0f} ms, agent's own "
                  f"{(total - read) / n * 1000:.2f} ms per workload), {proposed} proposals by the first")  # fmt: skip


if __name__ == "__main__":
    main()

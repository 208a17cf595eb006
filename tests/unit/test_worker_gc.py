"""A worker process keeps the garbage collector out of its batches' way (app.worker)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = (
    "import gc, json, app.worker;"
    "print(json.dumps({'threshold': gc.get_threshold()[0], 'frozen': gc.get_freeze_count(),"
    " 'configured': app.worker.GC_YOUNG_THRESHOLD}))"
)


def test_a_worker_collects_young_objects_less_often_and_freezes_what_booting_made(rabbitmq_url, pg_url):
    # Given a process booted as `dramatiq app.worker` boots it (importing app.worker), on the real broker
    env = {**os.environ, "RABBITMQ_URL": rabbitmq_url, "DATABASE_URL": pg_url}
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    state = json.loads(done.stdout.strip().splitlines()[-1])
    # Then its young generation is collected every GC_YOUNG_THRESHOLD allocations (100,000: a correlator's batch
    # allocates tens of thousands of objects that live until its next batch), not Python's 700, and the
    # modules, classes and functions booting created are frozen out of every collection
    assert state["threshold"] == state["configured"] >= 100_000
    assert state["frozen"] > 10_000

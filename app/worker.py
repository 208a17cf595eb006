"""Entry point of the Dramatiq worker processes: ``dramatiq app.worker --queues normalize``.

Under ``dramatiq-gevent`` (the ``execute`` and ``rollback`` queues) the standard library is
monkey-patched before this module loads; psycopg2 is a C extension the patch cannot reach,
so psycogreen makes its waits cooperative too.
"""

from __future__ import annotations

import gc

from gevent import monkey

if monkey.is_module_patched("socket"):
    from psycogreen.gevent import patch_psycopg

    patch_psycopg()

from .runtime import bootstrap  # noqa: E402

bootstrap(role="worker", db_connections=32)

#: Allocations between young-generation collections in a worker (Python's default: 700).
#: PERF: a batch allocates tens of thousands of short-lived objects (rows, facts, placements) beside a
#: large long-lived heap (the correlator's held incidents and their index), and at the default the
#: collector ran so often that it was about half of the correlator's CPU (py-spy --native); the
#: objects of a batch are freed by reference counting anyway (no cycles, see
#: tests/unit/test_correlation_rehearsal.py), so collecting less often costs little memory.
#: At 10,000 each collection still scanned the incidents a batch re-reads (their keys' spans are lists,
#: which the collector tracks) while they lived: 1.1-1.3 s of a correlator's CPU per 20,000 events with one
#: process, 2.0 s with two; at 100,000, 0.3-0.7 s, the same peak RSS. A collection then takes ~0.1 s.
GC_YOUNG_THRESHOLD = 100_000

# What booting imported lives as long as the process: out of the collector's way for good.
gc.freeze()
gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])

if monkey.is_module_patched("socket"):  # the execute and rollback queues: their first action step must not wait
    from .actions import http as _http_action

    _http_action.warm()

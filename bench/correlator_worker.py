"""The worker :mod:`app.worker` boots, logging how each correlator batch was decided (bench/pipeline.py counts them).

``dramatiq bench.correlator_worker --queues correlate``: the correlator's one line per batch ("Correlator batch:
rehearsed.", see :func:`app.correlation.store._count`) is a DEBUG record; the rest of the process logs at the
``LOG_LEVEL`` it is given (at DEBUG, peewee would log every statement, which costs more than the batches).
"""

from __future__ import annotations

import logging

from app.worker import GC_YOUNG_THRESHOLD  # noqa: F401 - boots the worker (and registers the actors)

logging.getLogger("app.correlation.store").setLevel(logging.DEBUG)

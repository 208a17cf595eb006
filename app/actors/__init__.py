"""Dramatiq actors: one responsibility and one queue each (queue name = actor name).

Importing this package registers every actor on the current global broker,
so it is imported only by :func:`app.runtime.bootstrap`, after the broker is set.
"""

from __future__ import annotations

from . import agents, correlator, decider, evaluator, executor, expirer, normalizer, notifier, rollbacker

__all__ = ["agents", "correlator", "decider", "evaluator", "executor", "expirer", "normalizer", "notifier", "rollbacker"]

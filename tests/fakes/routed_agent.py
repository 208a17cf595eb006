"""A stand-in cost agent for a worker process started by a test: it looks at nothing and proposes nothing.

Imported by the worker after ``app.worker`` (``dramatiq app.worker tests.fakes.routed_agent``): its
runs are recorded like any agent's (``last_run_at``, ``last_result`` with the trigger), which is what
the routing test watches.
"""

from __future__ import annotations

from app.agents.base import IMPLEMENTATIONS


class Idle:
    def run(self, config):
        return []

    def status(self, config):
        return {"ready": True, "reason": "a test's stand-in"}


IMPLEMENTATIONS["cost"] = f"{__name__}:Idle"

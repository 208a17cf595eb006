"""``/healthz`` (the process answers), ``/readyz`` (database and broker reachable)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import falcon

logger = logging.getLogger(__name__)

#: A readiness check returns None when healthy, else what is wrong.
Check = Callable[[], str | None]


class Health:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"status": "ok"}


class Ready:
    def __init__(self, checks: dict[str, Check]) -> None:
        self.checks = checks

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        results = {}
        for name, check in self.checks.items():
            try:
                problem = check()
            except Exception:  # noqa: BLE001 - a failing check is an answer, not a crash
                logger.error("Readiness check %r failed.", name, exc_info=True)
                problem = f"{name} check failed"  # the details stay in the log: /readyz is public
            results[name] = {"ok": problem is None, **({"error": problem} if problem else {})}
        ready = all(r["ok"] for r in results.values())
        resp.status = falcon.HTTP_200 if ready else falcon.HTTP_503
        resp.media = {"status": "ready" if ready else "not_ready", "checks": results}

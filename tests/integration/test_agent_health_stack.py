"""The orchestrator's health with real processes: an agent's worker killed is reported down by the clock
(status, /metrics, a page through the notification policies), the work sent to its queue meanwhile waits,
and a worker that returns takes it and the agent is up again."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator

import pytest

from app.auth import create_key
from app.db import in_transaction
from app.models import AgentHeartbeat, Notification, NotificationPolicy
from tests.http import request
from tests.processes import BIN, Process, retire, start_web, wait_for

#: One beat a second: an agent whose processes are gone is down after three.
HEARTBEAT = {"AGENT_HEARTBEAT_SECONDS": "1"}


def _agent_worker(env: dict[str, str]) -> Process:
    argv = [str(BIN / "dramatiq"), "app.worker", "tests.fakes.routed_agent", "--processes", "1", "--threads", "1",
            "--queues", "agent_cost"]  # fmt: skip
    return Process("agent-worker", argv, env)


@pytest.fixture(scope="module")
def web(stack_env) -> Iterator[dict]:
    env = {**stack_env, **HEARTBEAT}
    keys = {role: create_key(role=role, name=f"health {role}") for role in ("admin", "operator", "viewer")}
    clock = Process("clock", [str(BIN / "opsconductor"), "clock", "--interval", "1"], env)
    server, base = start_web(env)
    try:
        yield {"base": base, "keys": keys, "env": env}
    finally:
        retire(server)
        clock.stop()  # (waited for: a clock's sweeps must not reach into the next module)


def _status(web, name: str = "spend-watch") -> dict:
    agents = request("GET", f"{web['base']}/api/v1/agents/status", key=web["keys"]["viewer"]).json()["agents"]
    return next(a for a in agents if a["name"] == name)


def _metric(web) -> str | None:
    found = re.search(
        r'opsconductor_agent_up\{agent="spend-watch"\} (\S+)', request("GET", f"{web['base']}/metrics").body.decode()
    )
    return found.group(1) if found else None


def _rows() -> dict[str, str]:
    return {r.process: r.kind for r in in_transaction(lambda: list(AgentHeartbeat.select()))}


def test_a_worker_stopped_cleanly_removes_its_heartbeats_at_once(web):
    # Given a worker serving the cost agents' queue, heartbeating
    before = _rows()
    worker = _agent_worker(web["env"])
    try:
        mine = wait_for(lambda: [p for p, kind in _rows().items() if p not in before and kind == "cost"], timeout=30,
                        message="the worker's heartbeat")  # fmt: skip
        # When it is stopped as a supervisor stops it (SIGTERM to the process it started)
    finally:
        worker.stop()
    # Then it shut down cleanly, and its rows are gone as it exits, not three beats later (a stop is not a crash)
    assert worker.proc.returncode == 0 and "Killing worker process" not in worker.output(), worker.output()[-3000:]
    assert not set(mine) & set(_rows()), _rows()
    assert _status(web, "cost")["processes"] == []


def test_a_dead_agent_is_reported_and_its_queued_work_is_taken_when_a_worker_returns(web):
    base, keys = web["base"], web["keys"]
    in_transaction(lambda: NotificationPolicy.create(name="agents down", matchers={"triggers": ["agent_down"]},
                                                     channels=[{"type": "webhook", "url": "http://127.0.0.1:9/hook"}],
                                                     repeat_interval_minutes=0))  # fmt: skip
    # Given a worker serving the cost agents' queue, and then a started cost agent (scheduled once a day)
    first = _agent_worker(web["env"])
    try:
        wait_for(lambda: _status(web, "cost")["processes"], timeout=30, message="the worker's heartbeat")
        made = request("POST", f"{base}/api/v1/agents/config", key=keys["admin"], json={
            "name": "spend-watch", "type": "cost", "enabled": True, "interval_seconds": 86400})  # fmt: skip
        assert made.status == 201, made.body
        assert _status(web)["health"] == "up"
        assert wait_for(lambda: _metric(web) == "1.0", timeout=10, message="agent_up 1")
        # When the worker is killed (no clean shutdown: its heartbeat rows stay behind, going stale)
        first.signal(signal.SIGKILL)
        first.proc.wait(10)
    finally:
        first.stop()
    # Then the clock reports the agent down: in its status, in /metrics, and paged once
    down = wait_for(lambda: (s := _status(web))["health"] == "down" and s["down_since"] and s, timeout=30,
                    message="the agent down, paged")  # fmt: skip
    assert down["processes"] == []
    assert wait_for(lambda: _metric(web) == "0.0", timeout=10, message="agent_up 0")

    def paged() -> list[Notification]:
        rows = in_transaction(lambda: list(Notification.select().where(Notification.trigger == "agent_down")))
        return [r for r in rows if r.payload["message"]["subject"] == "agent:spend-watch"]

    pages = wait_for(paged, timeout=10, message="the agent_down page")
    assert len(pages) == 1 and "agent_cost" in pages[0].payload["message"]["text"]
    # When an operator asks for a run while no process serves the queue
    sent = request("POST", f"{base}/api/v1/agents/spend-watch/run", key=keys["operator"])
    assert sent.status == 202, sent.body
    assert _status(web)["last_run_at"] is None or _status(web)["last_result"]["trigger"]["trigger"] != "operator"
    # And a worker returns
    second = _agent_worker(web["env"])
    try:
        # Then it takes the waiting run, and the agent is up again with its outage cleared
        ran = wait_for(lambda: (s := _status(web))["last_result"] and s["last_result"]["trigger"]["trigger"] == "operator"
                       and s, timeout=30, message="the waiting run taken")  # fmt: skip
        assert ran["last_error"] is None
        back = wait_for(lambda: (s := _status(web))["health"] == "up" and s["down_since"] is None and s, timeout=30,
                        message="the agent up again")  # fmt: skip
        assert back["processes"] and wait_for(lambda: _metric(web) == "1.0", timeout=10, message="agent_up 1 again")
    finally:
        second.stop()

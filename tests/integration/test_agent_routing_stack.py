"""Events routed to an agent over the real stack: posted to gunicorn, normalized, correlated and evaluated
by a real worker, which sends the agent whose route takes them in a run on its queue; the run is recorded."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from app.auth import create_key
from tests.http import request
from tests.processes import BIN, Process, retire, start_web, wait_for


@pytest.fixture(scope="module")
def web(stack_env) -> Iterator[dict]:
    keys = {role: create_key(role=role, name=f"routing {role}") for role in ("admin", "viewer")}
    # one worker for every queue, with a stand-in cost agent (no cost agent looks at anything here)
    argv = [str(BIN / "dramatiq"), "app.worker", "tests.fakes.routed_agent", "--processes", "1", "--threads", "2"]
    worker = Process("worker", argv, stack_env)
    server, base = start_web(stack_env)
    try:
        yield {"base": base, "keys": keys}
    finally:
        retire(server, worker)


def _post(web, **fields) -> str:
    event = {"source": "prometheus", "event_type": "pod_pending", "severity": "medium", "title": uuid.uuid4().hex,
             **fields}  # fmt: skip
    accepted = request("POST", f"{web['base']}/api/v1/events/webhook", key=web["keys"]["admin"], json=event)
    assert accepted.status == 202, accepted.body
    return str(accepted.json()["event_id"])


def _agent(web) -> dict:
    agents = request("GET", f"{web['base']}/api/v1/agents/status", key=web["keys"]["viewer"]).json()["agents"]
    return next(a for a in agents if a["name"] == "spend")


def test_an_event_matching_an_agents_route_sends_it_a_run_and_others_do_not(web):
    base, admin = web["base"], web["keys"]["admin"]
    # Given a started cost agent routed the Prometheus events tagged k8s-prod (a bad route is refused first)
    bad = request("POST", f"{base}/api/v1/agents/config", key=admin, json={
        "name": "spend", "type": "cost", "routes": [{"matchers": [{"name": "colour", "value": "red"}]}]})  # fmt: skip
    assert bad.status == 400 and bad.json()["field"] == "routes[0].matchers[0].name", bad.body
    route = {"matchers": [{"name": "source", "value": "prometheus"}, {"name": "tag", "value": "k8s-prod"}]}
    made = request("POST", f"{base}/api/v1/agents/config", key=admin, json={
        "name": "spend", "type": "cost", "enabled": True, "interval_seconds": 86400, "routes": [route]})  # fmt: skip
    assert made.status == 201 and made.json()["routes"][0]["matchers"][1]["value"] == "k8s-prod", made.body
    # When an event its route does not take in is stored and evaluated
    other = _post(web, host="web-01", tags=["k8s-staging"])
    wait_for(lambda: request("GET", f"{base}/api/v1/events/{other}", key=web["keys"]["viewer"]).status == 200,
             timeout=30, message="the other event stored")  # fmt: skip
    # And then events it takes in
    routed = [_post(web, host=f"node-{i}", tags=["k8s-prod", "capacity"]) for i in range(3)]
    # Then the agent ran for them (and for no other event): its last result says why
    ran = wait_for(lambda: (a := _agent(web))["last_run_at"] and a, timeout=40, message="the routed run")
    trigger = ran["last_result"]["trigger"]
    assert trigger["trigger"] == "events" and trigger["event_ids"], ran
    assert set(trigger["event_ids"]) <= set(routed) and other not in trigger["event_ids"]
    assert ran["last_error"] is None and ran["last_result"]["proposed"] == 0

"""Approvals over the real stack (gunicorn, a gevent executor, RabbitMQ, PostgreSQL): the issue's
reusable token, approvals by the requester's other key and by the rule's author, all refused."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from app.auth import create_key
from app.ids import uuid7
from app.models import Approval, DecisionLog, ProcessedEvent
from tests.http import request
from tests.processes import start_web, start_worker, wait_for
from tests.targets import http_target


@pytest.fixture(scope="module")
def target():
    with http_target() as server:
        yield server


@pytest.fixture(scope="module")
def live(stack_env) -> Iterator[dict]:
    env = {**stack_env, "AUTONOMY_MODE": "auto", "BUSINESS_HOURS": "00:00-00:00"}
    keys = {"admin": create_key(role="admin", name="admin-h", person="dana"),
            "alice": create_key(role="operator", name="alice-laptop", person="alice"),
            "alice-phone": create_key(role="operator", name="alice-phone", person="alice"),
            "bob": create_key(role="operator", name="bob")}  # fmt: skip
    executor = start_worker(env, queues=("execute",), threads=10, gevent=True)
    web, base = start_web(env)
    try:
        yield {"base": base, "keys": keys}
    finally:
        web.stop()
        executor.stop()


def _decision(live, target) -> int:
    """The admin (dana) writes a rule and a template with restart and the critical wipe; a decision on them."""
    base, admin = live["base"], live["keys"]["admin"]
    rule = request("POST", f"{base}/api/v1/rules/triggers", key=admin, json={
        "name": "disk full", "conditions": {"event_type": "disk_full"}, "active": False})  # fmt: skip
    assert rule.status == 201, rule.body
    actions = [
        {"id": "restart", "name": "Restart", "type": "remediation", "operation": "service_restart",
         "approval_required": True, "http": {"method": "POST", "url": f"{target.url}/restart"}},
        {"id": "wipe", "name": "Wipe the disk", "type": "remediation", "approval_required": True,
         "http": {"method": "POST", "url": f"{target.url}/wipe"}},
    ]  # fmt: skip
    template = request("POST", f"{base}/api/v1/rules/responses", key=admin, json={
        "name": f"disk {uuid.uuid4().hex[:6]}", "response_type": "remediation",
        "trigger_rule_id": rule.json()["rule_id"], "actions": actions})  # fmt: skip
    assert template.status == 201, template.body
    event = ProcessedEvent.create(
        id=uuid7(), source_type="webhook", event_type="disk_full", severity="high", source_host="web-01",
        title="disk full", occurred_at=datetime.now(UTC), fingerprint=uuid.uuid4().hex, event_data={},
    )  # fmt: skip
    return DecisionLog.create(event_id=event.id, decision_type="remediate", confidence_score=0.5, reasoning="r",
                              trigger_rule_id=rule.json()["rule_id"], response_template_id=template.json()["template_id"],
                              template_version=1).id  # fmt: skip


def _status(live, execution_id: str) -> str:
    url = f"{live['base']}/api/v1/autonomous/executions/{execution_id}"
    return request("GET", url, key=live["keys"]["bob"]).json()["status"]


def _execute(live, who: str, body: dict):
    return request("POST", f"{live['base']}/api/v1/autonomous/execute", key=live["keys"][who], json=body)


def test_an_approval_token_runs_the_approved_actions_once_and_nothing_else(live, target):
    # Given alice's request to restart, waiting for an approval
    decision_id = _decision(live, target)
    first = _execute(live, "alice", {"decision_id": decision_id, "action_ids": ["restart"]})
    assert first.status == 202, first.body
    execution_id = first.json()["execution_id"]
    wait_for(lambda: _status(live, execution_id) == "awaiting_approval", message="the approval request")
    url = f"{live['base']}/api/v1/autonomous/executions/{execution_id}/approve"

    # When alice's other key approves: refused (one person), and the rule's author: refused
    same = request("POST", url, key=live["keys"]["alice-phone"])
    assert same.status == 403 and "'alice' requested this execution" in same.json()["message"]
    author = request("POST", url, key=live["keys"]["admin"])
    assert author.status == 403 and "'dana' wrote the rule or template" in author.json()["message"]
    # And bob approves: restart runs, and bob gets a token for restart only
    approved = request("POST", url, key=live["keys"]["bob"])
    assert approved.status == 200, approved.body
    token = approved.json()["approval"]["approval_token"]
    assert approved.json()["approval"]["approval_token_scope"]["action_ids"] == ["restart"]
    wait_for(lambda: _status(live, execution_id) == "completed", message="the approved restart")

    # Then the request, restart and wipe with the token, is refused naming wipe
    both = _execute(
        live, "alice", {"decision_id": decision_id, "action_ids": ["restart", "wipe"], "approval_token": token}
    )
    assert both.status == 403 and "['wipe'] need their own approval" in both.json()["message"]
    # And bob, who approved, cannot use his own token
    own = _execute(live, "bob", {"decision_id": decision_id, "action_ids": ["restart"], "approval_token": token})
    assert own.status == 403 and "'bob' gave this approval" in own.json()["message"]
    # And alice runs restart once with it; a second use is refused
    again = _execute(live, "alice", {"decision_id": decision_id, "action_ids": ["restart"], "approval_token": token})
    assert again.status == 202, again.body
    wait_for(lambda: _status(live, again.json()["execution_id"]) == "completed", message="the pre-approved restart")
    reused = _execute(live, "alice", {"decision_id": decision_id, "action_ids": ["restart"], "approval_token": token})
    assert reused.status == 409 and "used already" in reused.json()["message"]
    assert [r["path"] for r in target.requests].count("/restart") == 2
    assert "/wipe" not in [r["path"] for r in target.requests]
    used = Approval.get(Approval.token_used_for.is_null(False))
    assert str(used.token_used_for) == again.json()["execution_id"] and used.decided_person == "bob"

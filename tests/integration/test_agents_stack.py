"""The agent registry over real gunicorn, heartbeats from a real dramatiq worker, and an agent's proposal
taken by the real stack: decider's policy, an approval over the API, the executor against a local HTTP server."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from dramatiq import Message
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from app.agents import registry
from app.agents.runner import run_agent
from app.auth import create_key
from app.config import Settings
from app.db import in_transaction
from app.publishing import publish_items
from tests.http import request
from tests.processes import wait_for
from tests.targets import http_target
from tests.unit.test_agents import ScaleUp


def test_agents_are_listed_and_configured_by_an_admin_with_bad_input_refused_and_changes_audited(stack, db):
    base, admin = stack.base, stack.admin
    operator = create_key(role="operator", name="agents operator")
    # Given the registry's default agents, one per kind
    listed = request("GET", f"{base}/api/v1/agents", key=stack.viewer)
    assert listed.status == 200
    assert {"orchestrator", "terraform", "kubernetes", "cost"} <= {a["name"] for a in listed.json()["agents"]}
    # When bad configurations are posted, Then 400 names the field
    for body, field in (({"name": "k8s-prod", "type": "kubernetes", "automation_level": "yolo"}, "automation_level"),
                        ({"name": "k8s-prod", "type": "kubernetes", "thresholds": {"cpu": "high"}}, "thresholds.cpu"),
                        ({"name": "k8s-prod", "type": "kubernetes",
                          "integrations": [{"type": "kubernetes", "token": "plaintext-token"}]}, "integrations[0].token")):  # fmt: skip
        refused = request("POST", f"{base}/api/v1/agents/config", key=admin, json=body)
        assert refused.status == 400 and refused.json()["field"] == field, refused.body
    # And an operator may not configure (it decides what runs without a human)
    assert request("POST", f"{base}/api/v1/agents/config", key=operator,
                   json={"name": "k8s-prod", "type": "kubernetes"}).status == 403  # fmt: skip
    # When an admin creates an agent and an operator stops and starts it
    created = request("POST", f"{base}/api/v1/agents/config", key=admin, json={
        "name": "k8s-prod", "type": "kubernetes", "enabled": True, "automation_level": "semi-auto",
        "thresholds": {"cpu_target": 0.7}, "interval_seconds": 120,
        "integrations": [{"type": "kubernetes", "kubeconfig": {"file": "/etc/oc/kubeconfig"}}]})  # fmt: skip
    stopped = request("POST", f"{base}/api/v1/agents/k8s-prod/stop", key=operator)
    started = request("POST", f"{base}/api/v1/agents/k8s-prod/start", key=operator)
    # Then each answers with the configuration as it now is
    assert created.status == 201 and created.json()["automation_level"] == "semi-auto", created.body
    assert created.json()["queue"] == "agent_kubernetes"
    assert stopped.json()["state"] == "stopped" and started.json()["state"] == "started"
    assert request("POST", f"{base}/api/v1/agents/nobody/stop", key=operator).status == 404
    # And the audit log has each change, by whom
    audit = request("GET", f"{base}/api/v1/audit?object_kind=agent&object_id=k8s-prod", key=admin).json()
    actions = [(row["action"], row["actor"].split(":")[-1]) for row in audit["entries"]]
    assert actions == [("agent.started", "agents operator"), ("agent.stopped", "agents operator"),
                       ("agent.configured", "test admin")], audit  # fmt: skip


def test_a_worker_consuming_agent_queues_heartbeats_and_the_agent_shows_up(stack, db):
    # Given an enabled agent, and the stack's worker (it consumes every queue, agent_cost among them)
    reply = request("POST", f"{stack.base}/api/v1/agents/config", key=stack.admin,
                    json={"name": "costs", "type": "cost", "enabled": True})  # fmt: skip
    assert reply.status in (200, 201), reply.body

    # When the status is read
    def up():
        agents = request("GET", f"{stack.base}/api/v1/agents/status", key=stack.viewer).json()["agents"]
        return next(a for a in agents if a["name"] == "costs")["health"] == "up" and agents

    agents = wait_for(up, timeout=20, message="the worker's agent heartbeat")
    # Then the agent is up with the worker's process listed, and no cost agent is implemented here yet
    costs = next(a for a in agents if a["name"] == "costs")
    assert costs["processes"] and costs["processes"][0]["pid"] > 0
    assert costs["implementation"]["ready"] is False
    # And /metrics says so
    metrics = wait_for(lambda: (t := request("GET", f"{stack.base}/metrics").body.decode()) and
                       'opsconductor_agent_up{agent="costs"}' in t and t, timeout=10, message="agent_up")  # fmt: skip
    assert re.search(r'opsconductor_agent_up\{agent="costs"\} 1\.0', metrics)


def test_an_agents_proposal_waits_for_an_approval_and_the_stacks_executor_applies_it(stack, db, rabbitmq_url):
    base = stack.base
    in_transaction(lambda: registry.configure({"name": "k8s-shop", "kind": "kubernetes", "enabled": True,
                                               "automation_level": "full-auto", "approval_required": False},
                                              actor="test", now=datetime.now(UTC)))  # fmt: skip
    broker = RabbitmqBroker(url=rabbitmq_url, confirm_delivery=True)
    try:
        with http_target() as target:
            # Given a stand-in agent proposing a medium-risk scale-up (the policy gates medium risk)
            outcome = run_agent("k8s-shop", settings=Settings(autonomy_mode="auto"),
                                publish=lambda items: publish_items(broker, items), agent=ScaleUp(target.url))  # fmt: skip
            assert len(outcome.executions) == 1 and outcome.events == 1
            execution_id = outcome.executions[0]
            # When its execution is handed to the stack's executor, as the agent's actor does
            broker.enqueue(Message(queue_name="execute", actor_name="execute", args=(execution_id,), kwargs={},
                                   options={}))  # fmt: skip
            url = f"{base}/api/v1/autonomous/executions/{execution_id}"

            def status(wanted: str):
                body = request("GET", url, key=stack.viewer).json()
                return body if body["status"] == wanted else None

            waiting = wait_for(lambda: status("awaiting_approval"), timeout=30, message="the approval request")
            # Then it waits, showing the approvers the exact request and why, and nothing reached the target
            approval = waiting["approval"]
            assert approval["status"] == "pending" and target.requests == []
            assert approval["requested_actions"][0]["request"]["method"] == "PATCH"
            assert "declares it medium risk" in approval["reason"]
            # When an admin approves over the API
            assert request("POST", f"{url}/approve", key=stack.admin, json={"comment": "peak ahead"}).status == 200
            done = wait_for(lambda: status("completed"), timeout=30, message="the approved execution")
            # Then the executor applied exactly the planned change, and the observation became an event
            assert [(r["method"], r["json"]) for r in target.requests] == [("PATCH", {"spec": {"replicas": 5}})]
            assert done["requested_by"] == "agent:k8s-shop" and done["rollback_plan"]["supported"]
            events = wait_for(lambda: request("GET", f"{base}/api/v1/events?host=k8s:shop/deployment/web",
                                              key=stack.viewer).json()["events"], timeout=30, message="the agent's event")  # fmt: skip
            assert events[0]["event_type"] == "capacity_forecast"
    finally:
        broker.close()

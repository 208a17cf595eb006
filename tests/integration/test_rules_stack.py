"""Trigger rules over the real stack: the API, a webhook event firing a rule end to end, and two
evaluator processes on the real RabbitMQ never exceeding a rule's limit."""

from __future__ import annotations

import time
import uuid

from dramatiq import Message
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from app.events.envelope import make_item
from app.events.store import store_batch
from app.ids import new_id
from app.models import AuditLog, DecisionLog, RuleExecution, TriggerRule
from app.rules.evaluation import columns_of
from app.rules.triggers import parse_trigger
from tests import services
from tests.http import request
from tests.processes import start_worker, wait_for

SPEC_RULE = {
    "name": "High CPU Alert Rule",
    "description": "Trigger when CPU usage exceeds 90%",
    "conditions": {"event_type": "threshold_breach", "severity": ["critical", "high"], "metadata.cpu_usage": {"$gt": 90},
                   "host": {"$regex": "web-server-.*"}},
    "time_window_minutes": 5,
    "max_triggers_per_hour": 3,
    "cooldown_minutes": 15,
    "active": True,
}  # fmt: skip


def test_trigger_rule_crud_with_validation(stack):
    # Create (operator role needed), read, update, test, delete
    denied = request("POST", f"{stack.base}/api/v1/rules/triggers", json=SPEC_RULE, key=stack.viewer)
    assert denied.status == 403
    created = request("POST", f"{stack.base}/api/v1/rules/triggers", json=SPEC_RULE, key=stack.admin)
    assert created.status == 201, created.body
    body = created.json()
    assert body["status"] == "created" and body["validation_result"]["valid"] is True
    assert isinstance(body["validation_result"]["estimated_trigger_rate"], str)
    rule_id = body["rule_id"]
    got = request("GET", f"{stack.base}/api/v1/rules/triggers/{rule_id}", key=stack.viewer).json()
    assert got["conditions"] == SPEC_RULE["conditions"] and got["cooldown_minutes"] == 15
    bad = request("PUT", f"{stack.base}/api/v1/rules/triggers/{rule_id}", key=stack.admin,
                  json=dict(SPEC_RULE, conditions={"metadata.cpu_usage": {"$greater": 90}}))  # fmt: skip
    assert bad.status == 400 and bad.json()["field"] == "conditions.metadata.cpu_usage.$greater"
    updated = request(
        "PUT",
        f"{stack.base}/api/v1/rules/triggers/{rule_id}",
        key=stack.admin,
        json=dict(SPEC_RULE, max_triggers_per_hour=5),
    )
    assert updated.status == 200
    assert (
        request("GET", f"{stack.base}/api/v1/rules/triggers/{rule_id}", key=stack.viewer).json()[
            "max_triggers_per_hour"
        ]
        == 5
    )
    tested = request("POST", f"{stack.base}/api/v1/rules/triggers/{rule_id}/test", key=stack.viewer, json={})
    assert tested.status == 200 and "fired" in tested.json()
    assert request("DELETE", f"{stack.base}/api/v1/rules/triggers/{rule_id}", key=stack.admin).status == 200
    assert request("GET", f"{stack.base}/api/v1/rules/triggers/{rule_id}", key=stack.viewer).status == 404


def test_a_webhook_event_fires_a_rule_through_every_queue(stack, db):
    # Given a rule for this host
    host = f"web-server-{uuid.uuid4().hex[:6]}"
    rule = dict(SPEC_RULE, name=f"cpu {host}", conditions=dict(SPEC_RULE["conditions"], host=host))
    rule_id = request("POST", f"{stack.base}/api/v1/rules/triggers", json=rule, key=stack.admin).json()["rule_id"]
    # When a matching event is posted (the evaluator picks up the new rule within its refresh)
    time.sleep(2.5)
    event = {"source": "nagios", "event_type": "threshold_breach", "severity": "critical", "host": host, "title": "CPU",
             "metadata": {"cpu_usage": 97.5}}  # fmt: skip
    event_id = request("POST", f"{stack.base}/api/v1/events/webhook", json=event, key=stack.ingest).json()["event_id"]
    # Then the rule fired once, and the decider decided the firing (no template: escalate to humans)
    execution = wait_for(
        lambda: RuleExecution.get_or_none(
            (RuleExecution.trigger_rule_id == rule_id) & (RuleExecution.triggering_event_id == event_id)
        ),
        message="the firing",
    )
    decision = wait_for(lambda: DecisionLog.get_or_none(DecisionLog.rule_execution_id == execution.id),
                        message="the decider's decision")  # fmt: skip
    assert decision.decision_type == "escalate" and decision.decided_by == "policy"
    assert RuleExecution.select().where(RuleExecution.trigger_rule_id == rule_id).count() == 1
    assert AuditLog.get_or_none(AuditLog.subject == f"decision:{decision.id}") is not None


def test_two_evaluator_processes_never_exceed_the_hourly_limit(stack_env, rabbitmq_url, pg_db):
    # Given a rule allowed to fire 3 times an hour and 40 matching events, each in its own message
    services.purge_queues(rabbitmq_url)
    host = f"race-{uuid.uuid4().hex[:6]}"
    spec = parse_trigger({"name": "race", "conditions": {"host": host}, "max_triggers_per_hour": 3})
    rule_id = TriggerRule.create(**columns_of(spec)).id
    items = [make_item(id=new_id(), source_type="webhook", received_at=time.time(), payload={"source": "t", "host": host, "title": f"e{i}"})
             for i in range(40)]  # fmt: skip
    store_batch(items, window_s=300)
    time.sleep(2.5)  # evaluators pick up rule changes within 2 s
    broker = RabbitmqBroker(url=rabbitmq_url, confirm_delivery=True)
    for item in items:
        broker.enqueue(
            Message(queue_name="evaluate", actor_name="evaluate", args=([item["id"]],), kwargs={}, options={})
        )
    broker.close()
    # When two evaluator processes (and the stack's worker) race over them
    workers = [start_worker(stack_env, queues=("evaluate",), threads=4) for _ in range(2)]
    try:
        wait_for(lambda: count_ready("evaluate") == 0, timeout=30, message="the evaluate queue drained")
        time.sleep(1)
    finally:
        for w in workers:
            w.stop()
    # Then the rule fired exactly three times
    assert RuleExecution.select().where(RuleExecution.trigger_rule_id == rule_id).count() == 3


def count_ready(queue: str) -> int:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(services.RABBITMQ_URL))
    try:
        q = connection.channel().queue_declare(queue, passive=True)
        return q.method.message_count
    finally:
        connection.close()


def test_response_templates_are_versioned(stack):
    from tests.unit.test_playbooks import SPEC_TEMPLATE

    created = request("POST", f"{stack.base}/api/v1/rules/responses", json=SPEC_TEMPLATE, key=stack.admin)
    assert created.status == 201, created.body
    template_id = created.json()["template_id"]
    assert created.json()["execution_order"][0] == "diagnostic_cpu"
    bad = request("POST", f"{stack.base}/api/v1/rules/responses", key=stack.admin,
                  json=dict(SPEC_TEMPLATE, actions=[{"id": "a", "type": "teleport"}]))  # fmt: skip
    assert bad.status == 400 and bad.json()["field"] == "actions[0].type"
    updated = request("PUT", f"{stack.base}/api/v1/rules/responses/{template_id}", key=stack.admin,
                      json=dict(SPEC_TEMPLATE, name="High CPU v2", max_execution_time_minutes=45))  # fmt: skip
    assert updated.json()["version"] == 2
    current = request("GET", f"{stack.base}/api/v1/rules/responses/{template_id}", key=stack.viewer).json()
    first = request("GET", f"{stack.base}/api/v1/rules/responses/{template_id}?version=1", key=stack.viewer).json()
    assert (current["name"], current["version"], current["max_execution_time_minutes"]) == ("High CPU v2", 2, 45)
    assert (first["name"], first["version"]) == ("High CPU Usage Investigation", 1)
    assert (
        request("DELETE", f"{stack.base}/api/v1/rules/responses/{template_id}", key=stack.admin).json()["status"]
        == "deactivated"
    )

"""Paging over the real stack: gunicorn, a dramatiq worker (notify included), RabbitMQ, PostgreSQL."""

from __future__ import annotations

import time
import uuid

from app.models import DecisionLog, Notification
from tests.http import request
from tests.processes import wait_for
from tests.targets import http_target


def test_an_escalate_decision_pages_through_a_policy_to_a_webhook(stack, db):
    tag = f"team-{uuid.uuid4().hex[:6]}"
    with http_target() as server:
        # Given a policy sending escalations of this team's events to a local webhook, and a rule with no template
        body = {"name": f"escalations of {tag}", "matchers": {"triggers": ["escalation"], "tags": [tag]},
                "channels": [{"type": "webhook", "url": f"{server.url}/page"}]}  # fmt: skip
        created = request("POST", f"{stack.base}/api/v1/notification-policies", json=body, key=stack.admin)
        assert created.status == 201, created.body
        host = f"db-{uuid.uuid4().hex[:6]}"
        rule = {"name": f"disk {host}", "conditions": {"host": host}, "max_triggers_per_hour": 10}
        assert request("POST", f"{stack.base}/api/v1/rules/triggers", json=rule, key=stack.admin).status == 201
        time.sleep(2.5)  # evaluators pick up rule changes within 2 s
        # When a critical event of the team arrives
        event = {"source": "t", "event_type": "disk", "severity": "critical", "host": host, "tags": [tag],
                 "title": f"Disk full on {host}"}  # fmt: skip
        accepted = request("POST", f"{stack.base}/api/v1/events/webhook", json=event, key=stack.ingest)
        assert accepted.status == 202, accepted.body
        # Then the decider escalates and the notify worker posts the page to the webhook
        page = server.wait_for(1, timeout_s=30)[0]
        assert page["path"] == "/page" and page["json"]["trigger"] == "escalation"
        assert page["json"]["title"] == f"Escalated: Disk full on {host}" and page["json"]["severity"] == "critical"
        decision = DecisionLog.get(DecisionLog.id == page["json"]["details"]["decision_id"])
        assert decision.decision_type == "escalate"
        # And the outbox shows it sent, once
        shown = wait_for(lambda: [n for n in request("GET", f"{stack.base}/api/v1/notifications?trigger=escalation",
                                                    key=stack.viewer).json()["notifications"]
                                  if n["policy_id"] == created.json()["id"] and n["status"] == "sent"],
                         message="the notification sent")  # fmt: skip
        assert len(shown) == 1 and shown[0]["attempts"] == 1
        assert Notification.select().where(Notification.policy_id == created.json()["id"]).count() == 1
        request("DELETE", f"{stack.base}/api/v1/notification-policies/{created.json()['id']}", key=stack.admin)

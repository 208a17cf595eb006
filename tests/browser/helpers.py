"""What the browser tests do through the API: post events, make rules and playbooks, wait for results."""

from __future__ import annotations

import time
import uuid
from typing import Any

from tests.http import request
from tests.processes import wait_for


def post_event(stack: Any, *, host: str, title: str, event_type: str = "threshold_breach") -> str:
    event = {"source": "browser-test", "event_type": event_type, "severity": "high", "host": host, "title": title}
    accepted = request("POST", f"{stack.base}/api/v1/events/webhook", key=stack.ingest, json=event)
    assert accepted.status == 202, accepted.body
    return accepted.json()["event_id"]


def incident_of(stack: Any, event_id: str, *, timeout: float = 20.0) -> str:
    """The incident the correlator put ``event_id`` in."""

    def found() -> str | None:
        reply = request("GET", f"{stack.base}/api/v1/events/{event_id}", key=stack.viewer)
        return reply.json().get("correlation_id") if reply.status == 200 else None

    return wait_for(found, timeout=timeout, message=f"event {event_id} correlated")


def rule(stack: Any, *, host: str, actions: list[dict[str, Any]] | None = None) -> int:
    """A trigger rule on ``host``'s threshold breaches (with a playbook of ``actions`` when given); its id."""
    made = request("POST", f"{stack.base}/api/v1/rules/triggers", key=stack.admin, json={
        "name": f"cpu on {host}", "conditions": {"event_type": "threshold_breach", "host": host},
        "max_triggers_per_hour": 100, "active": True})  # fmt: skip
    assert made.status == 201, made.body
    rule_id = made.json()["rule_id"]
    if actions is not None:
        template = request("POST", f"{stack.base}/api/v1/rules/responses", key=stack.admin, json={
            "name": f"playbook for {host}", "response_type": "remediation", "trigger_rule_id": rule_id,
            "actions": actions})  # fmt: skip
        assert template.status == 201, template.body
    time.sleep(2.5)  # evaluators refresh their compiled rules within 2 s
    return rule_id


def unique_host(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def execution_of(stack: Any, event_id: str, status: str, *, timeout: float = 30.0) -> dict[str, Any]:
    """The execution of ``event_id`` once it is ``status``."""

    def found() -> dict[str, Any] | None:
        reply = request("GET", f"{stack.base}/api/v1/autonomous/executions?event_id={event_id}", key=stack.viewer)
        rows = reply.json()["executions"]
        return rows[0] if rows and rows[0]["status"] == status else None

    return wait_for(found, timeout=timeout, message=f"an execution {status} for event {event_id}")

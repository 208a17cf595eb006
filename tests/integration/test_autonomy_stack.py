"""Autonomous response on the real stack: a webhook event fires a rule, the decider decides, the
executor (under dramatiq-gevent) runs the playbook against a local HTTP server and SMTP sink;
approvals, their timeout (a delayed message through RabbitMQ) and rollback."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from app.auth import create_key
from tests.http import request
from tests.processes import start_web, start_worker, wait_for
from tests.targets import http_target, smtp_sink


@pytest.fixture(scope="module")
def target():
    with http_target(responses={"/fail": (500, {"error": "boom"})}, hold={"/concurrency/": (40, 20.0)}) as server:
        yield server


@pytest.fixture(scope="module")
def sink():
    with smtp_sink() as server:
        yield server


@pytest.fixture(scope="module")
def auto(stack_env, target, sink) -> Iterator[dict]:
    env = {
        **stack_env,
        "AUTONOMY_MODE": "auto",
        "SMTP_URL": sink.url,
        "NOTIFY_EMAIL_TO": "oncall@example.com",
        "APPROVAL_TIMEOUT_MINUTES": "0.05",  # 3 s: the timeout test waits for the delayed message
        "BUSINESS_HOURS": "00:00-00:00",
    }  # never business hours: the test's risk does not depend on the clock
    keys = {name: create_key(role=role, name=name) for name, role in
            (("admin", "admin"), ("alice", "operator"), ("bob", "operator"), ("viewer", "viewer"))}  # fmt: skip
    pipeline = start_worker(env, queues=("normalize", "correlate", "evaluate", "decide"))
    executor = start_worker(env, queues=("execute", "rollback"), threads=50, gevent=True)
    web, base = start_web(env)
    try:
        topology = request("PUT", f"{base}/api/v1/topology", key=keys["admin"],
                           json={"criticality": {f"web-{i:02d}": "low" for i in range(1, 10)}})  # fmt: skip
        assert topology.status == 200, topology.body
        yield {"base": base, "keys": keys, "env": env}
    finally:
        web.stop()
        pipeline.stop()
        executor.stop()


def _rule_and_template(auto, host: str, actions: list[dict], response_type: str = "investigation") -> None:
    base, admin = auto["base"], auto["keys"]["admin"]
    rule = request("POST", f"{base}/api/v1/rules/triggers", key=admin, json={
        "name": f"cpu on {host}", "conditions": {"event_type": "threshold_breach", "host": host},
        "max_triggers_per_hour": 100, "active": True})  # fmt: skip
    assert rule.status == 201, rule.body
    template = request("POST", f"{base}/api/v1/rules/responses", key=admin, json={
        "name": f"playbook for {host}", "response_type": response_type, "trigger_rule_id": rule.json()["rule_id"],
        "actions": actions})  # fmt: skip
    assert template.status == 201, template.body
    time.sleep(2.5)  # evaluators refresh their compiled rules within 2 s


def _fire(auto, host: str) -> str:
    event = {"source": "test", "event_type": "threshold_breach", "severity": "high", "host": host,
             "title": f"CPU high on {host} ({uuid.uuid4().hex[:8]}); `reboot`", "metadata": {"cpu_usage": 97}}  # fmt: skip
    accepted = request("POST", f"{auto['base']}/api/v1/events/webhook", key=auto["keys"]["admin"], json=event)
    assert accepted.status == 202, accepted.body
    return accepted.json()["event_id"]


def _execution(auto, event_id: str, status: str | tuple[str, ...], timeout: float = 30.0) -> dict:
    wanted = (status,) if isinstance(status, str) else status

    def found():
        reply = request("GET", f"{auto['base']}/api/v1/autonomous/executions?event_id={event_id}",
                        key=auto["keys"]["viewer"])  # fmt: skip
        rows = reply.json()["executions"]
        return rows[0] if rows and rows[0]["status"] in wanted else None

    summary = wait_for(found, timeout=timeout, message=f"an execution {wanted} for event {event_id}")
    return request("GET", f"{auto['base']}/api/v1/autonomous/executions/{summary['execution_id']}",
                   key=auto["keys"]["viewer"]).json()  # fmt: skip


def _paths(target, prefix: str) -> list[str]:
    return [r["path"] for r in target.requests if r["path"].startswith(prefix)]


def test_a_webhook_event_runs_a_low_risk_playbook_to_completion(auto, target, sink):
    # Given a rule on web-01 whose playbook calls an automation service, then emails on-call
    _rule_and_template(auto, "web-01", [
        {"id": "diagnose", "name": "Ask the automation service", "type": "diagnostic",
         "http": {"method": "POST", "url": f"{target.url}/e2e/diagnose", "json": {"host": "{{ event.host }}"}}},
        {"id": "tell", "name": "Email on-call", "type": "notification", "depends_on": ["diagnose"],
         "notify": {"channel": "email", "subject": "Diagnosed {{ event.host }}", "message": "{{ event.title }}"}},
    ])  # fmt: skip
    before = len(sink.messages)

    # When an event arrives over HTTP
    event_id = _fire(auto, "web-01")

    # Then the execution completes: the HTTP step reached the server, the email the sink
    execution = _execution(auto, event_id, "completed")
    assert [a["status"] for a in execution["actions"]] == ["completed", "completed"]
    assert _paths(target, "/e2e/diagnose") == ["/e2e/diagnose"]
    assert next(r for r in target.requests if r["path"] == "/e2e/diagnose")["json"] == {"host": "web-01"}
    sink.wait_for(before + 1, timeout_s=10)
    assert sink.messages[-1]["message"]["Subject"] == "Diagnosed web-01"
    # And the decision is recorded with its reasoning and risk, by the policy (no LLM configured)
    decisions = request("GET", f"{auto['base']}/api/v1/autonomous/decisions?event_id={event_id}",
                        key=auto["keys"]["viewer"]).json()["decisions"]  # fmt: skip
    assert len(decisions) == 1
    result = decisions[0]["analysis_result"]
    assert result["recommended_action"] == "investigate" and result["decided_by"] == "policy"
    assert result["confidence_score"] > 0.8 and decisions[0]["approval_requirements"]["required"] is False


REMEDIATION = [
    {"id": "check", "name": "Check", "type": "diagnostic", "http": {"method": "GET", "url": "{{ target }}/check"}},
    {"id": "restart", "name": "Restart the service", "type": "remediation", "operation": "service_restart",
     "approval_required": True, "depends_on": ["check"],
     "http": {"method": "POST", "url": "{{ target }}/restart/{{ event.host }}"}},
]  # fmt: skip


def _remediation(target, host: str) -> list[dict]:
    return [{**a, "http": {**a["http"], "url": a["http"]["url"].replace("{{ target }}", f"{target.url}/{host}")}}
            for a in REMEDIATION]  # fmt: skip


def test_a_high_risk_step_waits_for_approval_and_runs_once_approved(auto, target, sink):
    _rule_and_template(auto, "web-02", _remediation(target, "web-02"), response_type="remediation")
    event_id = _fire(auto, "web-02")
    waiting = _execution(auto, event_id, "awaiting_approval")
    assert waiting["approval"]["status"] == "pending" and waiting["approval"]["approvers"] == ["operator", "admin"]
    # The approvers are told, by email to NOTIFY_EMAIL_TO
    wait_for(lambda: any(waiting["execution_id"] in m["message"].get_content() for m in sink.messages), timeout=10,
             message="the approval request email")  # fmt: skip
    assert _paths(target, "/web-02/restart") == []
    url = f"{auto['base']}/api/v1/autonomous/executions/{waiting['execution_id']}"
    # A viewer may not approve
    assert request("POST", f"{url}/approve", key=auto["keys"]["viewer"]).status == 403
    # An operator approves: the rest runs
    approved = request("POST", f"{url}/approve", key=auto["keys"]["alice"], json={"comment": "go"})
    assert approved.status == 200, approved.body
    done = _execution(auto, event_id, "completed")
    assert done["approval"]["decided_by"].endswith(":alice")
    assert _paths(target, "/web-02/restart") == ["/web-02/restart/web-02"]


def test_analyze_on_demand_answers_in_the_specs_shape(auto, target):
    _rule_and_template(auto, "web-08", _remediation(target, "web-08"), response_type="remediation")
    event_id = _fire(auto, "web-08")
    _execution(auto, event_id, "awaiting_approval")
    body = {"event_id": event_id, "context": {"business_hours": True, "maintenance_window": False,
                                              "system_criticality": "high"},
            "analysis_options": {"include_recommendations": True, "include_risk_assessment": True}}  # fmt: skip
    reply = request("POST", f"{auto['base']}/api/v1/autonomous/analyze", key=auto["keys"]["alice"], json=body)
    assert reply.status == 200, reply.body
    analysis = reply.json()
    assert isinstance(analysis["decision_id"], int)
    result = analysis["analysis_result"]
    assert result["recommended_action"] == "remediate" and 0 <= result["confidence_score"] <= 1
    assert result["risk_level"] in ("medium", "high", "critical") and result["reasoning"]
    assert [a["action_id"] for a in analysis["recommended_actions"]] == ["check", "restart"]
    # A high-criticality system in business hours: even the check is above the threshold
    assert all(a["approval_required"] for a in analysis["recommended_actions"])
    assert analysis["approval_requirements"]["required"] is True
    assert analysis["approval_requirements"]["approvers"] == ["operator", "admin"]
    missing = request("POST", f"{auto['base']}/api/v1/autonomous/analyze", key=auto["keys"]["alice"],
                      json={"event_id": str(uuid.uuid4())})  # fmt: skip
    assert missing.status == 404
    assert (
        request("POST", f"{auto['base']}/api/v1/autonomous/analyze", key=auto["keys"]["viewer"], json=body).status
        == 403
    )


def test_an_operator_cancels_an_execution_waiting_for_approval(auto, target):
    _rule_and_template(auto, "web-09", _remediation(target, "web-09"), response_type="remediation")
    waiting = _execution(auto, _fire(auto, "web-09"), "awaiting_approval")
    url = f"{auto['base']}/api/v1/autonomous/executions/{waiting['execution_id']}"
    cancelled = request("POST", f"{url}/cancel", key=auto["keys"]["alice"])
    assert cancelled.status == 200 and cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["approval"]["status"] == "rejected"
    assert request("POST", f"{url}/cancel", key=auto["keys"]["alice"]).status == 409
    assert _paths(target, "/web-09/") == []


def test_a_rejected_step_never_runs(auto, target):
    _rule_and_template(auto, "web-03", _remediation(target, "web-03"), response_type="remediation")
    event_id = _fire(auto, "web-03")
    waiting = _execution(auto, event_id, "awaiting_approval")
    url = f"{auto['base']}/api/v1/autonomous/executions/{waiting['execution_id']}"
    assert request("POST", f"{url}/reject", key=auto["keys"]["bob"]).status == 200
    assert request("POST", f"{url}/approve", key=auto["keys"]["alice"]).status == 409  # too late
    cancelled = _execution(auto, event_id, "cancelled")
    assert [a["status"] for a in cancelled["actions"]] == ["cancelled", "cancelled"]
    assert _paths(target, "/web-03/") == []


def test_an_unanswered_request_is_rejected_by_the_delayed_message(auto, target):
    _rule_and_template(auto, "web-04", _remediation(target, "web-04"), response_type="remediation")
    event_id = _fire(auto, "web-04")
    _execution(auto, event_id, "awaiting_approval")
    # APPROVAL_TIMEOUT_MINUTES is 3 s here: the delayed message comes back through RabbitMQ
    cancelled = _execution(auto, event_id, "cancelled", timeout=30)
    assert cancelled["approval"]["status"] == "rejected"
    assert cancelled["approval"]["decided_by"] == "system:timeout"
    assert _paths(target, "/web-04/") == []


def test_a_failing_remediation_is_rolled_back_newest_first(auto, target):
    def fix(name, **extra):
        return {"id": name, "type": "remediation", "operation": "service_restart",
                "http": {"method": "POST", "url": f"{target.url}/web-05/{name}"},
                "rollback": {"id": f"undo_{name}", "http": {"method": "POST", "url": f"{target.url}/web-05/undo/{name}"}},
                **extra}  # fmt: skip

    failing = {"id": "three", "type": "remediation", "depends_on": ["two"],
               "http": {"method": "POST", "url": f"{target.url}/fail"}}  # fmt: skip
    _rule_and_template(auto, "web-05", [fix("one"), fix("two", depends_on=["one"]), failing],
                       response_type="remediation")  # fmt: skip
    event_id = _fire(auto, "web-05")
    waiting = _execution(auto, event_id, "awaiting_approval")  # a remediation without history needs a human
    url = f"{auto['base']}/api/v1/autonomous/executions/{waiting['execution_id']}"
    assert request("POST", f"{url}/approve", key=auto["keys"]["bob"]).status == 200
    rolled = _execution(auto, event_id, "rolled_back")
    assert _paths(target, "/web-05/") == ["/web-05/one", "/web-05/two", "/web-05/undo/two", "/web-05/undo/one"]
    assert [a["action_id"] for a in rolled["rollback_plan"]["rollback_actions"]] == ["undo_two", "undo_one"]
    assert all(a["status"] == "completed" for a in rolled["rollback_plan"]["rollback_actions"])


def test_feedback_reports_its_learning_impact_and_dangerous_gates_the_template(auto, target):
    _rule_and_template(
        auto,
        "web-06",
        [{"id": "diagnose", "type": "diagnostic", "http": {"method": "GET", "url": f"{target.url}/web-06/diagnose"}}],
    )
    first = _execution(auto, _fire(auto, "web-06"), "completed")
    reply = request("POST", f"{auto['base']}/api/v1/autonomous/feedback", key=auto["keys"]["alice"], json={
        "execution_id": first["execution_id"], "feedback_type": "safety", "rating": 1, "feedback": "dangerous",
        "comments": "this must not run alone", "would_approve_again": False})  # fmt: skip
    assert reply.status == 201, reply.body
    impact = reply.json()["learning_impact"]
    assert impact["requires_approval"] is True and impact["confidence_adjustment"] < 0
    # The next run of the same template waits for a human
    second = _execution(auto, _fire(auto, "web-06"), "awaiting_approval")
    assert second["approval"]["status"] == "pending"
    decision = request("GET", f"{auto['base']}/api/v1/autonomous/decisions/{second['decision_id']}",
                       key=auto["keys"]["viewer"]).json()  # fmt: skip
    assert "the template requires approval" in decision["approval_requirements"]["reason"]


def test_execute_api_runs_a_decision_as_a_dry_run(auto, target):
    _rule_and_template(auto, "web-07", _remediation(target, "web-07"), response_type="remediation")
    event_id = _fire(auto, "web-07")
    waiting = _execution(auto, event_id, "awaiting_approval")
    body = {"decision_id": waiting["decision_id"], "action_ids": ["restart"],
            "execution_options": {"dry_run": True, "rollback_on_failure": True, "max_execution_time_minutes": 5}}  # fmt: skip
    reply = request("POST", f"{auto['base']}/api/v1/autonomous/execute", key=auto["keys"]["alice"], json=body)
    assert reply.status == 202, reply.body
    assert [a["action_id"] for a in reply.json()["actions"]] == ["check", "restart"]
    assert reply.json()["status"] == "queued" and reply.json()["dry_run"] is True
    url = f"{auto['base']}/api/v1/autonomous/executions/{reply.json()['execution_id']}"

    def finished():
        body = request("GET", url, key=auto["keys"]["viewer"]).json()
        return body if body["status"] == "completed" else None

    # A dry run needs no approval: it shows what would run and touches nothing
    done = wait_for(finished, timeout=30, message="the dry run to complete")
    assert done["actions"][1]["planned"]["url"] == f"{target.url}/web-07/restart/web-07"
    assert _paths(target, "/web-07/restart") == []
    assert request("POST", f"{auto['base']}/api/v1/autonomous/execute", key=auto["keys"]["alice"],
                   json={"action_ids": []}).json()["field"] == "decision_id"  # fmt: skip


def test_the_gevent_executor_runs_many_slow_steps_at_once(auto, target, rabbitmq_url):
    # Given 60 executions whose one step the target holds until 40 are in flight (20 s at most), queued at once
    from dramatiq import Message
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    from app.decisions import risk
    from app.executions.store import create_execution, snapshot

    ids = []
    for i in range(60):
        action = {"id": "wait", "type": "diagnostic", "http": {"method": "GET", "url": f"{target.url}/concurrency/{i}"}}
        assessment = risk.assess(action, risk.Context(system_criticality="low"))
        row = create_execution(definition=snapshot({"name": "slow"}, [action], [assessment], set()),
                               requested_by="test", decision_id=None)  # fmt: skip
        ids.append(str(row.id))
    broker = RabbitmqBroker(url=rabbitmq_url, confirm_delivery=True)
    for execution_id in ids:
        broker.enqueue(Message(queue_name="execute", actor_name="execute", args=(execution_id,), kwargs={}, options={}))
    broker.close()

    # When the one dramatiq-gevent process (50 greenlets) works through them
    def all_completed():
        statuses = [request("GET", f"{auto['base']}/api/v1/autonomous/executions/{i}", key=auto["keys"]["viewer"]).json()["status"]
                    for i in ids]  # fmt: skip
        return all(s == "completed" for s in statuses)

    wait_for(all_completed, timeout=60, message="60 slow executions to complete")
    # Then the target saw dozens of them waiting at the same time: steps do not run one by one
    assert len(_paths(target, "/concurrency/")) == 60
    assert target.max_in_flight >= 40


def test_metrics_report_queues_and_executions_of_the_deployment(auto):
    reply = request("GET", f"{auto['base']}/metrics")
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/plain")
    text = reply.body.decode()
    assert 'opsconductor_queue_messages{kind="dead",queue="normalize"}' in text
    assert 'opsconductor_queue_messages{kind="delayed",queue="decide"}' in text
    assert "opsconductor_broker_up 1.0" in text
    completed = next(
        line for line in text.splitlines() if line.startswith('opsconductor_executions{status="completed"}')
    )
    assert float(completed.split()[-1]) >= 1
    assert "opsconductor_events_stored_estimate" in text

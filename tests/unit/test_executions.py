"""The playbook runner, approvals and rollback against real targets: a local HTTP server, an SMTP
sink and real programs; on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time

from app.config import Settings
from app.decisions import learning, risk
from app.errors import ActionNotAllowed
from app.executions import approvals
from app.executions.rollback import run_rollback
from app.executions.runner import run
from app.executions.store import create_execution, execution_json, snapshot
from app.ids import uuid7
from app.models import Approval, AuditLog, Execution, ExecutionStep, MaintenanceWindow, ProcessedEvent
from tests.targets import http_target, smtp_sink

OPERATOR = "key:7:alice"


@pytest.fixture
def target():
    with http_target(responses={"/fail": (500, {"error": "boom"})}) as server:
        yield server


@pytest.fixture
def sink():
    with smtp_sink() as server:
        yield server


@pytest.fixture
def settings_for(sink):
    return Settings(smtp_url=sink.url, notify_email_to=("oncall@example.com",), approval_timeout_minutes=30)


@pytest.fixture
def event(any_db):
    now = datetime.now(UTC)
    return ProcessedEvent.create(
        id=uuid7(), source_type="webhook", event_type="threshold_breach", severity="high", source_host="web-01",
        source_service="nginx", title="CPU high; $(touch /tmp/pwned)", occurred_at=now, fingerprint="f",
        event_data={"cpu_usage": 97},
    )  # fmt: skip


def http(action_id, url, *, kind="diagnostic", method="POST", **extra):
    return {"id": action_id, "name": action_id, "type": kind,
            "http": {"method": method, "url": url, "json": {"host": "{{ event.host }}", "title": "{{ event.title }}"}},
            **extra}  # fmt: skip


def execution_of(event, actions, *, gated=(), dry_run=False, criticality="low", requested_by="decider"):
    context = risk.Context(system_criticality=criticality)
    assessments = [risk.assess(a, context) for a in actions]
    definition = snapshot({"name": "playbook", "response_type": "remediation", "actions": actions},
                          actions, assessments, set(gated))  # fmt: skip
    return create_execution(definition=definition, requested_by=requested_by, decision_id=None, event_id=event.id,
                            dry_run=dry_run, max_execution_time_minutes=10)  # fmt: skip


def statuses(execution):
    return {s.action_id: s.status for s in ExecutionStep.select().where(ExecutionStep.execution_id == execution.id)}


def test_steps_run_in_dependency_order_against_real_targets(event, target, sink, settings_for):
    # Given a diagnostic HTTP call, then an email that depends on it
    notify = {"id": "tell", "name": "Tell", "type": "notification", "depends_on": ["check"],
              "notify": {"channel": "email", "subject": "{{ event.host }} checked", "message": "{{ steps.check.output }}"}}  # fmt: skip
    execution = execution_of(event, [notify, http("check", f"{target.url}/check")])

    # When the runner runs it
    result = run(str(execution.id), settings=settings_for)

    # Then both steps ran, in order, with the event's values rendered as data
    assert result.status == "completed"
    assert [r["path"] for r in target.requests] == ["/check"]
    assert target.requests[0]["json"] == {"host": "web-01", "title": "CPU high; $(touch /tmp/pwned)"}
    sink.wait_for(1, timeout_s=5)
    assert sink.messages[0]["message"]["Subject"] == "web-01 checked"
    body = execution_json(Execution.get_by_id(execution.id))
    assert body["progress"] == {"current_step": 2, "total_steps": 2, "percentage_complete": 100}
    assert [a["action_id"] for a in body["actions"]] == ["check", "tell"]
    assert all(a["status"] == "completed" for a in body["actions"])
    # And every step is in the audit log with what ran
    audited = AuditLog.select().where(AuditLog.action == "step.completed").order_by(AuditLog.id)
    assert [(a.details["action_id"], a.details["planned"]["integration"]) for a in audited] == [
        ("check", "http"),
        ("tell", "notify"),
    ]


def test_a_redelivered_execution_never_runs_a_completed_step_again(event, target, settings_for):
    execution = execution_of(event, [http("check", f"{target.url}/check")])
    run(str(execution.id), settings=settings_for)
    # When the same message is delivered again
    again = run(str(execution.id), settings=settings_for)
    # Then nothing runs twice
    assert again.status == "completed" and len(target.requests) == 1


def test_a_step_left_running_by_a_dead_worker_fails_unless_idempotent(event, target, settings_for):
    # Given two executions whose worker died during their first step
    unsafe = execution_of(event, [http("poke", f"{target.url}/poke", kind="remediation")])
    safe = execution_of(event, [http("look", f"{target.url}/look", idempotent=True)])
    for execution in (unsafe, safe):
        Execution.update(status="running", started_at=datetime.now(UTC)).where(Execution.id == execution.id).execute()
        ExecutionStep.update(status="running").where(ExecutionStep.execution_id == execution.id).execute()
    # When their messages are redelivered
    failed = run(str(unsafe.id), settings=settings_for)
    resumed = run(str(safe.id), settings=settings_for)
    # Then the unsafe step is not repeated (its effect is unknown) and the idempotent one is
    assert failed.status == "failed" and "effect is unknown" in Execution.get_by_id(unsafe.id).error_message
    assert resumed.status == "completed"
    assert [r["path"] for r in target.requests] == ["/look"]


def test_a_gated_step_waits_for_an_approval_and_runs_once_approved(event, target, settings_for):
    # Given a diagnostic, then a gated remediation
    execution = execution_of(event, [http("check", f"{target.url}/check"),
                                     http("fix", f"{target.url}/fix", kind="remediation", depends_on=["check"])],
                             gated={"fix"}, requested_by=OPERATOR)  # fmt: skip
    # When it runs: the diagnostic runs, the remediation waits
    waiting = run(str(execution.id), settings=settings_for)
    assert waiting.status == "awaiting_approval" and waiting.approval_id is not None
    assert [r["path"] for r in target.requests] == ["/check"]
    approval = Approval.get_by_id(waiting.approval_id)
    assert approval.status == "pending" and approval.requested_actions[0]["action_id"] == "fix"
    assert approval.expires_at - approval.created_at == timedelta(minutes=30)

    # Then the requester cannot approve its own request, nor can a viewer
    with pytest.raises(ActionNotAllowed):
        approvals.answer(str(execution.id), approve=True, actor=OPERATOR, role="operator")
    with pytest.raises(ActionNotAllowed):
        approvals.answer(str(execution.id), approve=True, actor="key:9:bob", role="viewer")
    # And another operator's approval lets the rest run
    answered = approvals.answer(str(execution.id), approve=True, actor="key:8:carol", role="operator")
    assert answered["status"] == "approved" and answered["approval_token"]
    assert run(str(execution.id), settings=settings_for).status == "completed"
    assert [r["path"] for r in target.requests] == ["/check", "/fix"]
    assert AuditLog.select().where(AuditLog.action == "approval.approved").count() == 1


def test_a_rejected_request_runs_nothing_more(event, target, settings_for):
    execution = execution_of(event, [http("fix", f"{target.url}/fix", kind="remediation")], gated={"fix"})
    run(str(execution.id), settings=settings_for)
    approvals.answer(str(execution.id), approve=False, actor="key:8:carol", role="operator", comment="not now")
    assert run(str(execution.id), settings=settings_for).status == "cancelled"
    assert target.requests == [] and statuses(execution) == {"fix": "cancelled"}


def test_an_unanswered_request_is_rejected_at_its_timeout(event, target, settings_for):
    execution = execution_of(event, [http("fix", f"{target.url}/fix", kind="remediation")], gated={"fix"})
    approval_id = run(str(execution.id), settings=settings_for).approval_id
    # Before the timeout the delayed message changes nothing; after it, the request is rejected
    assert approvals.expire(approval_id) == "early"
    with freeze_time(datetime.now(UTC) + timedelta(minutes=31)):
        assert approvals.expire(approval_id) == "expired"
    approval = Approval.get_by_id(approval_id)
    assert approval.status == "rejected" and approval.decided_by == "system:timeout"
    assert Execution.get_by_id(execution.id).status == "cancelled"
    # And a late approval is refused, nothing runs
    assert approvals.expire(approval_id) == "answered"
    assert run(str(execution.id), settings=settings_for).status == "cancelled" and target.requests == []


def test_a_failing_remediation_rolls_back_the_completed_steps_newest_first(event, target, settings_for):
    # Given two remediations with compensations, then one that fails
    def fix(name, **extra):
        return http(name, f"{target.url}/{name}", kind="remediation",
                    rollback={"id": f"undo_{name}", "name": f"Undo {name}", "http": {"method": "POST", "url": f"{target.url}/undo/{name}"}},
                    **extra)  # fmt: skip

    execution = execution_of(event, [fix("one"), fix("two", depends_on=["one"]),
                                     http("fail", f"{target.url}/fail", kind="remediation", depends_on=["two"])])  # fmt: skip
    # When it runs, the third step fails and a rollback is due
    result = run(str(execution.id), settings=settings_for)
    assert result.status == "failed" and result.rollback
    # Then the rollback undoes two, then one
    assert run_rollback(str(execution.id), settings=settings_for) == "rolled_back"
    assert [r["path"] for r in target.requests] == ["/one", "/two", "/fail", "/undo/two", "/undo/one"]
    # And a second rollback message changes nothing
    assert run_rollback(str(execution.id), settings=settings_for) == "rolled_back"
    assert len(target.requests) == 5


def test_a_failing_compensation_leaves_the_execution_rollback_failed(event, target, sink, settings_for):
    step = http("one", f"{target.url}/one", kind="remediation",
                rollback={"id": "undo", "http": {"method": "POST", "url": f"{target.url}/fail"}})  # fmt: skip
    execution = execution_of(event, [step, http("boom", f"{target.url}/fail", kind="remediation", depends_on=["one"])])
    run(str(execution.id), settings=settings_for)
    assert run_rollback(str(execution.id), settings=settings_for) == "rollback_failed"
    assert AuditLog.select().where(AuditLog.action == "rollback.failed").count() == 1
    # And humans are told
    from app.executions.rollback import escalate

    assert escalate(str(execution.id), settings=settings_for)
    assert sink.wait_for(1, timeout_s=5)[-1]["message"]["Subject"] == f"Rollback failed: execution {execution.id}"


def test_a_dry_run_shows_what_would_run_and_touches_nothing(event, target, settings_for):
    execution = execution_of(event, [http("fix", f"{target.url}/fix", kind="remediation")], dry_run=True)
    assert run(str(execution.id), settings=settings_for).status == "completed"
    assert target.requests == []
    planned = execution_json(Execution.get_by_id(execution.id))["actions"][0]["planned"]
    assert planned["url"] == f"{target.url}/fix" and planned["json"]["host"] == "web-01"


def test_a_maintenance_window_blocks_remediation(event, target, settings_for):
    MaintenanceWindow.create(name="patching", scope={"hosts": ["web-01"]}, starts_at=datetime.now(UTC) - timedelta(hours=1),
                             ends_at=datetime.now(UTC) + timedelta(hours=1))  # fmt: skip
    execution = execution_of(event, [http("fix", f"{target.url}/fix", kind="remediation")])
    assert run(str(execution.id), settings=settings_for).status == "cancelled"
    assert target.requests == [] and "patching" in Execution.get_by_id(execution.id).error_message


def test_outcomes_and_dangerous_feedback_change_what_the_decider_knows(event, target, settings_for):
    execution = execution_of(event, [http("check", f"{target.url}/check")])
    Execution.update(response_template_id=42).where(Execution.id == execution.id).execute()
    run(str(execution.id), settings=settings_for)
    assert learning.history_for(None, 42).successes == 1
    response = learning.record_feedback({"execution_id": str(execution.id), "rating": 1, "feedback": "dangerous"},
                                        actor="key:8:carol")  # fmt: skip
    assert response["status"] == "recorded"
    assert response["learning_impact"]["confidence_adjustment"] == pytest.approx(-0.14)
    assert response["learning_impact"]["requires_approval"] is True
    history = learning.history_for(None, 42)
    assert history.requires_approval and history.confidence_adjustment == pytest.approx(-0.14)
    assert learning.clear_approval_requirement(42, actor="key:1:admin")
    assert not learning.history_for(None, 42).requires_approval


def test_the_clock_resends_what_lost_its_message_and_rejects_overdue_requests(event, target, settings_for):
    from app.executions import control
    from app.executions.recovery import sweep

    # Given an execution queued long ago whose message was lost, one awaiting an approval that
    # was given but never sent on, and one whose request is overdue
    lost = execution_of(event, [http("a", f"{target.url}/a")])
    approved = execution_of(event, [http("b", f"{target.url}/b", kind="remediation")], gated={"b"})
    overdue = execution_of(event, [http("c", f"{target.url}/c", kind="remediation")], gated={"c"})
    run(str(approved.id), settings=settings_for)
    approvals.answer(str(approved.id), approve=True, actor="key:8:carol", role="operator")
    Execution.update(status="awaiting_approval").where(Execution.id == approved.id).execute()  # the send was lost
    waiting = run(str(overdue.id), settings=settings_for)
    # When the clock sweeps six minutes later, and again at once, and much later
    with freeze_time(datetime.now(UTC) + timedelta(minutes=6)):
        found = sweep()
        again = sweep()
    assert set(found.execute) == {str(lost.id), str(approved.id)}
    assert found.expired == []
    assert again.execute == []  # a resend is logged: the next one waits another five minutes
    with freeze_time(datetime.now(UTC) + timedelta(minutes=31)):
        later = sweep()
    assert later.expired == [waiting.approval_id]
    assert Execution.get_by_id(overdue.id).status == "cancelled"
    # And a resent message runs the lost execution to completion, once
    assert run(str(lost.id), settings=settings_for).status == "completed"
    # And an operator can cancel what is queued: nothing more starts
    queued = execution_of(event, [http("d", f"{target.url}/d")])
    control.cancel(str(queued.id), actor="key:8:carol")
    assert run(str(queued.id), settings=settings_for).status == "cancelled"
    assert "/d" not in [r["path"] for r in target.requests]


def _decision_for(event) -> int:
    from app.models import DecisionLog, ResponseTemplate

    template = ResponseTemplate.create(
        template_name="t", template_type="remediation",
        response_definition={"name": "t", "response_type": "remediation", "actions": [
            {"id": "fix", "type": "remediation", "http": {"method": "POST", "url": "http://127.0.0.1:9/fix"}}]},
    )  # fmt: skip
    return DecisionLog.create(event_id=event.id, decision_type="remediate", confidence_score=0.5, reasoning="r",
                              response_template_id=template.id, template_version=1).id  # fmt: skip


def test_an_approval_token_pre_approves_another_execution_of_the_same_decision(event, settings_for):
    from app.executions import control

    # Given a decision whose remediation needs an approval, approved once by another operator
    decision_id = _decision_for(event)
    first = control.request_execution({"decision_id": decision_id}, settings=settings_for, actor=OPERATOR)
    assert run(str(first.id), settings=settings_for).status == "awaiting_approval"
    token = approvals.answer(str(first.id), approve=True, actor="key:8:carol", role="operator")["approval_token"]
    # When the operator asks again with the token, the new execution does not wait
    second = control.request_execution({"decision_id": decision_id, "approval_token": token}, settings=settings_for,
                                       actor=OPERATOR)  # fmt: skip
    assert Approval.get(Approval.execution_id == second.id).status == "approved"
    assert run(str(second.id), settings=settings_for).status != "awaiting_approval"
    # And a made-up token is refused
    with pytest.raises(ActionNotAllowed):
        control.request_execution({"decision_id": decision_id, "approval_token": "guess"}, settings=settings_for,
                                  actor=OPERATOR)  # fmt: skip


def test_nothing_executes_when_autonomy_is_off(event, settings_for):
    from dataclasses import replace

    from app.executions import control

    with pytest.raises(ActionNotAllowed, match="AUTONOMY_MODE is off"):
        control.request_execution({"decision_id": _decision_for(event)}, settings=replace(settings_for, autonomy_mode="off"),
                                  actor=OPERATOR)  # fmt: skip

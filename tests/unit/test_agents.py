"""The agents' foundation without a broker: the automation level's cap on the decider, the registry's
validation and storage, the clock's schedule, heartbeats and down detection, and proposals going
through the decider, an approval and the executor (on both databases)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time

from app.agents import health, proposals, registry, schedule
from app.agents.base import AgentAction, AgentEvent, AgentSettings
from app.agents.runner import run_agent
from app.config import Settings
from app.db import in_transaction
from app.decisions import policy, risk
from app.decisions.policy import Situation
from app.errors import Conflict, InvalidInput, InvalidRule, NotFound
from app.executions import approvals
from app.executions.runner import run
from app.models import AgentConfig, AuditLog, DecisionLog, Execution, Notification, NotificationPolicy
from tests.targets import http_target

DIAGNOSE = {"id": "diagnose", "name": "Check", "type": "diagnostic", "http": {"method": "GET", "url": "http://x"}}
TELL = {"id": "tell", "name": "Tell", "type": "notification", "notify": {"channel": "email", "message": "m"}}


def _decide(level: str | None, *, mode: str = "auto"):
    """A confident, low-risk investigation on a low-criticality host after hours: the policy runs it alone."""
    template = {"name": "t", "response_type": "investigation", "actions": [DIAGNOSE, TELL]}
    return policy.decide(Situation(event={"id": "e", "severity": "high", "host": "web-01"}, template=template,
                                   context=risk.Context(system_criticality="low"), mode=mode, automation_level=level))  # fmt: skip


# --- the automation level caps the decider ---------------------------------------------------------


def test_a_manual_agents_action_waits_for_an_approval_even_where_the_policy_would_run_it_alone():
    # Given what the policy runs alone in AUTONOMY_MODE=auto (a playbook's decision)
    alone = _decide(None)
    assert not alone.approval_required and alone.gated == set()
    # When a manual agent proposes the same
    manual = _decide("manual")
    # Then every action waits, and the reason says why
    assert manual.execute and manual.approval_required and manual.gated == {"diagnose", "tell"}
    assert "automation level is manual" in manual.approval_reason


def test_a_full_auto_agent_gets_what_the_policy_decides_and_no_more():
    # When a full-auto agent proposes what the policy runs alone, and what it gates
    full = _decide("full-auto")
    suggest = _decide("full-auto", mode="suggest")
    off = _decide("full-auto", mode="off")
    # Then alone it runs; AUTONOMY_MODE suggest still gates all and off still only records: the stricter wins
    assert full.gated == set() and not full.approval_required
    assert suggest.gated == {"diagnose", "tell"} and "AUTONOMY_MODE is suggest" in suggest.approval_reason
    assert not off.execute


def test_semi_auto_lets_only_low_risk_actions_run_alone():
    # Given assessments: one low, one medium the matrix did not gate, one already gated
    low = risk.Assessment(action_id="a", operation="diagnostic", category="diagnostic", score=0.2, level="low",
                          approval_required=False, reason="risk score 0.20 is within policy")  # fmt: skip
    medium = risk.Assessment(action_id="b", operation="service_restart", category="remediation", score=0.3,
                             level="medium", approval_required=False, reason="risk score 0.30 is within policy")  # fmt: skip
    gated = risk.Assessment(action_id="c", operation="system_restart", category="remediation", score=0.9,
                            level="critical", approval_required=True, reason="risk score 0.90 is above 0.3")  # fmt: skip
    # When the semi-auto cap applies (and when full-auto or no agent does)
    capped = policy.automation_cap("semi-auto", [low, medium, gated])
    # Then the medium one waits too, with the reason; nothing is ever un-gated; the others add nothing
    assert [a.approval_required for a in capped] == [False, True, True]
    assert capped[1].reason.endswith("semi-auto runs only low risk alone") and capped[2] == gated
    assert policy.automation_cap("full-auto", [medium]) == [medium] == policy.automation_cap(None, [medium])


# --- the registry ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "body"),
        ({"type": "kubernetes"}, "name"),
        ({"name": "Prod K8s"}, "name"),
        ({"name": "k8s", "type": "ansible"}, "type"),
        ({"name": "k8s", "automation_level": "auto"}, "automation_level"),
        ({"name": "k8s", "enabled": "yes"}, "enabled"),
        ({"name": "k8s", "thresholds": {"cpu_target": "70%"}}, "thresholds.cpu_target"),
        ({"name": "k8s", "interval_seconds": 5}, "interval_seconds"),
        ({"name": "k8s", "integrations": [{"name": "prod"}]}, "integrations[0].type"),
        ({"name": "k8s", "integrations": [{"type": "kubernetes", "cluster": {"token": "eyJhbGciOi"}}]},
         "integrations[0].cluster.token"),
        ({"name": "k8s", "integrations": [{"type": "aws", "secret_access_key": {"value": "x"}}]},
         "integrations[0].secret_access_key"),
        ({"name": "k8s", "automationLevel": "manual"}, "automationLevel"),
    ],
)
def test_a_bad_agent_configuration_is_refused_naming_the_field(body, field):
    with pytest.raises(InvalidInput) as refused:
        registry.parse_config(body)
    assert refused.value.field == field


def test_credentials_given_by_reference_are_accepted():
    columns = registry.parse_config({"name": "tf-prod", "type": "terraform", "integrations": [
        {"type": "terraform", "path": "/srv/infra", "credentials": {"env": "AWS_PROFILE_PROD"}},
        {"type": "aws", "secret_access_key": {"file": "/run/secrets/aws"}, "token": "{{ secret.AWS_TOKEN }}"}]})  # fmt: skip
    assert columns["kind"] == "terraform" and len(columns["integrations"]) == 2


def test_agents_are_configured_started_and_stopped_with_each_change_audited(any_db):
    now = datetime(2030, 1, 7, 12, 0, tzinfo=UTC)
    # Given the registry with its default agents (one per kind, disabled)
    names = {a["name"]: a for a in in_transaction(registry.listing)}
    assert set(names) == {"orchestrator", "terraform", "kubernetes", "cost"}
    assert all(a["state"] == "disabled" and a["automation_level"] == "manual" for a in names.values())
    # When an admin creates one and then changes its level, and an operator stops it
    created, new = in_transaction(lambda: registry.configure(registry.parse_config(
        {"name": "k8s-prod", "type": "kubernetes", "enabled": True}), actor="key:1:admin", now=now))  # fmt: skip
    changed, again = in_transaction(lambda: registry.configure(registry.parse_config(
        {"name": "k8s-prod", "automation_level": "semi-auto"}), actor="key:1:admin", now=now))  # fmt: skip
    stopped = in_transaction(lambda: registry.set_running("k8s-prod", running=False, actor="key:2:op", now=now))
    # Then the changes are kept, each audited with what it was before
    assert new and not again and created["state"] == "started" and changed["automation_level"] == "semi-auto"
    assert stopped["state"] == "stopped" and stopped["stopped_by"] == "key:2:op"
    rows = in_transaction(lambda: list(AuditLog.select().where(AuditLog.subject == "agent:k8s-prod").order_by(AuditLog.id)))
    assert [r.action for r in rows] == ["agent.configured", "agent.configured", "agent.stopped"]
    assert rows[1].details["before"]["automation_level"] == "manual"
    # And an agent does not change kind, nor is a new one made without one
    with pytest.raises(Conflict):
        in_transaction(lambda: registry.configure({"name": "k8s-prod", "kind": "cost"}, actor="a", now=now))
    with pytest.raises(InvalidInput) as refused:
        in_transaction(lambda: registry.configure({"name": "new-one"}, actor="a", now=now))
    assert refused.value.field == "type"
    # And a disabled agent is enabled by its configuration, not started
    with pytest.raises(Conflict):
        in_transaction(lambda: registry.set_running("terraform", running=True, actor="a", now=now))
    # And an agent that does not exist is not found by its name
    with pytest.raises(NotFound, match="no agent nobody"):
        in_transaction(lambda: registry.set_running("nobody", running=True, actor="a", now=now))


def test_the_clock_schedules_each_started_agent_once_per_interval(any_db):
    t0 = datetime(2030, 1, 7, 12, 0, tzinfo=UTC)
    in_transaction(lambda: registry.configure({"name": "k8s", "kind": "kubernetes", "enabled": True, "interval_s": 60},
                                              actor="a", now=t0))  # fmt: skip
    in_transaction(lambda: registry.configure({"name": "costs", "kind": "cost", "enabled": True}, actor="a", now=t0))
    in_transaction(lambda: registry.set_running("costs", running=False, actor="a", now=t0))
    # When the clock sweeps now, again at once, and past the interval
    first = in_transaction(lambda: schedule.due(t0))
    second = in_transaction(lambda: schedule.due(t0 + timedelta(seconds=30)))
    third = in_transaction(lambda: schedule.due(t0 + timedelta(seconds=61)))
    # Then the started agent runs once per interval, the stopped and disabled ones never
    assert first == [("kubernetes", "k8s")] and second == [] and third == [("kubernetes", "k8s")]


# --- heartbeats and down detection ----------------------------------------------------------------


def test_an_agent_whose_processes_stop_heartbeating_is_paged_once_and_cleared_when_one_returns(any_db):
    t0 = datetime(2030, 1, 7, 12, 0, tzinfo=UTC)
    in_transaction(lambda: NotificationPolicy.create(name="agents", matchers={"triggers": ["agent_down"]},
                                                     channels=[{"type": "webhook", "url": "http://hooks.example/x"}],
                                                     repeat_interval_minutes=0))  # fmt: skip
    in_transaction(lambda: registry.configure({"name": "k8s", "kind": "kubernetes", "enabled": True}, actor="a", now=t0))
    worker = health.Beater(kind="kubernetes", hostname="node-1", pid=42, started_at=t0)
    with freeze_time(t0) as clock:
        # Given a worker of its kind heartbeating every 15 s
        in_transaction(lambda: health.beat(worker, at=t0, interval_s=15))
        clock.tick(30)
        assert in_transaction(lambda: health.check_down(datetime.now(UTC), interval_s=15)) == []
        assert in_transaction(lambda: health.up_by_agent(datetime.now(UTC))) == {"k8s": True}
        # When it misses three beats
        clock.tick(16)
        paged = in_transaction(lambda: health.check_down(datetime.now(UTC), interval_s=15))
        again = in_transaction(lambda: health.check_down(datetime.now(UTC) + timedelta(minutes=5), interval_s=15))
        # Then the agent is down: paged once through the policies, and /metrics' figure is 0
        assert paged == ["k8s"] and again == []
        pages = in_transaction(lambda: list(Notification.select().where(Notification.trigger == "agent_down")))
        assert len(pages) == 1 and pages[0].payload["message"]["subject"] == "agent:k8s"
        assert "agent_kubernetes" in pages[0].payload["message"]["text"]
        assert in_transaction(lambda: health.up_by_agent(datetime.now(UTC))) == {"k8s": False}
        # When a process returns
        in_transaction(lambda: health.beat(worker, at=datetime.now(UTC), interval_s=15))
        in_transaction(lambda: health.check_down(datetime.now(UTC), interval_s=15))
        # Then it is up again and a later outage pages anew
        assert in_transaction(lambda: AgentConfig.get(AgentConfig.name == "k8s").down_since) is None
        assert in_transaction(lambda: health.health(datetime.now(UTC), interval_s=15))["k8s"]["up"]


def test_a_just_enabled_or_stopped_agent_is_not_down(any_db):
    t0 = datetime(2030, 1, 7, 12, 0, tzinfo=UTC)
    in_transaction(lambda: registry.configure({"name": "tf", "kind": "terraform", "enabled": True}, actor="a", now=t0))
    # When no process ever beat: within three beats of being enabled, and once stopped by an operator
    early = in_transaction(lambda: health.check_down(t0 + timedelta(seconds=40), interval_s=15))
    in_transaction(lambda: registry.set_running("tf", running=False, actor="a", now=t0))
    late = in_transaction(lambda: health.check_down(t0 + timedelta(hours=1), interval_s=15))
    # Then nothing is paged
    assert early == [] and late == []


# --- proposals go the playbooks' way ----------------------------------------------------------------


class ScaleUp:
    """A stand-in agent kind for tests: proposes one scale change through the executor's HTTP integration."""

    def __init__(self, url: str, *, risk_level: str = "medium") -> None:
        self.url, self.risk_level = url, risk_level

    def run(self, config: AgentSettings):
        step = {"id": "scale", "name": "Scale web to 5", "type": "remediation", "operation": "configuration_change",
                "http": {"method": "PATCH", "url": f"{self.url}/apis/apps/v1/namespaces/shop/deployments/web/scale",
                         "json": {"spec": {"replicas": 5}}}}  # fmt: skip
        back = {"id": "unscale", "type": "remediation", "rolls_back": "scale",
                "http": {"method": "PATCH", "url": f"{self.url}/apis/apps/v1/namespaces/shop/deployments/web/scale",
                         "json": {"spec": {"replicas": 3}}}}  # fmt: skip
        return [
            AgentAction(type="scale", description="Scale shop/web from 3 to 5 replicas before the Monday peak",
                        target_resources=("k8s:shop/deployment/web",), steps=(step,), rollback_steps=(back,),
                        risk_level=self.risk_level, estimated_impact="replicas 3 -> 5", key="shop/web:5"),
            AgentEvent(event_type="capacity_forecast", severity="low", title="Demand forecast above capacity",
                       resource="k8s:shop/deployment/web", data={"forecast_rps": 1200}),
        ]  # fmt: skip

    def status(self, config: AgentSettings):
        return {"ready": True}


def _agent(any_db, level: str = "manual") -> None:
    now = datetime.now(UTC)
    in_transaction(lambda: registry.configure({"name": "k8s", "kind": "kubernetes", "enabled": True,
                                               "automation_level": level, "approval_required": False},
                                              actor="a", now=now))  # fmt: skip


def test_a_proposal_is_decided_waits_for_approval_and_runs_through_the_executor(any_db):
    _agent(any_db, level="manual")
    published: list[list[dict]] = []
    with http_target() as target:
        # When the agent runs
        outcome = run_agent("k8s", settings=Settings(autonomy_mode="auto"), publish=published.append,
                            agent=ScaleUp(target.url))  # fmt: skip
        # Then its proposal became a decision and a queued execution, and its observation a raw item
        assert outcome.proposed == 1 and len(outcome.executions) == 1 and outcome.events == 1
        item = published[0][0]
        assert item["source_type"] == "webhook" and item["payload"]["source"] == "agent:k8s"
        assert item["payload"]["host"] == "k8s:shop/deployment/web"
        execution_id = outcome.executions[0]
        row = in_transaction(lambda: Execution.get_by_id(execution_id))
        decision = in_transaction(lambda: DecisionLog.get_by_id(row.decision_id))
        assert row.requested_by == "agent:k8s" and row.definition["target_resources"] == ["k8s:shop/deployment/web"]
        assert row.definition["purpose"] == "scaling" and row.definition["agent"]["estimated_impact"] == "replicas 3 -> 5"
        assert decision.decision_type == "remediate" and "automation level is manual" in decision.reasoning + str(
            decision.analysis["approval_requirements"]["reason"])
        audited = in_transaction(lambda: AuditLog.get(AuditLog.action == "agent_action.proposed"))
        assert audited.details["execution_id"] == execution_id and audited.actor == "agent:k8s"
        # When the executor takes it: nothing is sent before a human approves
        assert run(execution_id, settings=Settings()).status == "awaiting_approval"
        assert target.requests == []
        in_transaction(lambda: approvals.answer(execution_id, approve=True, actor="key:7:alice", role="operator"))
        # Then once approved, the step runs against the target with the planned body
        assert run(execution_id, settings=Settings()).status == "completed"
        assert [(r["method"], r["json"]) for r in target.requests] == [("PATCH", {"spec": {"replicas": 5}})]
        # And the same proposal made again while it was in flight would not have been made twice
        in_transaction(lambda: Execution.update(status="queued").where(Execution.id == execution_id).execute())
        repeat = run_agent("k8s", settings=Settings(autonomy_mode="auto"), publish=published.append,
                           agent=ScaleUp(target.url))  # fmt: skip
        assert repeat.proposed == 1 and repeat.executions == []


def test_an_invalid_proposal_is_refused_naming_the_field_and_stores_nothing(any_db):
    agent = AgentSettings(name="k8s", kind="kubernetes", automation_level="full-auto", approval_required=False)
    bad_url = AgentAction(type="scale", description="d", target_resources=("k8s:a/deployment/b",),
                          steps=({"id": "s", "type": "http", "method": "POST", "url": "ftp://x"},))  # fmt: skip
    no_target = AgentAction(type="scale", description="d", target_resources=(), steps=bad_url.steps)
    for action, field in ((bad_url, "actions[0].http.url"), (no_target, "target_resources")):
        with pytest.raises(InvalidRule) as refused:
            proposals.propose(agent, action, settings=Settings())
        assert refused.value.field == field
    assert in_transaction(lambda: DecisionLog.select().count()) == 0


def test_a_stopped_or_disabled_agent_does_not_run(any_db):
    _agent(any_db)
    in_transaction(lambda: registry.set_running("k8s", running=False, actor="a", now=datetime.now(UTC)))
    ran = run_agent("k8s", settings=Settings(), publish=lambda items: None, agent=ScaleUp("http://127.0.0.1:9"))
    assert ran.skipped == "stopped" and ran.executions == []
    assert run_agent("terraform", settings=Settings(), publish=lambda items: None).skipped in ("disabled", "missing")

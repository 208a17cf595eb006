"""The decider without an LLM: read, decided and written in one transaction, once per firing."""

from __future__ import annotations

from app.config import Settings
from app.decisions import learning, policy
from app.decisions.analysis import decide_firing, gather
from app.models import (
    AuditLog,
    DecisionLog,
    Execution,
    ExecutionLog,
    ExecutionStep,
    Incident,
    LearningStat,
    ResponseTemplate,
    RuleExecution,
)
from tests.unit.test_llm import _firing


def test_a_firing_is_decided_once_with_its_incident_and_its_execution_stored_whole(any_db):
    # Given a firing whose event belongs to an open incident (no LLM configured)
    firing = _firing(any_db)
    settings = Settings(autonomy_mode="auto")

    # When it is decided, and decided again (a redelivered message)
    execution = decide_firing(firing, settings=settings)
    again = decide_firing(firing, settings=settings)

    # Then one decision names the incident, and its execution is stored with its steps, log and audit
    decision = DecisionLog.get(DecisionLog.rule_execution_id == firing)
    assert DecisionLog.select().where(DecisionLog.rule_execution_id == firing).count() == 1
    assert decision.decided_by == "policy" and decision.incident_id == Incident.get().id
    assert RuleExecution.get_by_id(firing).execution_status == f"decided:{decision.decision_type}"
    assert execution is not None and again is not None and again.id == execution.id
    stored = Execution.get_by_id(execution.id)
    assert (stored.status, stored.decision_id, stored.incident_id) == ("queued", decision.id, decision.incident_id)
    steps = ExecutionStep.select().where(ExecutionStep.execution_id == execution.id).order_by(ExecutionStep.position)
    assert [s.action_id for s in steps] == stored.definition["execution_order"]
    assert ExecutionLog.select().where(ExecutionLog.execution_id == execution.id).count() == 1
    audited = {(a.action, a.person) for a in AuditLog.select()}
    assert {("decision.made", "decider"), ("execution.created", "decider")} <= audited


def test_a_firing_of_a_closed_incident_is_ignored(any_db):
    # Given a firing whose incident was closed meanwhile
    firing = _firing(any_db)
    Incident.update(status="closed").execute()

    # When it is decided
    execution = decide_firing(firing, settings=Settings(autonomy_mode="auto"))

    # Then nothing runs: the incident the decision read with the firing was the closed one
    assert execution is None
    assert DecisionLog.get(DecisionLog.rule_execution_id == firing).decision_type == "ignore"


def test_a_missing_firing_decides_nothing(any_db):
    assert decide_firing(987654, settings=Settings(autonomy_mode="auto")) is None
    assert DecisionLog.select().count() == 0


def test_the_template_and_history_read_with_the_firing_are_the_ones_the_policy_reads_alone(any_db):
    # Given a firing that names no template (its rule's latest active one applies), and earlier outcomes:
    # the rule's adjustment, the template's successes and its "dangerous" mark
    firing_id = _firing(any_db)
    firing = RuleExecution.get_by_id(firing_id)
    template_id = firing.response_template_id
    RuleExecution.update(response_template_id=None).where(RuleExecution.id == firing_id).execute()
    LearningStat.create(scope="rule", scope_id=firing.trigger_rule_id, confidence_adjustment=-0.1)
    LearningStat.create(scope="template", scope_id=template_id, successes=5, failures=1, requires_approval=True)

    # When it is decided
    decide_firing(firing_id, settings=Settings(autonomy_mode="auto"))

    # Then the decision used the rule's template and both scopes' history, as gather() reads them alone
    decision = DecisionLog.get(DecisionLog.rule_execution_id == firing_id)
    alone = gather(event_id=firing.triggering_event_id, rule_id=firing.trigger_rule_id, template_id=None,
                   settings=Settings(autonomy_mode="auto"), now=decision.created_at)  # fmt: skip
    assert decision.response_template_id == template_id == alone.template_id
    assert alone.situation.history == learning.history_for(firing.trigger_rule_id, template_id)
    assert alone.situation.history.successes == 5 and alone.situation.history.requires_approval
    assert float(decision.confidence_score) == policy.decide(alone.situation).confidence == 0.7  # (0.75·4+5)/10 - 0.1
    assert decision.analysis["approval_requirements"]["required"] is True  # the template is marked dangerous


def test_an_inactive_template_runs_nothing(any_db):
    # Given a firing whose rule's only template was deactivated
    firing_id = _firing(any_db)
    RuleExecution.update(response_template_id=None).where(RuleExecution.id == firing_id).execute()
    ResponseTemplate.update(active=False).execute()

    # When it is decided, then no template applies and nothing is created to run
    assert decide_firing(firing_id, settings=Settings(autonomy_mode="auto")) is None
    assert DecisionLog.get(DecisionLog.rule_execution_id == firing_id).response_template_id is None

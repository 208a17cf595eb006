"""The risk matrix and the decider's policy (pure logic, no broker, no database)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from app.decisions import policy, risk
from app.decisions.policy import History, Situation

DIAGNOSE = {"id": "diagnose", "name": "Check", "type": "diagnostic", "http": {"method": "GET", "url": "http://x"}}
RESTART = {"id": "restart", "name": "Restart", "type": "remediation", "operation": "service_restart",
           "shell": {"program": "restart", "args": []}, "depends_on": ["diagnose"]}  # fmt: skip
TELL = {"id": "tell", "name": "Tell", "type": "notification", "notify": {"channel": "email", "message": "m"}}


def template(*actions, response_type="investigation", **extra):
    return {"name": "t", "response_type": response_type, "actions": list(actions), **extra}


def situation(tpl, *, mode="auto", criticality="low", business=False, **extra):
    return Situation(
        event={"id": "e", "severity": "high", "host": "web-01"},
        incident={"status": "open", "severity": "high"},
        template=tpl,
        context=risk.Context(system_criticality=criticality, business_hours=business),
        mode=mode,
        **extra,
    )


def test_the_risk_score_adds_the_factors_of_the_specs_matrix():
    # Given a service restart on a critical system in business hours outside maintenance
    factors = {"system_criticality": "critical", "action_type": "service_restart",
               "business_hours": "business_hours", "maintenance_window": "outside_maintenance"}  # fmt: skip
    # Then the score is 0.4 + 0.3 + 0.2 + 0.1, and a system restart on it is capped at 1.0
    assert risk.score(factors) == pytest.approx(1.0)
    assert risk.score({**factors, "action_type": "diagnostic"}) == pytest.approx(0.8)
    assert risk.score({"system_criticality": "low", "action_type": "notification"}) == pytest.approx(0.1)


def test_an_action_above_the_threshold_or_declared_risky_needs_approval():
    low = risk.Context(system_criticality="low")
    assert not risk.assess(DIAGNOSE, low).approval_required  # 0.1 + 0.1 + 0.1 = 0.3, not above
    assert risk.assess(DIAGNOSE, risk.Context(system_criticality="medium")).approval_required  # 0.4
    assert risk.assess({**DIAGNOSE, "approval_required": True}, low).approval_required
    assessed = risk.assess({**TELL, "risk_level": "high"}, low)
    assert assessed.approval_required and assessed.level == "high"  # the declared level is a floor


def test_business_hours_are_weekdays_within_the_configured_range():
    assert risk.in_business_hours(datetime(2026, 11, 24, 10, 0, tzinfo=UTC), hours="09:00-17:00", timezone="UTC")
    assert not risk.in_business_hours(datetime(2026, 11, 24, 18, 0, tzinfo=UTC), hours="09:00-17:00", timezone="UTC")
    assert not risk.in_business_hours(datetime(2026, 11, 22, 10, 0, tzinfo=UTC), hours="09:00-17:00", timezone="UTC")


def test_a_confident_low_risk_investigation_runs_alone_in_auto_mode():
    # Given a diagnostic and a notification on a low-criticality host, after hours
    d = policy.decide(situation(template(DIAGNOSE, TELL)))
    # Then the decider investigates with confidence above 0.8 and nothing waits for approval
    assert d.decision_type == "investigate"
    assert d.confidence > policy.CONFIDENCE_TO_ACT
    assert d.execute and not d.approval_required and d.gated == set()


def test_suggest_mode_gates_every_action_and_off_mode_only_records():
    suggested = policy.decide(situation(template(DIAGNOSE, TELL), mode="suggest"))
    assert suggested.execute and suggested.gated == {"diagnose", "tell"}
    assert "suggest" in suggested.approval_reason
    off = policy.decide(situation(template(DIAGNOSE, TELL), mode="off"))
    assert off.decision_type == "investigate" and not off.execute


def test_a_remediation_without_history_is_not_confident_enough_to_run_alone():
    d = policy.decide(situation(template(DIAGNOSE, RESTART, response_type="remediation")))
    assert d.decision_type == "remediate" and d.confidence <= policy.CONFIDENCE_TO_ACT
    assert d.gated == {"diagnose", "restart"}


def test_successful_history_raises_confidence_and_failures_lower_it():
    good = policy.confidence_from(0.75, History(successes=20))
    bad = policy.confidence_from(0.75, History(successes=1, failures=10))
    assert good > policy.CONFIDENCE_TO_ACT > 0.75 > bad


def test_a_maintenance_window_drops_remediation_and_its_dependents_and_escalates():
    after = {
        "id": "verify",
        "type": "diagnostic",
        "http": {"method": "GET", "url": "http://x"},
        "depends_on": ["restart"],
    }
    d = policy.decide(situation(template(DIAGNOSE, RESTART, after, TELL, response_type="remediation"),
                                  maintenance="Tuesday patching"))  # fmt: skip
    assert d.decision_type == "escalate"
    assert [a["id"] for a in d.actions] == ["diagnose", "tell"]
    assert "Tuesday patching" in d.reasoning


def test_a_template_marked_dangerous_needs_approval_for_everything():
    d = policy.decide(situation(template(DIAGNOSE, TELL), history=History(successes=50, requires_approval=True)))
    assert d.gated == {"diagnose", "tell"}


def test_a_resolved_incident_is_ignored_and_a_firing_without_template_escalates():
    closed = Situation(event={"severity": "high"}, incident={"status": "closed"}, template=template(DIAGNOSE))
    assert policy.decide(closed).decision_type == "ignore"
    bare = policy.decide(Situation(event={"severity": "critical"}, template=None, mode="auto"))
    assert bare.decision_type == "escalate" and not bare.execute


def test_the_llm_chooses_only_among_the_templates_actions_with_their_dependencies():
    # Given an LLM that recommends the restart (and an action that does not exist)
    llm = SimpleNamespace(decision="remediate", confidence=0.95, reasoning="disk full", summary="Disk full on web-01",
                          recommended_action_ids=("restart", "rm_rf_slash"))  # fmt: skip
    d = policy.decide(situation(template(DIAGNOSE, RESTART, TELL, response_type="remediation"), llm=llm))
    # Then the restart and what it depends on are kept, nothing else is invented
    assert d.decided_by == "llm" and d.summary == "Disk full on web-01"
    assert [a["id"] for a in d.actions] == ["diagnose", "restart"]
    # And the restart's risk still needs a human, whatever the LLM's confidence
    assert "restart" in d.gated

"""The LLM's limits: its answer (steerable by event text) may make a decision more careful, never
bolder — confidence at most the policy's, actions only among the policy's, ``remediate`` only where
the policy remediates, and every gate the policy puts on an action still there (pure logic)."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.decisions import policy, risk

CHECK = {"id": "check", "name": "Check", "type": "diagnostic", "http": {"method": "GET", "url": "http://x/check"}}
RESTART = {"id": "restart", "name": "Restart", "type": "remediation", "operation": "service_restart",
           "depends_on": ["check"], "http": {"method": "POST", "url": "http://x/restart"}}  # fmt: skip


def answer(decision_type="remediate", confidence=0.99, ids=(), reasoning="ignore previous instructions"):
    return SimpleNamespace(decision=decision_type, confidence=confidence, reasoning=reasoning,
                           summary="nginx is down", recommended_action_ids=tuple(ids), risk_level=None)  # fmt: skip


def situation(response_type="investigation", *actions, llm=None, **extra):
    template = {"name": "t", "response_type": response_type, "actions": list(actions) or [CHECK]}
    return policy.Situation(event={"id": "e", "severity": "high", "host": "web-01"},
                              incident={"status": "open", "severity": "high"}, template=template,
                              context=risk.Context(system_criticality="low"), mode="auto", llm=llm,
                              **extra)  # fmt: skip


def test_the_llm_cannot_raise_the_confidence_above_the_policys():
    # Given a remediation template the policy trusts at 0.75, after two failed runs
    s = situation("remediation", CHECK, RESTART, history=policy.History(successes=0, failures=2))
    alone = policy.decide(s)
    # When an LLM, steered by the event's text, answers 0.99
    d = policy.decide(replace(s, llm=answer("remediate", 0.99)))
    # Then the confidence stays the policy's, and the reasoning says it was capped
    assert d.confidence == alone.confidence < policy.CONFIDENCE_TO_ACT
    assert d.decided_by == "llm" and "capped at the policy's" in d.reasoning
    # And it may still lower it
    assert policy.decide(replace(s, llm=answer("remediate", 0.2))).confidence == 0.2


def test_the_llm_cannot_turn_an_investigation_into_a_remediation():
    # Given an investigation template, When the LLM answers "remediate" with every action
    d = policy.decide(situation("investigation", CHECK, RESTART, llm=answer("remediate", 1.0, ["restart"])))
    # Then the decision stays "investigate", and the restart still waits for an approval
    assert d.decision_type == "investigate" and "stays investigate" in d.reasoning
    assert "restart" in d.gated


def test_the_llm_picks_only_among_the_templates_actions():
    # Given the LLM recommends an action the template does not have, and one it has
    d = policy.decide(situation("remediation", CHECK, RESTART, llm=answer("remediate", 0.9, ["rm -rf /", "check"])))
    # Then only the template's chosen action runs
    assert [a["id"] for a in d.actions] == ["check"]
    # And recommending only unknown actions selects none (never the template's whole list)
    d = policy.decide(situation("remediation", CHECK, RESTART, llm=answer("remediate", 0.9, ["wipe"])))
    assert d.actions == [] and not d.execute


def test_picking_only_the_diagnostics_does_not_keep_remediate_where_a_maintenance_window_escalates():
    # Given a remediation template on a target under a maintenance window: the policy escalates
    s = situation("remediation", CHECK, RESTART, maintenance="patching")
    assert policy.decide(s).decision_type == "escalate"
    # When the LLM answers "remediate" with only the check
    d = policy.decide(replace(s, llm=answer("remediate", 0.9, ["check"])))
    # Then the decision escalates too, running the check only
    assert d.decision_type == "escalate" and [a["id"] for a in d.actions] == ["check"]


@pytest.mark.parametrize("confidence", [float("nan"), 1.5, -3, "0.99", None])
def test_a_confidence_that_is_no_probability_counts_as_none(confidence):
    d = policy.decide(situation("investigation", CHECK, llm=answer("investigate", confidence)))
    assert d.confidence == 0.0 and d.gate_all


ACTION_IDS = ("a0", "a1", "a2", "a3")


@st.composite
def templates(draw):
    actions = []
    for i in range(draw(st.integers(1, 4))):
        block = draw(st.sampled_from([{"http": {"method": "POST", "url": "http://x"}}, {"shell": {"program": "x"}},
                                      {"notify": {"channel": "email"}}, {"llm": {"prompt": "p"}}]))  # fmt: skip
        actions.append({
            "id": f"a{i}", **block,
            "type": draw(st.sampled_from(["diagnostic", "remediation", "notification"])),
            "operation": draw(st.sampled_from([None, *risk.OPERATIONS])),
            "risk_level": draw(st.sampled_from(["low", "low", "medium", "critical"])),
            "approval_required": draw(st.sampled_from([False, False, True])),
            "depends_on": [f"a{j}" for j in range(i) if draw(st.booleans())],
        })  # fmt: skip
    kinds = ["investigation", "remediation", "escalation"]
    return {"name": "g", "response_type": draw(st.sampled_from(kinds)), "actions": actions,
            "approval_required": draw(st.sampled_from([False, False, True]))}  # fmt: skip


LLM_ANSWERS = st.builds(
    SimpleNamespace,
    decision=st.sampled_from(policy.DECISIONS),
    confidence=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(0, 1)),
    reasoning=st.text(max_size=20),
    summary=st.text(max_size=20),
    recommended_action_ids=st.lists(st.sampled_from([*ACTION_IDS, "rm -rf /", "wipe"]), max_size=5).map(tuple),
    risk_level=st.sampled_from([None, *risk.RISK_LEVELS]),
)

SITUATIONS = st.builds(
    policy.Situation,
    event=st.fixed_dictionaries({"id": st.just("e"), "severity": st.sampled_from(["info", "low", "high", "critical"])}),
    incident=st.one_of(st.none(), st.fixed_dictionaries({"status": st.sampled_from(["open", "open", "closed"]),
                                                          "severity": st.sampled_from(["low", "high"])})),
    template=st.one_of(st.none(), templates(), templates()),
    history=st.builds(policy.History, successes=st.integers(0, 30), failures=st.integers(0, 30),
                      confidence_adjustment=st.floats(-0.5, 0.5), requires_approval=st.booleans()),
    context=st.builds(risk.Context, system_criticality=st.sampled_from(risk.RISK_LEVELS),
                      business_hours=st.booleans(), maintenance_window=st.booleans()),
    maintenance=st.sampled_from([None, None, "patching"]),
    mode=st.sampled_from(["off", "suggest", "auto", "auto"]),
)  # fmt: skip


@settings(max_examples=500, deadline=None, derandomize=True, database=None)
@given(s=SITUATIONS, llm=LLM_ANSWERS)
def test_whatever_the_llm_answers_the_decision_is_never_bolder_than_the_policys(s, llm):
    # Given the policy's decision on a generated situation, and the one with a generated LLM answer
    alone = policy.decide(s)
    d = policy.decide(replace(s, llm=llm))
    # Then the confidence is at most the policy's
    assert d.confidence <= alone.confidence
    # And it remediates only where the policy does
    if d.decision_type == "remediate":
        assert alone.decision_type == "remediate"
    # And it runs only actions the policy would run, and only the template's
    ids = [str(a["id"]) for a in d.actions]
    assert set(ids) <= {str(a["id"]) for a in alone.actions} <= set(ACTION_IDS)
    assert not d.execute or alone.execute
    # And every action the policy would hold for an approval is held
    assert (alone.gated & set(ids)) <= d.gated
    assert not (alone.gate_all and d.actions) or d.gate_all

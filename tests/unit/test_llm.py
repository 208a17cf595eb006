"""LLM analysis against an OpenAI-compatible server started by the test: good, malformed, failing
and slow answers, and the decider falling back to its policy."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from app.autonomous import llm
from app.autonomous.analysis import decide_firing
from app.config import Settings
from app.ids import uuid7
from app.models import DecisionLog, Execution, ProcessedEvent, ResponseTemplate, RuleExecution, TriggerRule
from tests.fakes.openai_server import FakeOpenAI

ACTIONS = [{"id": "check", "name": "Check", "type": "diagnostic", "risk_level": "low"},
           {"id": "restart", "name": "Restart", "type": "remediation", "risk_level": "medium"}]  # fmt: skip
GOOD = {"content": json.dumps({"decision": "remediate", "confidence": 0.92, "reasoning": "nginx is down",
                               "summary": "nginx down on web-01", "recommended_action_ids": ["restart", "rm -rf /"],
                               "risk_level": "medium"})}  # fmt: skip


def settings_for(fake: FakeOpenAI, budget_s: float = 2.0, **extra) -> Settings:
    return Settings(openai_api_key="sk-test", openai_base_url=fake.base_url, openai_model="fake-model",
                    llm_timeout_s=budget_s, **extra)  # fmt: skip


def test_a_structured_answer_becomes_an_analysis_limited_to_the_operators_actions():
    with FakeOpenAI(GOOD) as fake:
        analysis = llm.analyze({"title": "nginx down"}, allowed_actions=ACTIONS, settings=settings_for(fake))
    assert analysis.decision == "remediate" and analysis.confidence == pytest.approx(0.92)
    assert analysis.summary == "nginx down on web-01"
    assert analysis.recommended_action_ids == ("restart",)  # the invented one is dropped
    # The request carried the schema, the model, the allowed ids, the incident and the key
    body = fake.requests[0]["body"]
    assert body["model"] == "fake-model" and fake.requests[0]["authorization"] == "Bearer sk-test"
    schema = body["response_format"]["json_schema"]["schema"]
    assert body["response_format"]["type"] == "json_schema"
    assert schema["properties"]["recommended_action_ids"]["items"]["enum"] == ["check", "restart"]
    assert schema["properties"]["decision"]["enum"] == ["investigate", "remediate", "escalate", "ignore"]
    assert "nginx down" in body["messages"][1]["content"]


def test_malformed_answers_are_retried_once_then_refused():
    with FakeOpenAI({"content": "not json"}, {"content": json.dumps({"decision": "reboot_everything"})}) as fake:
        with pytest.raises(llm.LlmAnswerInvalid):
            llm.analyze({}, allowed_actions=ACTIONS, settings=settings_for(fake))
    assert len(fake.requests) == 2


def test_a_server_error_is_retried_and_then_succeeds():
    with FakeOpenAI({"status": 500}, {"status": 429}, GOOD) as fake:
        analysis = llm.analyze({}, allowed_actions=ACTIONS, settings=settings_for(fake, budget_s=5))
    assert analysis.decision == "remediate" and len(fake.requests) == 3


def test_a_slow_server_gives_up_within_the_budget():
    with FakeOpenAI({**GOOD, "delay_s": 5}) as fake:
        started = time.monotonic()
        with pytest.raises(llm.LlmUnavailable):
            llm.analyze({}, allowed_actions=ACTIONS, settings=settings_for(fake, budget_s=1.0))
        # a bound on hanging (budget + a margin), not a performance figure
        assert time.monotonic() - started < 4.0


def test_no_key_means_no_request():
    with FakeOpenAI(GOOD) as fake:
        with pytest.raises(llm.LlmUnavailable):
            llm.analyze({}, allowed_actions=ACTIONS, settings=Settings(openai_base_url=fake.base_url))
    assert fake.requests == []


def test_ask_returns_the_models_text():
    with FakeOpenAI({"content": "Probably a memory leak."}) as fake:
        assert llm.ask("why?", settings=settings_for(fake), timeout_s=2) == "Probably a memory leak."


def _firing(any_db) -> int:
    event = ProcessedEvent.create(id=uuid7(), source_type="webhook", event_type="service_down", severity="high",
                                  source_host="web-01", title="nginx down", occurred_at=datetime.now(UTC), fingerprint="f")  # fmt: skip
    rule = TriggerRule.create(rule_name="nginx", event_conditions={"event_type": "service_down"})
    template = ResponseTemplate.create(
        template_name="nginx", template_type="remediation", trigger_rule_id=rule.id,
        response_definition={"name": "nginx", "response_type": "remediation", "actions": [
            {"id": "check", "type": "diagnostic", "http": {"method": "GET", "url": "http://127.0.0.1:9/check"}},
            {"id": "restart", "type": "remediation", "depends_on": ["check"],
             "http": {"method": "POST", "url": "http://127.0.0.1:9/restart"}}]},
    )  # fmt: skip
    firing = RuleExecution.create(trigger_rule_id=rule.id, response_template_id=template.id,
                                  triggering_event_id=event.id, execution_status="pending")  # fmt: skip
    return firing.id


def test_the_decider_uses_the_llms_analysis_and_says_so(any_db):
    firing = _firing(any_db)
    with FakeOpenAI(GOOD) as fake:
        execution = decide_firing(firing, settings=settings_for(fake, autonomy_mode="auto"))
    decision = DecisionLog.get(DecisionLog.rule_execution_id == firing)
    assert decision.decided_by == "llm" and decision.decision_type == "remediate"
    assert decision.analysis["analysis_result"]["incident_summary"] == "nginx down on web-01"
    # The restart is risky: whatever the model's confidence, it waits for a human
    assert execution is not None
    gated = {a["id"]: a["gated"] for a in Execution.get_by_id(execution.id).definition["actions"]}
    assert gated["restart"] is True


@pytest.mark.parametrize("answer", [{"content": "I think you should reboot"}, {"status": 500}, {**GOOD, "delay_s": 5}])
def test_the_policy_decides_when_the_llm_fails(any_db, answer):
    firing = _firing(any_db)
    with FakeOpenAI(answer) as fake:
        decide_firing(firing, settings=settings_for(fake, budget_s=1.0, autonomy_mode="auto"))
    decision = DecisionLog.get(DecisionLog.rule_execution_id == firing)
    assert decision.decided_by == "policy" and decision.decision_type == "remediate"
    # A redelivered firing is not decided twice
    with FakeOpenAI(GOOD) as fake:
        decide_firing(firing, settings=settings_for(fake, autonomy_mode="auto"))
    assert fake.requests == [] and DecisionLog.select().count() == 1

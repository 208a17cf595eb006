"""LLM analysis against an OpenAI-compatible server started by the test: good, malformed, failing
and slow answers, and the decider falling back to its policy."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime

import pytest

from app import llm_client
from app.config import Settings
from app.decisions import llm
from app.decisions.analysis import decide_firing
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


def test_a_structured_answer_becomes_an_analysis():
    # Given a server answering with a well-formed decision
    with FakeOpenAI(GOOD) as fake:
        # When the incident is analysed
        analysis = llm.analyze({"title": "nginx down"}, allowed_actions=ACTIONS, settings=settings_for(fake))
    # Then every field of the answer is in the analysis
    assert analysis == llm.Analysis(
        decision="remediate", confidence=pytest.approx(0.92), reasoning="nginx is down",
        summary="nginx down on web-01", recommended_action_ids=("restart",), risk_level="medium", model="fake-model",
    )  # fmt: skip
    assert len(fake.requests) == 1


def test_the_request_carries_the_schema_the_model_the_allowed_ids_and_the_incident():
    # Given a server
    with FakeOpenAI(GOOD) as fake:
        # When an incident is analysed
        llm.analyze({"title": "nginx down"}, allowed_actions=ACTIONS, settings=settings_for(fake))
    # Then the single request names the model, sends the key, and restricts the answer by schema
    request = fake.requests[0]
    body = request["body"]
    assert request["path"] == "/v1/chat/completions" and request["authorization"] == "Bearer sk-test"
    assert body["model"] == "fake-model"
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["strict"] is True
    schema = body["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["decision"]["enum"] == ["investigate", "remediate", "escalate", "ignore"]
    assert schema["properties"]["recommended_action_ids"]["items"]["enum"] == ["check", "restart"]
    # And the system prompt limits the model to the listed actions; the user message holds the incident
    assert body["messages"][0]["role"] == "system" and "ONLY among the listed actions" in body["messages"][0]["content"]
    sent = json.loads(body["messages"][1]["content"])
    assert sent["incident"] == {"title": "nginx down"} and [a["id"] for a in sent["actions"]] == ["check", "restart"]


def test_action_ids_the_operator_did_not_define_are_dropped():
    # Given a model recommending a known action, an invented one and a non-string
    answer = {**json.loads(GOOD["content"]), "recommended_action_ids": ["check", "rm -rf /", 42, "check"]}
    with FakeOpenAI({"content": json.dumps(answer)}) as fake:
        # When the incident is analysed
        analysis = llm.analyze({}, allowed_actions=ACTIONS, settings=settings_for(fake))
    # Then only the operator's action remains, once
    assert analysis.recommended_action_ids == ("check",)


@pytest.mark.parametrize(
    "content",
    ["not json", json.dumps({"decision": "reboot_everything"}), json.dumps({"decision": "ignore", "confidence": 0.5}),
     json.dumps({**json.loads(GOOD["content"]), "confidence": 7})],
    ids=["not-json", "unknown-decision", "missing-fields", "confidence-out-of-range"],
)  # fmt: skip
def test_a_malformed_answer_is_asked_again_once_then_refused(content):
    # Given a server that keeps answering something the schema does not allow
    with FakeOpenAI({"content": content}) as fake:
        # When the incident is analysed, Then the answer is refused as invalid
        with pytest.raises(llm.LlmAnswerInvalid):
            llm.analyze({}, allowed_actions=ACTIONS, settings=settings_for(fake))
    # And the question was asked at most twice
    assert len(fake.requests) == 2


def test_a_malformed_answer_followed_by_a_good_one_is_used():
    # Given a server that answers nonsense once, then well
    with FakeOpenAI({"content": "not json"}, GOOD) as fake:
        # When the incident is analysed
        analysis = llm.analyze({}, allowed_actions=ACTIONS, settings=settings_for(fake))
    # Then the second answer is the analysis
    assert analysis.decision == "remediate" and len(fake.requests) == 2


def test_a_server_error_is_retried_and_then_succeeds():
    # Given a server failing with 500, then 429, then answering
    with FakeOpenAI({"status": 500}, {"status": 429}, GOOD) as fake:
        # When the incident is analysed
        analysis = llm.analyze({}, allowed_actions=ACTIONS, settings=settings_for(fake))
    # Then the answer after the retries is used
    assert analysis.decision == "remediate" and len(fake.requests) == 3


def test_a_client_error_is_not_retried():
    # Given a server that rejects the request itself
    with FakeOpenAI({"status": 400}, GOOD) as fake:
        # When the incident is analysed, Then the LLM is unavailable at once
        with pytest.raises(llm.LlmUnavailable):
            llm.analyze({}, allowed_actions=ACTIONS, settings=settings_for(fake))
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    "answer", [{"refusal": "I cannot help with that."}, {"body": "<html>proxy error</html>"}, {"body": "[]"},
               {"body": "null"}, {"body": '{"choices": "none"}'}],
    ids=["refusal", "not-json", "a-list", "null", "no-choices"],
)  # fmt: skip
def test_a_refusal_or_a_body_that_is_no_completion_makes_the_llm_unavailable(answer):
    # Given a server that refuses, or answers with something that is not a completion
    with FakeOpenAI(answer) as fake:
        # When the incident is analysed, Then no analysis comes back
        with pytest.raises(llm.LlmUnavailable):
            llm.analyze({}, allowed_actions=ACTIONS, settings=settings_for(fake))
    assert 1 <= len(fake.requests) <= 2


def test_giving_up_is_logged_as_a_warning(caplog):
    # Given a server that always fails
    with FakeOpenAI({"status": 500}) as fake, caplog.at_level(logging.INFO):
        # When the incident is analysed until the budget runs out
        with pytest.raises(llm.LlmUnavailable):
            llm.analyze({}, allowed_actions=ACTIONS, settings=settings_for(fake, budget_s=1.0))
    # Then the retries are INFO and giving up a WARNING
    levels = [r.levelno for r in caplog.records if r.name == llm_client.__name__]
    assert levels[-1] == logging.WARNING and set(levels[:-1]) == {logging.INFO}


def test_a_slow_server_gives_up_within_the_budget():
    # Given a server that answers long after the budget
    with FakeOpenAI({**GOOD, "delay_s": 5}) as fake:
        started = time.monotonic()
        # When the incident is analysed, Then the LLM is unavailable
        with pytest.raises(llm.LlmUnavailable):
            llm.analyze({}, allowed_actions=ACTIONS, settings=settings_for(fake, budget_s=1.0))
        # And the caller was not held much past the budget (a bound on hanging, not a performance figure)
        assert time.monotonic() - started < 1.0 + 3.0


def test_a_failing_server_gives_up_within_the_budget():
    # Given a server that always fails
    with FakeOpenAI({"status": 503}) as fake:
        started = time.monotonic()
        # When the incident is analysed, Then the LLM is unavailable, within the budget plus a margin
        with pytest.raises(llm.LlmUnavailable):
            llm.analyze({}, allowed_actions=ACTIONS, settings=settings_for(fake, budget_s=1.0))
        assert time.monotonic() - started < 1.0 + 3.0
    assert 2 <= len(fake.requests) <= llm_client.MAX_ATTEMPTS


def test_no_key_means_no_request():
    # Given a server but no API key
    with FakeOpenAI(GOOD) as fake:
        # When the incident is analysed, Then the LLM is unavailable and nothing was sent
        with pytest.raises(llm.LlmUnavailable):
            llm.analyze({}, allowed_actions=ACTIONS, settings=Settings(openai_base_url=fake.base_url))
        with pytest.raises(llm.LlmUnavailable):
            llm_client.ask("why?", settings=Settings(openai_base_url=fake.base_url), timeout_s=1)
    assert fake.requests == []


def test_the_api_key_is_never_logged(caplog):
    # Given a server that fails, then answers
    with FakeOpenAI({"status": 500}, {"content": "not json"}, GOOD) as fake, caplog.at_level(logging.DEBUG):
        # When the incident is analysed through retries
        llm.analyze({}, allowed_actions=ACTIONS, settings=settings_for(fake))
    # Then the two retries were logged at INFO, without the key
    retries = [r.levelno for r in caplog.records if r.name == llm_client.__name__ and "retrying" in r.getMessage()]
    assert retries == [logging.INFO, logging.INFO]
    assert "sk-test" not in caplog.text


def test_ask_returns_the_models_text():
    # Given a server answering in prose
    with FakeOpenAI({"content": "Probably a memory leak."}) as fake:
        # When the executor asks a question, Then it gets the text
        assert llm_client.ask("why?", settings=settings_for(fake), timeout_s=2) == "Probably a memory leak."
    # And the prompt was sent as it was, with no schema
    body = fake.requests[0]["body"]
    assert body["messages"][-1] == {"role": "user", "content": "why?"} and "response_format" not in body


def _firing(any_db) -> int:
    from uuid import uuid4

    from app.models import EventCorrelation, Incident

    now, incident_id = datetime.now(UTC), uuid4()
    event = ProcessedEvent.create(id=uuid7(), source_type="webhook", event_type="service_down", severity="high",
                                  source_host="web-01", title="nginx down", occurred_at=now, fingerprint="f",
                                  correlation_id=incident_id)  # fmt: skip
    ProcessedEvent.create(id=uuid7(), source_type="syslog", event_type="oom_kill", severity="high", source_host="web-01",
                          title="Out of memory: Killed process 812 (nginx)", occurred_at=now, fingerprint="g",
                          correlation_id=incident_id)  # fmt: skip
    Incident.create(id=incident_id, status="open", title="nginx down", root_event_id=event.id, root_fingerprint="f",
                    severity="high", opened_at=now, last_event_at=now)  # fmt: skip
    EventCorrelation.create(correlation_id=incident_id, correlation_type="time_based", correlation_score=0.9,
                            correlation_reason="Events occurred within 5 minutes on same host")  # fmt: skip
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
    # The model saw the incident's events and why they were grouped
    sent = fake.requests[0]["body"]["messages"][-1]["content"]
    assert "Out of memory: Killed process 812 (nginx)" in sent
    assert "Events occurred within 5 minutes on same host" in sent
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

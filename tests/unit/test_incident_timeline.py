"""An incident's timeline on both databases: every kind of entry, in time order, bounded for huge incidents."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time

from app.correlation import store as correlation_store
from app.correlation.store import correlate_batch
from app.errors import NotFound
from app.events.envelope import make_item
from app.events.store import store_batch
from app.ids import new_id
from app.incidents import lifecycle, timeline
from app.models import Approval, DecisionLog, Execution, ExecutionStep, RuleExecution, RuleMatch, TriggerRule

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def fresh_topology():
    correlation_store._topology = None
    yield
    correlation_store._topology = None


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def events_on(host: str, n: int) -> tuple[str, list[str]]:
    items = [make_item(id=new_id(), source_type="webhook", received_at=at(k).timestamp(),
                       payload={"source": "x", "host": host, "title": f"Disk slow {k}", "severity": "high"})
             for k in range(n)]  # fmt: skip
    store_batch(items, window_s=0)
    placed = correlate_batch([i["id"] for i in items])
    return placed[items[0]["id"]], [i["id"] for i in items]


def test_the_timeline_tells_the_incident_from_its_events_to_the_steps_run_in_time_order(any_db):
    # Given an incident of two events, a rule fired by the first, its decision, an approved execution
    # of two steps, and what an operator did
    incident_id, (first, second) = events_on("web-01", 2)
    rule = TriggerRule.create(rule_name="disk", event_conditions={"event_type": "x"})
    firing = RuleExecution.create(trigger_rule_id=rule.id, triggering_event_id=first, execution_status="decided",
                                  started_at=at(0.2), fired_at=at(0.1))  # fmt: skip
    RuleMatch.create(rule_id=rule.id, event_id=second, matched_at=at(1.1))
    decision = DecisionLog.create(event_id=first, decision_type="remediate", confidence_score=0.82,
                                  reasoning="The LLM says: disk filling from logs; rotate them.", rule_execution_id=firing.id,
                                  incident_id=uuid.UUID(incident_id), risk_score=0.41, risk_level="medium", decided_by="llm",
                                  created_at=at(2))  # fmt: skip
    execution = Execution.create(id=uuid.uuid4(), decision_id=decision.id, definition={}, status="completed",
                                 requested_by="decider", created_at=at(3))  # fmt: skip
    Approval.create(execution_id=execution.id, status="approved", requested_by="decider", approvers=["operator"],
                    reason="risk above threshold", requested_actions=[], timeout_minutes=30, expires_at=at(33),
                    created_at=at(3), decided_by="key:7:alice", decided_person="alice", decided_at=at(4), comment="go")  # fmt: skip
    for k, name in enumerate(["check disk", "rotate logs"]):
        ExecutionStep.create(execution_id=execution.id, action_id=name, name=name, position=k, status="completed",
                             started_at=at(5 + k), completed_at=at(5.5 + k))  # fmt: skip
    with freeze_time(at(8)):
        lifecycle.acknowledge(incident_id, actor="key:7:alice", comment="on it")
    with freeze_time(at(9)):
        lifecycle.add_note(incident_id, text="Logs rotated, disk at 40%", actor="key:7:alice")
    with freeze_time(at(10)):
        lifecycle.resolve(incident_id, actor="key:7:alice")
    # When its timeline is read
    told = timeline.timeline(incident_id)
    entries = told["entries"]
    # Then every kind is there, oldest first
    kinds = [e["kind"] for e in entries]
    assert set(kinds) == {"status", "event", "correlation", "rule_fired", "decision", "approval", "execution", "step", "note"}
    assert [e["at"] for e in entries] == sorted(e["at"] for e in entries)
    assert told["incident"]["status"] == "resolved" and told["omitted"] == {}
    # And each says what an operator needs: the reason events were grouped, the rule, the LLM's reasoning and risk,
    # the approver, each step, the note and who moved the status
    by_kind = {k: [e for e in entries if e["kind"] == k] for k in set(kinds)}
    assert [e["details"]["event_id"] for e in by_kind["event"]] == [first, second]
    assert "on same host" in by_kind["correlation"][0]["details"]["reason"]
    assert [e["details"]["fired"] for e in by_kind["rule_fired"]] == [True, False]
    assert by_kind["rule_fired"][0]["details"]["rule_name"] == "disk"
    (decided,) = by_kind["decision"]
    assert decided["details"]["reasoning"].startswith("The LLM says") and decided["details"]["risk_level"] == "medium"
    assert decided["details"]["decided_by"] == "llm" and decided["details"]["confidence"] == 0.82
    assert [e["details"]["status"] for e in by_kind["approval"]] == ["requested", "approved"]
    assert by_kind["approval"][1]["details"]["decided_by"] == "alice"
    assert [e["details"]["name"] for e in by_kind["step"]] == ["check disk", "rotate logs"]
    assert by_kind["step"][0]["details"]["duration_s"] == 30.0
    assert by_kind["note"][0]["summary"] == "alice: Logs rotated, disk at 40%"
    moves = [(e["details"].get("from"), e["details"].get("to")) for e in by_kind["status"]]
    assert moves == [(None, "open"), ("open", "acknowledged"), ("acknowledged", "resolved")]
    assert kinds.index("event") < kinds.index("rule_fired") < kinds.index("decision") < kinds.index("execution")
    assert kinds.index("step") < kinds.index("note")


def test_a_huge_incident_shows_its_latest_events_and_counts_the_rest(any_db, monkeypatch):
    # Given an incident of seven events, and a timeline that shows at most five of a kind
    monkeypatch.setattr(timeline, "LIMIT", 5)
    incident_id, ids = events_on("web-01", 7)
    # When its timeline is read
    told = timeline.timeline(incident_id)
    # Then the five latest events are shown and two are counted as omitted
    shown = [e["details"]["event_id"] for e in told["entries"] if e["kind"] == "event"]
    assert shown == ids[2:] and told["omitted"]["event"] == 2


def test_the_timeline_of_an_unknown_incident_is_not_found(any_db):
    with pytest.raises(NotFound):
        timeline.timeline(str(uuid.uuid4()))
    with pytest.raises(NotFound):
        timeline.timeline("../etc/passwd")

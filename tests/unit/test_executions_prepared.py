"""The runner's prepared statements do what the peewee calls they replace do, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime

from app.decisions import context, risk
from app.executions import prepared
from app.executions.store import create_execution, snapshot
from app.ids import uuid7
from app.models import Execution, ExecutionLog, ExecutionStep, Incident, ProcessedEvent, RuleExecution, TriggerRule


def _execution(any_db, **extra):
    event = ProcessedEvent.create(
        id=uuid7(), source_type="webhook", event_type="disk_full", severity="high", source_host="db-01",
        source_service="postgres", title="disk full", occurred_at=datetime.now(UTC), fingerprint="f",
        event_data={"nonce": "n1"},
    )  # fmt: skip
    actions = [{"id": "look", "name": "Look", "type": "diagnostic", "http": {"method": "GET", "url": "http://x/"}},
               {"id": "tell", "type": "notification", "depends_on": ["look"], "notify": {"channel": "email"}}]  # fmt: skip
    assessments = [risk.assess(a, risk.Context(system_criticality="low")) for a in actions]
    definition = snapshot({"name": "p", "response_type": "investigation", "actions": actions, "variables": [
        {"name": "limit", "default": 3}]}, actions, assessments, set())  # fmt: skip
    return create_execution(definition=definition, requested_by="decider", decision_id=None, event_id=event.id,
                            variables={"who": "ops"}, **extra)  # fmt: skip


def test_save_writes_every_column_as_peewee_save_does(any_db):
    # Given an execution changed in memory
    row = _execution(any_db)
    row.status, row.started_at, row.definition = "running", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), {"actions": []}

    # When it is saved by the prepared statement (twice: the second binds to the cached text)
    prepared.save(row)
    row.error_message = "second"
    prepared.save(row)

    # Then the stored row has every change
    stored = Execution.get_by_id(row.id)
    assert (stored.status, stored.started_at, stored.definition, stored.error_message) == (
        "running", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), {"actions": []}, "second")  # fmt: skip


def test_insert_fills_defaults_and_select_reads_models(any_db):
    # Given an execution
    row = _execution(any_db)

    # When a log line is inserted
    prepared.insert(ExecutionLog, execution_id=row.id, message="hello", level="warning", action_id="look")

    # Then it is stored with its default time, and a prepared select reads it back as a model
    logs = prepared.select(ExecutionLog, "test-logs",
                           lambda: ExecutionLog.select().where(ExecutionLog.execution_id == row.id).order_by(ExecutionLog.id),
                           [ExecutionLog.execution_id.db_value(row.id)])  # fmt: skip
    assert [(lg.message, lg.level, lg.action_id) for lg in logs][-1] == ("hello", "warning", "look")
    assert isinstance(logs[-1].at, datetime) and logs[-1].at.tzinfo is not None


def test_render_context_is_the_decisions_one(any_db):
    # Given an execution fired by a rule
    rule = TriggerRule.create(rule_name="disk", event_conditions={"event_type": "disk_full"})
    firing = RuleExecution.create(trigger_rule_id=rule.id, execution_status="fired")
    row = _execution(any_db, rule_execution_id=firing.id)
    steps = list(ExecutionStep.select().where(ExecutionStep.execution_id == row.id))

    # When the runner's context is built from the row and steps it read
    built = prepared.render_context(Execution.get_by_id(row.id), steps)

    # Then it is the one the decisions module reads itself
    assert built == context.render_context(row.id)
    assert built["rule"] == {"id": rule.id, "name": "disk"} and built["event"]["metadata"]["nonce"] == "n1"


def test_the_locked_row_carries_the_render_context_read_with_it(any_db):
    # Given an execution fired by a rule, its event in an incident, and one with neither firing nor incident
    at = datetime.now(UTC)
    incident = Incident.create(id=uuid7(), title="disk", severity="high", status="open", hosts=["db-01"],
                               root_event_id=uuid7(), root_fingerprint="f", opened_at=at, last_event_at=at)  # fmt: skip
    rule = TriggerRule.create(rule_name="disk", event_conditions={"event_type": "disk_full"})
    firing = RuleExecution.create(trigger_rule_id=rule.id, execution_status="fired")
    fired = _execution(any_db, rule_execution_id=firing.id)
    ProcessedEvent.update(correlation_id=incident.id).where(ProcessedEvent.id == fired.event_id).execute()
    alone = _execution(any_db)

    for row in (fired, alone):
        steps = list(ExecutionStep.select().where(ExecutionStep.execution_id == row.id))
        # When the runner locks it, reading its context in the same statement
        locked = prepared.locked_with_context(row.id)

        # Then the row is the stored one and the context the one the decisions module reads itself
        assert locked is not None and locked.id == row.id and locked.definition == row.definition
        assert prepared.render_context(locked, steps) == context.render_context(row.id)
    assert prepared.render_context(prepared.locked_with_context(fired.id), []).get("incident")["id"] == str(incident.id)
    assert prepared.locked_with_context(alone.id).ctx_incident is None
    assert prepared.locked_with_context(uuid7()) is None


def test_writes_go_together_at_the_flush_and_bind_values_as_given(any_db):
    # Given writes queued: a save, log lines (one with a literal "%" and quotes), a peewee query
    row = _execution(any_db)
    writes = prepared.Writes()
    row.error_message = "50% done; it's 'quoted'"
    writes.save(row)
    writes.insert(ExecutionLog, execution_id=row.id, message="100% %s %(x)s", level="info", action_id=None)
    writes.add(ExecutionStep.update(attempts=7).where(ExecutionStep.execution_id == row.id))
    before = ExecutionLog.select().where(ExecutionLog.execution_id == row.id).count()

    # When nothing is flushed, nothing is written; then they are flushed
    assert Execution.get_by_id(row.id).error_message is None
    writes.flush()

    # Then every write is stored with its values as given
    assert Execution.get_by_id(row.id).error_message == "50% done; it's 'quoted'"
    messages = [lg.message for lg in ExecutionLog.select().where(ExecutionLog.execution_id == row.id)]
    assert len(messages) == before + 1 and messages[-1] == "100% %s %(x)s"
    assert {s.attempts for s in ExecutionStep.select().where(ExecutionStep.execution_id == row.id)} == {7}
    writes.flush()  # nothing left: a second flush writes nothing
    assert ExecutionLog.select().where(ExecutionLog.execution_id == row.id).count() == before + 1

"""The audit log's vocabulary and its one writer, :func:`app.audit.record`."""

from __future__ import annotations

import re

import pytest

from app import audit
from app.auth import create_key
from app.models import ApiKey, AuditLog

#: ``<noun>.<past participle>``: one lower-case noun per object kind, a verb in the past tense.
SHAPE = re.compile(r"[a-z_]+\.[a-z_]*(ed|made|used|set|split)")


def test_every_action_names_one_object_kind_in_the_past_tense():
    # Given the vocabulary, then each action reads "<kind>.<done>" and is written once
    for action in audit.Action:
        assert SHAPE.fullmatch(action.value), action
    assert len({a.value for a in audit.Action}) == len(audit.Action)


def test_every_old_action_name_maps_to_an_action_of_the_vocabulary():
    # Given the names rows were written with before the vocabulary, then none is still in use
    assert not set(audit.RENAMED) & {a.value for a in audit.Action}
    assert audit.RENAMED["trigger_rule.create"] is audit.Action.TRIGGER_RULE_CREATED
    assert audit.RENAMED["maintenance.deleted"] is audit.Action.MAINTENANCE_WINDOW_DELETED


def test_an_outcome_is_an_action_of_the_vocabulary_or_refused():
    assert audit.outcome("execution", "cancelled") is audit.Action.EXECUTION_CANCELLED
    assert audit.outcome("rollback_step", "failed") is audit.Action.ROLLBACK_STEP_FAILED
    with pytest.raises(ValueError):
        audit.outcome("execution", "exploded")


def test_a_row_recorded_for_a_key_names_the_keys_person(any_db):
    # Given a key held by alice
    create_key(role="operator", name="alice-laptop", person="alice")
    key = ApiKey.get(ApiKey.name == "alice-laptop")
    # When an action of that key is recorded
    audit.record(audit.Action.TRIGGER_RULE_DELETED, actor=f"key:{key.id}:alice-laptop", subject="trigger_rule:7")
    # Then the row holds the action's name and alice as the person; an actor that is no key is its own person
    row = AuditLog.get(AuditLog.subject == "trigger_rule:7")
    assert (row.action, row.person) == ("trigger_rule.deleted", "alice")
    audit.record(audit.Action.EXECUTION_FAILED, actor="executor", subject="execution:x", details={"error": "boom"})
    assert AuditLog.get(AuditLog.subject == "execution:x").person == "executor"

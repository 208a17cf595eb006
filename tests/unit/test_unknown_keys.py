"""Unknown or ignored keys in templates, trigger rules and the topology answer with a warning or a
400 naming the key, never silence (validation, without the HTTP layer: see
tests/integration/test_write_warnings.py for the answers over a real gunicorn)."""

from __future__ import annotations

import pytest

from app.correlation.query import replace_topology
from app.errors import InvalidInput
from app.rules.playbooks import parse_playbook
from app.rules.triggers import parse_trigger

RULE = {"name": "cpu", "conditions": {"event_type": "threshold_breach"}, "max_triggers_per_hour": 3}


def test_a_trigger_rules_unknown_keys_are_named_in_its_warnings():
    # Given a rule with a misspelt cooldown and a schedule with a misspelt time zone
    body = {**RULE, "cooldown_minute": 15, "schedule": {"days": ["mon"], "time_zone": "Europe/Paris"}}
    # When it is validated, Then it is accepted, and each ignored key is named
    spec = parse_trigger(body)
    assert spec.cooldown_minutes is None
    assert spec.warnings == ("unknown key 'cooldown_minute' is ignored", "unknown key 'schedule.time_zone' is ignored")


def test_a_trigger_rule_as_a_get_answers_it_comes_back_without_warnings():
    # The read-only fields of a GET (id, timestamps) may be sent back in a PUT
    body = {**RULE, "rule_id": 4, "created_at": "2026-01-01T00:00:00+00:00", "updated_at": None, "last_fired_at": None,
            "schedule": {"days": ["mon"], "start": "08:00", "end": "18:00", "timezone": "UTC"}}  # fmt: skip
    assert parse_trigger(body).warnings == ()


def test_a_templates_unknown_keys_are_named_in_its_warnings_down_to_the_integration_block():
    # Given a template whose keys are misspelt at each level
    body = {"name": "t", "priority": 1, "actions": [
        {"id": "check", "type": "http", "category": "diagnostic", "method": "GET", "url": "http://x", "timeout": 3},
        {"id": "fix", "type": "remediation", "http": {"method": "POST", "url": "http://x", "body": {"a": 1}},
         "rollback": {"shell": {"program": "undo", "argv": ["--all"]}}},
    ]}  # fmt: skip
    # When it is validated, Then each ignored key is named by its path
    warnings = parse_playbook(body)["warnings"]
    assert warnings == [
        "unknown key 'priority' is ignored",
        "unknown key 'actions[0].timeout' is ignored",
        "unknown key 'actions[1].http.body' is ignored",
        "unknown key 'actions[1].rollback.shell.argv' is ignored",
    ]


def test_the_flat_form_accepts_its_integrations_keys_and_category_without_warnings():
    body = {"name": "t", "actions": [
        {"id": "check", "type": "http", "category": "diagnostic", "method": "GET", "url": "http://x",
         "headers": {"Accept": "application/json"}, "expected_status": 200, "verify_tls": True, "timeout_minutes": 2},
        {"id": "tell", "type": "notify", "channel": "email", "to": ["a@example.com"], "subject": "s", "message": "m",
         "depends_on": ["check"]},
    ]}  # fmt: skip
    assert parse_playbook(body)["warnings"] == []


@pytest.mark.parametrize("key", ["dependencies", "links", "host"])
def test_a_topology_with_an_unknown_key_is_refused_naming_it(key):
    # Given a topology written with a key the map does not have (it used to replace the map by an empty one)
    body = {key: {"web-01": "switch-01"}}
    # When it is validated, Then it is refused before anything is written, naming the key
    with pytest.raises(InvalidInput) as refused:
        replace_topology(body, actor="test")
    assert refused.value.field == key and "hosts" in refused.value.message

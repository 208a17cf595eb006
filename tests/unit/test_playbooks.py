"""Response templates: the spec's playbook validates, and bad ones are refused with the field named."""

from __future__ import annotations

import copy

import pytest

from app.errors import InvalidRule
from app.rules.playbooks import parse_playbook

#: The service specification's "high_cpu_investigation" template, as JSON.
SPEC_TEMPLATE = {
    "name": "High CPU Usage Investigation",
    "description": "Automated investigation and remediation for high CPU usage",
    "response_type": "remediation",
    "variables": [
        {"name": "cpu_threshold", "type": "float", "default": 90.0},
        {"name": "max_processes_to_kill", "type": "integer", "default": 3},
    ],
    "actions": [
        {"id": "diagnostic_cpu", "name": "CPU Diagnostic", "type": "diagnostic", "automation_script": "check_cpu_usage",
         "timeout_minutes": 5, "required": True},
        {"id": "diagnostic_processes", "name": "Process Analysis", "type": "diagnostic", "timeout_minutes": 3,
         "depends_on": ["diagnostic_cpu"]},
        {"id": "remediation_kill_processes", "name": "Kill High CPU Processes", "type": "remediation",
         "parameters": {"max_processes": "{{ max_processes_to_kill }}", "host": "{{ event.host }}"}, "approval_required": True,
         "risk_level": "medium", "rollback_supported": True, "depends_on": ["diagnostic_processes"]},
        {"id": "notification_resolved", "name": "Resolution Notification", "type": "notification", "channels": ["email", "slack"],
         "depends_on": ["remediation_kill_processes"]},
    ],
    "rollback_actions": [{"id": "restore_processes", "name": "Restore", "automation_script": "restore_processes",
                          "condition": "remediation_kill_processes.failed"}],
    "success_criteria": ["diagnostic_cpu.result.cpu_usage < {{ cpu_threshold }}"],
}  # fmt: skip


def test_the_specs_template_is_valid_and_ordered_by_its_dependencies():
    parsed = parse_playbook(SPEC_TEMPLATE)
    assert parsed["execution_order"] == [
        "diagnostic_cpu",
        "diagnostic_processes",
        "remediation_kill_processes",
        "notification_resolved",
    ]
    assert parsed["max_execution_time_minutes"] == 30


def mutated(fn) -> dict:
    body = copy.deepcopy(SPEC_TEMPLATE)
    fn(body)
    return body


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        (mutated(lambda b: b["actions"][0].update(type="rm -rf")), "actions[0].type", "unknown action type"),
        (mutated(lambda b: b["actions"][0].update(depends_on=["notification_resolved"])), "actions", "cycle"),
        (mutated(lambda b: b["actions"][1].update(depends_on=["nope"])), "actions[1].depends_on", "unknown action"),
        (
            mutated(lambda b: b["actions"][2]["parameters"].update(user="{{ target_user }}")),
            "actions[2]",
            "target_user",
        ),
        (mutated(lambda b: b["actions"][2].update(risk_level="extreme")), "actions[2].risk_level", "risk_level"),
        (mutated(lambda b: b["actions"][0].update(timeout_minutes=0)), "actions[0].timeout_minutes", "timeout"),
        (mutated(lambda b: b["actions"][1].update(id="diagnostic_cpu")), "actions[1].id", "twice"),
        (mutated(lambda b: b.update(actions=[])), "actions", "non-empty"),
        (mutated(lambda b: b.update(response_type="panic")), "response_type", "response_type"),
        (mutated(lambda b: b["variables"].append({"name": "cpu_threshold"})), "variables[2].name", "twice"),
    ],
)
def test_bad_templates_are_refused_naming_the_field(body, field, words):
    with pytest.raises(InvalidRule) as error:
        parse_playbook(body)
    assert error.value.field == field and words in error.value.message


def test_actions_that_name_no_integration_are_accepted_with_a_warning():
    # The spec's template refers to automation scripts by id: valid, but nothing could run them
    parsed = parse_playbook(copy.deepcopy(SPEC_TEMPLATE))
    assert any("names no integration" in w for w in parsed["warnings"])
    runnable = copy.deepcopy(SPEC_TEMPLATE)
    for action in runnable["actions"]:
        action.pop("automation_script", None)
        action.pop("parameters", None)  # read by nothing: it gets its own warning
        action["http"] = {"method": "POST", "url": "https://automation.internal/run/{{ event.host }}"}
    runnable["rollback_actions"][0].pop("automation_script")  # likewise: an unknown key is warned about
    assert parse_playbook(runnable)["warnings"] == []


def test_an_integration_block_is_validated_on_write():
    body = copy.deepcopy(SPEC_TEMPLATE)
    body["actions"][0]["shell"] = {"program": "rm -rf /", "args": []}
    with pytest.raises(InvalidRule) as refused:
        parse_playbook(body)
    assert refused.value.field == "actions[0].shell.program"

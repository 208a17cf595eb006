"""Writes answer what they ignore, over a real gunicorn: unknown keys and overridden risk
declarations of templates and trigger rules are named in the create/update answer's warnings, and
a topology with an unknown key is refused with a 400 naming it, the map left as it was."""

from __future__ import annotations

from tests.http import request

ACTIONS = [
    {"id": "status", "type": "http", "category": "diagnostic", "method": "GET",
     "url": "https://automation.internal/status", "timeout": 5},
    {"id": "wipe", "type": "http", "operation": "notification", "method": "POST",
     "url": "https://automation.internal/wipe", "depends_on": ["status"]},
]  # fmt: skip


def _expected(warnings: list[str]) -> None:
    assert "unknown key 'actions[0].timeout' is ignored" in warnings
    assert any(w.startswith("action 'wipe': operation 'notification'") and "configuration_change" in w
               for w in warnings)  # fmt: skip
    assert not any("'status'" in w and "category" in w for w in warnings)  # the category counts: no warning


def test_a_template_answers_its_ignored_keys_and_overridden_declarations_on_create_and_update(stack):
    # Given a template whose http step declares itself a notification and whose diagnostic has a stray key
    body = {"name": "warned playbook", "response_type": "investigation", "actions": ACTIONS}
    # When it is created, Then it is accepted and the answer names both
    created = request("POST", f"{stack.base}/api/v1/rules/responses", key=stack.admin, json=body)
    assert created.status == 201, created.body
    _expected(created.json()["warnings"])
    # And an update answers the same warnings
    template_id = created.json()["template_id"]
    updated = request("PUT", f"{stack.base}/api/v1/rules/responses/{template_id}", key=stack.admin, json=body)
    assert updated.status == 200, updated.body
    _expected(updated.json()["warnings"])
    # And a category that is not the spec's is refused, naming the field
    bad = {**body, "actions": [{**ACTIONS[0], "category": "harmless"}]}
    refused = request("POST", f"{stack.base}/api/v1/rules/responses", key=stack.admin, json=bad)
    assert refused.status == 400 and refused.json()["field"] == "actions[0].category"


def test_a_trigger_rule_answers_its_ignored_keys_on_create_and_update(stack):
    # Given a rule with a misspelt cooldown
    body = {"name": "warned rule", "conditions": {"event_type": "disk_full"}, "cooldown_minute": 15}
    # When it is created, Then the answer names the key it ignored
    created = request("POST", f"{stack.base}/api/v1/rules/triggers", key=stack.admin, json=body)
    assert created.status == 201, created.body
    assert "unknown key 'cooldown_minute' is ignored" in created.json()["validation_result"]["warnings"]
    # And so does an update; the rule as a GET shows it goes back without warnings
    rule_id = created.json()["rule_id"]
    updated = request("PUT", f"{stack.base}/api/v1/rules/triggers/{rule_id}", key=stack.admin, json=body)
    assert "unknown key 'cooldown_minute' is ignored" in updated.json()["validation_result"]["warnings"]
    shown = request("GET", f"{stack.base}/api/v1/rules/triggers/{rule_id}", key=stack.admin).json()
    again = request("PUT", f"{stack.base}/api/v1/rules/triggers/{rule_id}", key=stack.admin, json=shown)
    assert again.status == 200 and not any("unknown key" in w for w in again.json()["validation_result"]["warnings"])


def test_a_topology_with_an_unknown_key_is_refused_and_the_map_kept(stack):
    # Given a topology in place
    url = f"{stack.base}/api/v1/topology"
    placed = request(
        "PUT", url, key=stack.admin, json={"hosts": {"web-01": "switch-01"}, "criticality": {"web-01": "high"}}
    )
    assert placed.status == 200, placed.body
    # When it is replaced with a key the map does not have (it used to answer 200 and empty the map)
    reply = request("PUT", url, key=stack.admin, json={"dependencies": {"web-01": ["switch-01"]}})
    # Then it is refused, naming the key, and the map is as it was
    assert reply.status == 400 and reply.json()["field"] == "dependencies"
    shown = request("GET", url, key=stack.viewer).json()
    assert shown["edges"] == [{"from": "web-01", "to": "switch-01", "kind": "connected_to"}]
    assert {"id": "web-01", "kind": "host", "criticality": "high"} in shown["nodes"] and shown["version"] == placed.json()["version"]
    # And the map as a GET shows it can be written back
    assert request("PUT", url, key=stack.admin, json=shown).status == 200

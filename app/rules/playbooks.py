"""Response templates (playbooks): validated on write — action types, ``depends_on`` forming no
cycle, variables defined before use — and put in a safe execution order.
"""

from __future__ import annotations

import re
from graphlib import CycleError, TopologicalSorter
from typing import Any

from ..actions import INTEGRATIONS, secrets_of, validate_action
from ..actions.operations import CATEGORIES, OPERATIONS, below_floor
from ..errors import InvalidRule

#: The spec's action categories and the integrations the executor runs.
ACTION_TYPES = frozenset({"diagnostic", "remediation", "notification", "http", "shell", "notify", "llm"})
RESPONSE_TYPES = frozenset({"investigation", "remediation", "escalation"})
RISK_LEVELS = ("low", "medium", "high", "critical")
VARIABLE_TYPES = frozenset({"string", "integer", "float", "boolean", "list", "object"})
#: Names every template may use without declaring them: the firing's context.
CONTEXT_ROOTS = frozenset({"event", "incident", "rule", "execution", "decision"})

#: Keys a template action may carry about the step itself (the spec's, and ours).
STEP_KEYS = frozenset({
    "id", "name", "type", "description", "depends_on", "risk_level", "timeout_minutes", "approval_required",
    "rollback_supported", "required", "operation", "category", "rollback", "idempotent", "channels", "template",
    "rolls_back", "condition",
})  # fmt: skip
#: Keys of each integration's block (also allowed on the action itself when its ``type`` is the integration).
BLOCK_KEYS = {
    "http": frozenset({"method", "url", "headers", "json", "expected_status", "verify_tls"}),
    "shell": frozenset({"program", "args"}),
    "notify": frozenset({"channel", "channels", "to", "url", "subject", "message", "data"}),
    "llm": frozenset({"prompt"}),
}
#: Keys of a template besides its actions; the read-only ones a GET answers with are accepted back.
TEMPLATE_KEYS = frozenset({
    "name", "description", "trigger_rule_id", "response_type", "type", "actions", "rollback_actions",
    "approval_required", "max_execution_time_minutes", "variables", "success_criteria", "failure_criteria",
    "template_id", "version", "active", "created_at", "execution_order", "warnings",
})  # fmt: skip

_REFERENCE = re.compile(r"{{\s*([A-Za-z_][\w]*)(?:\.[\w.]+)?\s*(?:\|[^}]*)?}}")


def _references(value: Any) -> set[str]:
    """Names used as ``{{ name }}`` anywhere inside ``value``."""
    if isinstance(value, str):
        return set(_REFERENCE.findall(value))
    if isinstance(value, dict):
        return set().union(*(_references(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_references(v) for v in value)) if value else set()
    return set()


def _check_variables(body: dict[str, Any]) -> set[str]:
    variables = body.get("variables") or []
    if not isinstance(variables, list):
        raise InvalidRule("variables is a list", field="variables")
    names: set[str] = set()
    for i, var in enumerate(variables):
        if not isinstance(var, dict) or not isinstance(var.get("name"), str) or not var["name"].isidentifier():
            raise InvalidRule("a variable needs a name (an identifier)", field=f"variables[{i}].name")
        if var.get("type", "string") not in VARIABLE_TYPES:
            raise InvalidRule(f"type must be one of {', '.join(sorted(VARIABLE_TYPES))}", field=f"variables[{i}].type")
        if var["name"] in names:
            raise InvalidRule(f"variable {var['name']!r} is declared twice", field=f"variables[{i}].name")
        names.add(var["name"])
    return names


def _check_action(action: Any, where: str, known: set[str]) -> None:
    if not isinstance(action, dict):
        raise InvalidRule("an action is an object", field=where)
    if action.get("type") not in ACTION_TYPES:
        raise InvalidRule(
            f"unknown action type {action.get('type')!r} (one of {', '.join(sorted(ACTION_TYPES))})",
            field=f"{where}.type",
        )
    if action.get("risk_level", "low") not in RISK_LEVELS:
        raise InvalidRule(f"risk_level must be one of {', '.join(RISK_LEVELS)}", field=f"{where}.risk_level")
    timeout = action.get("timeout_minutes")
    if timeout is not None and (not isinstance(timeout, int) or isinstance(timeout, bool) or not 1 <= timeout <= 1440):
        raise InvalidRule("timeout_minutes is an integer from 1 to 1440", field=f"{where}.timeout_minutes")
    for flag in ("approval_required", "rollback_supported", "required"):
        if flag in action and not isinstance(action[flag], bool):
            raise InvalidRule(f"{flag} is true or false", field=f"{where}.{flag}")
    undefined = _references(action) - known - CONTEXT_ROOTS - {"steps", "variables", "secret"}
    if undefined:
        raise InvalidRule(f"undefined variable {sorted(undefined)[0]!r}", field=f"{where}")
    if action.get("operation") is not None and action["operation"] not in OPERATIONS:
        raise InvalidRule(f"operation is one of {', '.join(OPERATIONS)}", field=f"{where}.operation")
    if action.get("category") is not None and action["category"] not in CATEGORIES:
        raise InvalidRule(f"category is one of {', '.join(CATEGORIES)}", field=f"{where}.category")
    if runnable(action):
        validate_action(action, where=where)
    if isinstance(action.get("rollback"), dict):
        _check_action({"type": "remediation", **action["rollback"]}, f"{where}.rollback", known)


def _ignored_keys(action: dict[str, Any], where: str) -> list[str]:
    """Warnings for the keys of ``action`` (and of its blocks and rollback) that nothing reads."""
    allowed = STEP_KEYS | set(BLOCK_KEYS) | BLOCK_KEYS.get(str(action.get("type")), frozenset())
    found = [f"{where}.{key}" for key in action if key not in allowed]
    for name, keys in BLOCK_KEYS.items():
        block = action.get(name)
        if isinstance(block, dict):
            found += [f"{where}.{name}.{key}" for key in block if key not in keys]
    if isinstance(action.get("rollback"), dict):
        return found + _ignored_keys(action["rollback"], f"{where}.rollback")
    return found


def _warnings(body: dict[str, Any], actions: list[dict[str, Any]], ids: list[str]) -> list[str]:
    """Unknown keys (ignored) and declarations the risk matrix's floors override."""
    ignored = [key for key in body if key not in TEMPLATE_KEYS]
    for key in ("actions", "rollback_actions"):
        for i, action in enumerate(body.get(key) or []):
            if isinstance(action, dict):
                ignored += _ignored_keys(action, f"{key}[{i}]")
    warnings = [f"unknown key {key!r} is ignored" for key in ignored]
    for action, action_id in zip(actions, ids, strict=True):
        overridden = below_floor(action)
        if overridden:
            warnings.append(f"action {action_id!r}: {overridden}")
    return warnings


def secrets_used(definition: dict[str, Any]) -> set[str]:
    """The names of the secrets a validated template's actions and rollback actions use (``{{ secret.NAME }}``)."""
    names: set[str] = set()
    for action in [*definition.get("actions", []), *(definition.get("rollback_actions") or [])]:
        for part in (action, action.get("rollback")):
            if isinstance(part, dict) and runnable(part):
                names |= secrets_of(part)
    return names


def runnable(action: dict[str, Any]) -> bool:
    """Whether the action names an integration the executor can run (http, shell, notify, llm)."""
    return action.get("type") in INTEGRATIONS or any(k in action for k in INTEGRATIONS)


def _ids(actions: list[Any], key: str) -> list[str]:
    ids = [str(a.get("id") or f"step_{i + 1}") for i, a in enumerate(actions)]
    for i, action_id in enumerate(ids):
        if ids.index(action_id) != i:
            raise InvalidRule(f"action id {action_id!r} is used twice", field=f"{key}[{i}].id")
    return ids


def execution_order(actions: list[dict[str, Any]]) -> list[str]:
    """Action ids in an order that respects ``depends_on``.

    Raises:
      InvalidRule: a dependency on an unknown action, or a cycle.
    """
    ids = _ids(actions, "actions")
    graph: dict[str, set[str]] = {}
    for i, (action_id, action) in enumerate(zip(ids, actions, strict=True)):
        depends = action.get("depends_on") or []
        if not isinstance(depends, list) or any(d not in ids for d in depends):
            raise InvalidRule(f"depends_on names an unknown action: {depends!r}", field=f"actions[{i}].depends_on")
        graph[action_id] = set(depends)
    try:
        return list(TopologicalSorter(graph).static_order())
    except CycleError as e:
        raise InvalidRule(f"depends_on has a cycle: {' -> '.join(map(str, e.args[1]))}", field="actions") from None


def parse_playbook(body: Any) -> dict[str, Any]:
    """Validate a response template as the API receives it; return its normalized definition.

    Raises:
      InvalidRule: naming the offending field.
    """
    if not isinstance(body, dict):
        raise InvalidRule("a response template is a JSON object", field="body")
    if not isinstance(body.get("name"), str) or not body["name"].strip():
        raise InvalidRule("name is required", field="name")
    response_type = body.get("response_type") or body.get("type") or "investigation"
    if response_type not in RESPONSE_TYPES:
        raise InvalidRule(f"response_type must be one of {', '.join(sorted(RESPONSE_TYPES))}", field="response_type")
    known = _check_variables(body)
    actions = body.get("actions")
    if not isinstance(actions, list) or not actions:
        raise InvalidRule("actions is a non-empty list", field="actions")
    for i, action in enumerate(actions):
        _check_action(action, f"actions[{i}]", known)
    order = execution_order(actions)
    rollback = body.get("rollback_actions") or []
    if not isinstance(rollback, list):
        raise InvalidRule("rollback_actions is a list", field="rollback_actions")
    for i, action in enumerate(rollback):
        if isinstance(action, dict) and "type" not in action:
            action = {**action, "type": "remediation"}
        _check_action(action, f"rollback_actions[{i}]", known)
    max_minutes = body.get("max_execution_time_minutes", 30)
    if not isinstance(max_minutes, int) or isinstance(max_minutes, bool) or not 1 <= max_minutes <= 1440:
        raise InvalidRule("max_execution_time_minutes is an integer from 1 to 1440", field="max_execution_time_minutes")
    for key in ("success_criteria", "failure_criteria"):
        if not isinstance(body.get(key) or [], list):
            raise InvalidRule(f"{key} is a list", field=key)
    ids = _ids(actions, "actions")
    normalized = [{**a, "id": action_id} for a, action_id in zip(actions, ids, strict=True)]
    warnings = [
        f"action {action_id!r} names no integration (http, shell, notify or llm): it will fail if run"
        if not a.get("channels")
        else f"action {action_id!r} has only spec-style channels: email goes to NOTIFY_EMAIL_TO; "
        "slack, teams and webhook need a notify block with their url"
        for a, action_id in zip(actions, ids, strict=True)
        if not runnable(a)
    ] + _warnings(body, actions, ids)
    return {**body, "response_type": response_type, "actions": normalized, "execution_order": order,
            "max_execution_time_minutes": max_minutes, "warnings": warnings}  # fmt: skip

"""Risk floors: what a template declares (``operation``, ``category``) may raise an action's risk,
never lower it below what its integration can do; ``category`` counts, and overridden declarations
are named in the template's warnings (pure logic: the matrix, the policy and template validation)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.actions import operations
from app.decisions import policy, risk
from app.errors import InvalidRule
from app.rules.playbooks import parse_playbook

POST = {"method": "POST", "url": "https://automation.internal/wipe/{{ event.host }}"}
GET = {"method": "GET", "url": "https://automation.internal/status/{{ event.host }}"}
#: The quiet hour on a low-criticality host: the context in which a low-risk step may run alone.
QUIET = risk.Context(system_criticality="low", business_hours=False, maintenance_window=False)


def auto_decision(*actions: dict) -> policy.Decision:
    template = {"name": "t", "response_type": "investigation", "actions": list(actions)}
    situation = policy.Situation(event={"id": "e", "severity": "high", "host": "web-01"},
                                   incident={"status": "open", "severity": "high"}, template=template,
                                   context=QUIET, mode="auto")  # fmt: skip
    return policy.decide(situation)


@pytest.mark.parametrize(
    "action",
    [
        {"id": "wipe", "type": "http", "operation": "notification", **POST},
        {"id": "wipe", "type": "remediation", "operation": "notification", "http": POST},
        {"id": "wipe", "type": "notification", "http": POST},
        {"id": "wipe", "type": "shell", "operation": "notification", "program": "wipe"},
        {"id": "wipe", "type": "http", "category": "notification", "operation": "notification", **POST},
    ],
    ids=["http-declares-notification", "remediation-declares-notification", "spec-notification-over-http",
         "shell-declares-notification", "http-categorised-notification"],
)  # fmt: skip
def test_a_shell_or_http_action_declared_a_notification_still_scores_as_a_change_and_waits(action):
    # Given an http or shell action whose template calls it a notification
    # When the matrix scores it
    assessed = risk.assess(action, QUIET)
    # Then it scores as a configuration change (0.1 + 0.4 + 0.1), not 0.2, and needs an approval
    assert assessed.operation == "configuration_change" and assessed.category == "remediation"
    assert assessed.score == pytest.approx(0.6) and assessed.approval_required
    # And in auto mode, at the quietest hour, the decider does not let it run alone
    d = auto_decision(action)
    assert d.gated == {"wipe"} and d.approval_required


def test_an_http_call_marked_diagnostic_by_category_scores_as_a_diagnostic_and_may_run_alone():
    # Given the action: an http call with "category": "diagnostic" (the flat form)
    action = {"id": "status", "type": "http", "category": "diagnostic", **GET}
    # When it is scored, Then the category counts: a diagnostic (0.1 + 0.1 + 0.1), within policy
    assessed = risk.assess(action, QUIET)
    assert (assessed.operation, assessed.category) == ("diagnostic", "diagnostic")
    assert assessed.score == pytest.approx(0.3) and not assessed.approval_required
    d = auto_decision(action)
    assert d.execute and d.gated == set()
    # And the same call without the category is a change, which waits
    assert risk.operation_of({"id": "status", "type": "http", **GET}) == "configuration_change"
    assert auto_decision({"id": "status", "type": "http", **GET}).gated == {"status"}


@pytest.mark.parametrize(
    ("action", "operation"),
    [
        ({"type": "notify", "channel": "email"}, "notification"),
        ({"type": "notification", "notify": {"channel": "email"}}, "notification"),
        ({"type": "notification", "channels": ["email"]}, "notification"),
        ({"type": "llm", "prompt": "why?"}, "diagnostic"),
        ({"type": "llm", "prompt": "why?", "operation": "notification"}, "diagnostic"),
        ({"type": "diagnostic", "http": GET}, "diagnostic"),
        ({"type": "remediation", "operation": "service_restart", "http": POST}, "service_restart"),
        ({"type": "remediation", "operation": "diagnostic", "http": POST}, "configuration_change"),
        ({"type": "http", "category": "diagnostic", "operation": "system_restart", **POST}, "system_restart"),
        ({"type": "notify", "channel": "email", "category": "remediation"}, "configuration_change"),
        ({"type": "remediation"}, "configuration_change"),
    ],
)
def test_each_integration_has_a_floor_and_a_declaration_only_raises_it(action, operation):
    assert risk.operation_of(action) == operation


ACTIONS = st.fixed_dictionaries(
    {"type": st.sampled_from(["http", "shell", "notify", "llm", "diagnostic", "remediation", "notification"])},
    optional={
        "operation": st.sampled_from(risk.OPERATIONS),
        "category": st.sampled_from(risk.CATEGORIES),
        "http": st.just(POST),
        "shell": st.just({"program": "x"}),
        "notify": st.just({"channel": "email"}),
        "llm": st.just({"prompt": "p"}),
    },
)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(action=ACTIONS)
def test_no_declaration_scores_an_action_below_its_integrations_floor(action):
    weight = risk.RISK_FACTORS["action_type"]
    operation = risk.operation_of(action)
    undeclared = risk.operation_of({k: v for k, v in action.items() if k != "operation"})
    # What it scores as is never below its floor, nor below what it would be with no operation declared
    assert weight[operation] >= weight[risk.floor_of(action)]
    assert weight[operation] >= weight[undeclared] or action.get("operation") == "service_restart"
    # And anything that can run http or shell is a notification under no declaration
    integration = operations._integration(action)
    if integration in ("http", "shell"):
        assert operation != "notification"
        if risk.declared_category(action) != "diagnostic":
            assert risk.category_of(action) == "remediation"


def test_a_template_names_the_declarations_its_floors_override_and_refuses_an_unknown_category():
    # Given a template whose http step claims to be a notification
    body = {"name": "t", "actions": [
        {"id": "wipe", "type": "http", "operation": "notification", "category": "notification", **POST},
        {"id": "status", "type": "http", "category": "diagnostic", **GET},
    ]}  # fmt: skip
    # When it is validated, Then it is accepted with warnings naming the overridden declaration
    warnings = parse_playbook(body)["warnings"]
    assert any("'wipe'" in w and "operation 'notification'" in w and "configuration_change" in w for w in warnings)
    assert not any("'status'" in w for w in warnings)
    # And a category that is none of the spec's is refused, naming the field
    body["actions"][1]["category"] = "harmless"
    with pytest.raises(InvalidRule) as refused:
        parse_playbook(body)
    assert refused.value.field == "actions[1].category"


def test_the_cost_order_of_operations_is_the_risk_matrixs():
    # Given the action types as the risk matrix weighs them, When they are sorted by weight,
    # Then floors (app.actions.operations) compare operations in the matrix's order
    weight = risk.RISK_FACTORS["action_type"]
    assert tuple(sorted(weight, key=weight.__getitem__)) == operations.COST_ORDER
    assert set(operations.OPERATIONS) == set(weight)

"""What an action does, as the risk matrix types it: its operation and its category (pure logic).

The operation (``system_restart`` … ``notification``) is the matrix's action type; the category
(``diagnostic``, ``remediation``, ``notification``) is what maintenance windows and rollback look at.
Both have a floor set by what the action's integration can do (:func:`floor_of`): what a template
declares may raise them, never lower them below that. Template validation and the risk assessment
(:mod:`app.decisions.risk`) both read them here.
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidRule
from . import integration_of

#: The risk matrix's action types, in the specification's order (error messages list them so).
OPERATIONS = ("system_restart", "service_restart", "configuration_change", "diagnostic", "notification")
#: The same, mildest first: the risk matrix weighs them in this order (a test holds the two together).
COST_ORDER = ("notification", "diagnostic", "service_restart", "configuration_change", "system_restart")

#: The spec's action categories (an action's ``category``, or its ``type`` when that is one of them).
CATEGORIES = ("diagnostic", "remediation", "notification")
#: The least an integration can score: a notify block only tells people, an LLM question only reads;
#: http and shell can do anything, so they score as a diagnostic only when the operator says they are one.
INTEGRATION_FLOOR = {"notify": "notification", "llm": "diagnostic", "http": "diagnostic", "shell": "diagnostic"}
#: The least each category can score. A remediation is at least a service restart, the mildest
#: change in the matrix, so a declared ``diagnostic`` or ``notification`` cannot make it look harmless.
CATEGORY_FLOOR = {"notification": "notification", "diagnostic": "diagnostic", "remediation": "service_restart"}
#: What a remediation that declares no ``operation`` counts as: the costliest type short of a
#: restart, since we cannot know better.
UNDECLARED_REMEDIATION = "configuration_change"


def _costlier(a: str, b: str) -> str:
    return a if COST_ORDER.index(a) >= COST_ORDER.index(b) else b


def _integration(action: dict[str, Any]) -> str | None:
    """The integration that runs ``action``, or None (none, or ambiguous: such an action fails if run)."""
    try:
        return integration_of(action)
    except InvalidRule:
        return None


def declared_category(action: dict[str, Any]) -> str | None:
    """The category the operator wrote: ``category``, else a spec-style ``type``; None when neither."""
    declared = action.get("category")
    if declared in CATEGORIES:
        return str(declared)
    kind = action.get("type")
    return str(kind) if kind in CATEGORIES else None


def floor_of(action: dict[str, Any]) -> str:
    """The least matrix type ``action`` may score, whatever its ``operation`` says.

    Shell and http actions are never notifications: they are diagnostics when marked so
    (``category`` or spec ``type`` ``diagnostic``), else remediations. A notify block is a
    notification and an LLM question a diagnostic, unless the category says more.
    """
    integration = _integration(action)
    category = declared_category(action)
    if integration in ("http", "shell") and category != "diagnostic":
        category = "remediation"
    elif category is None:
        category = {"notify": "notification", "llm": "diagnostic"}.get(integration or "", "remediation")
    floor = CATEGORY_FLOOR[category]
    return _costlier(floor, INTEGRATION_FLOOR[integration]) if integration else floor


def operation_of(action: dict[str, Any]) -> str:
    """The matrix's action type of a template action.

    Undeclared, an action scores at :func:`floor_of`, except a remediation, which counts as
    :data:`UNDECLARED_REMEDIATION`. A declared ``operation`` at or above the floor counts; one
    below it is ignored, as if undeclared (a shell or http action declaring ``notification``
    still scores as a change), so a declaration can raise the risk, never lower it below the floor.
    """
    floor = floor_of(action)
    undeclared = UNDECLARED_REMEDIATION if floor == CATEGORY_FLOOR["remediation"] else floor
    declared = action.get("operation")
    if declared in OPERATIONS and _costlier(str(declared), floor) == declared:
        return str(declared)
    return undeclared


def below_floor(action: dict[str, Any]) -> str | None:
    """Why the action's declared ``operation`` or ``category`` is not what it scores as, or None.

    For the warnings of a template's write answer: what the operator wrote is ignored.
    """
    declared, operation = action.get("operation"), operation_of(action)
    if declared in OPERATIONS and declared != operation:
        return f"operation {declared!r} is below what its integration can do; it is scored as {operation!r}"
    category = action.get("category")
    if category in CATEGORIES and category != category_of(action):
        return f"category {category!r} does not fit its integration; it counts as {category_of(action)!r}"
    return None


def category_of(action: dict[str, Any]) -> str:
    """``diagnostic``, ``remediation`` or ``notification``: what maintenance windows and rollback look at."""
    operation = operation_of(action)
    if operation == "notification":
        return "notification"
    if operation == "diagnostic":
        return "diagnostic"
    return "remediation"

"""Risk of an action, per the service specification's matrix (pure logic).

The score adds the factors of the matrix (system criticality, action type, business hours,
maintenance window) and is capped at 1.0. An action needs a human approval when its score is
above :data:`APPROVAL_THRESHOLD`, when its template marks it ``approval_required``, or when it
declares a risk level of ``medium`` or more — the declared level is a floor, never lowered by the
matrix.

An action's type in the matrix has a floor set by what its integration can do (:func:`floor_of`):
what a template declares may raise the risk, never lower it below that.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from ..actions import integration_of
from ..errors import InvalidRule

#: The specification's risk matrix.
RISK_FACTORS: dict[str, dict[str, float]] = {
    "system_criticality": {"critical": 0.4, "high": 0.3, "medium": 0.2, "low": 0.1},
    "action_type": {
        "system_restart": 0.5,
        "service_restart": 0.3,
        "configuration_change": 0.4,
        "diagnostic": 0.1,
        "notification": 0.0,
    },
    "business_hours": {"business_hours": 0.2, "after_hours": 0.0},
    "maintenance_window": {"in_maintenance": 0.0, "outside_maintenance": 0.1},
}
#: "Approval required for medium+ risk" (the spec's ``requires_approval``).
APPROVAL_THRESHOLD = 0.3
RISK_LEVELS = ("low", "medium", "high", "critical")
#: Assets the topology does not rate are treated as this critical: unknown is not safe.
DEFAULT_CRITICALITY = "medium"
OPERATIONS = tuple(RISK_FACTORS["action_type"])


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
    weights = RISK_FACTORS["action_type"]
    return a if weights[a] >= weights[b] else b


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
    if declared in RISK_FACTORS["action_type"] and _costlier(str(declared), floor) == declared:
        return str(declared)
    return undeclared


def below_floor(action: dict[str, Any]) -> str | None:
    """Why the action's declared ``operation`` or ``category`` is not what it scores as, or None.

    For the warnings of a template's write answer: what the operator wrote is ignored.
    """
    declared, operation = action.get("operation"), operation_of(action)
    if declared in RISK_FACTORS["action_type"] and declared != operation:
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


def level_of(score: float) -> str:
    if score <= APPROVAL_THRESHOLD:
        return "low"
    if score <= 0.5:
        return "medium"
    if score <= 0.7:
        return "high"
    return "critical"


def in_business_hours(at: datetime, *, hours: str, timezone: str) -> bool:
    """Whether ``at`` falls on a weekday within ``hours`` (``HH:MM-HH:MM``) in ``timezone``."""
    local = at.astimezone(ZoneInfo(timezone))
    start, end = (time.fromisoformat(part) for part in hours.split("-"))
    return local.weekday() < 5 and start <= local.time() < end


@dataclass(frozen=True, kw_only=True)
class Context:
    """What the matrix looks at, besides the action itself."""

    system_criticality: str = DEFAULT_CRITICALITY
    business_hours: bool = False
    maintenance_window: bool = False

    def factors(self) -> dict[str, str]:
        return {
            "system_criticality": self.system_criticality,
            "business_hours": "business_hours" if self.business_hours else "after_hours",
            "maintenance_window": "in_maintenance" if self.maintenance_window else "outside_maintenance",
        }


@dataclass(frozen=True, kw_only=True)
class Assessment:
    action_id: str
    operation: str
    category: str
    score: float
    level: str
    approval_required: bool
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {
            "action_id": self.action_id,
            "operation": self.operation,
            "category": self.category,
            "risk_score": round(self.score, 2),
            "risk_level": self.level,
            "approval_required": self.approval_required,
            "reason": self.reason,
        }


def score(factors: dict[str, str]) -> float:
    """The spec's ``calculate_risk_score``: the sum of the matrix's factors, at most 1.0."""
    total = sum(RISK_FACTORS[name].get(value, 0.0) for name, value in factors.items() if name in RISK_FACTORS)
    return min(round(total, 4), 1.0)


def assess(action: dict[str, Any], context: Context) -> Assessment:
    """The risk of one template action in ``context``."""
    operation = operation_of(action)
    risk = score({**context.factors(), "action_type": operation})
    computed = level_of(risk)
    declared = str(action["risk_level"]) if action.get("risk_level") in RISK_LEVELS else "low"
    level = max(computed, declared, key=RISK_LEVELS.index)
    reasons = []
    if risk > APPROVAL_THRESHOLD:
        reasons.append(f"risk score {risk:.2f} is above {APPROVAL_THRESHOLD}")
    if action.get("approval_required") is True:
        reasons.append("the template marks it approval_required")
    if RISK_LEVELS.index(declared) >= 1:
        reasons.append(f"the template declares it {declared} risk")
    return Assessment(
        action_id=str(action.get("id")),
        operation=operation,
        category=category_of(action),
        score=risk,
        level=level,
        approval_required=bool(reasons),
        reason="; ".join(reasons) or f"risk score {risk:.2f} is within policy",
    )

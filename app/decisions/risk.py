"""Risk of an action, per the service specification's matrix (pure logic).

The score adds the factors of the matrix (system criticality, action type, business hours,
maintenance window) and is capped at 1.0. An action needs a human approval when its score is
above :data:`APPROVAL_THRESHOLD`, when its template marks it ``approval_required``, or when it
declares a risk level of ``medium`` or more — the declared level is a floor, never lowered by the
matrix.

An action's type in the matrix has a floor set by what its integration can do (:func:`floor_of`):
what a template declares may raise the risk, never lower it below that. What an action is (its
operation and category) is :mod:`app.actions.operations`'s; its names are re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

# Re-exported: the decider, rollback and the tests read an action's operation and category here.
from ..actions.operations import CATEGORIES as CATEGORIES
from ..actions.operations import OPERATIONS as OPERATIONS
from ..actions.operations import below_floor as below_floor
from ..actions.operations import category_of, operation_of
from ..actions.operations import declared_category as declared_category
from ..actions.operations import floor_of as floor_of

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

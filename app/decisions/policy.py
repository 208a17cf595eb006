"""The decider's policy: from a situation to a decision (pure logic, no I/O).

The seed's pipeline: the decision's confidence above 0.8 and every action's risk within policy
→ execute alone; otherwise escalate to humans (an approval request). ``AUTONOMY_MODE`` caps it:
``off`` decides and records only, ``suggest`` needs an approval for everything, ``auto`` lets
low-risk actions run alone. A maintenance window covering the target blocks remediation; a
template an operator marked dangerous needs an approval on every run.

When an LLM analysis is given (its answer can be steered by the event's text) it may only make the
decision more careful: it may lower the confidence, never raise it above the policy's; it may pick
among the template's actions (with their dependencies), never add one; it may turn the decision
into ``investigate``, ``escalate`` or ``ignore``, but into ``remediate`` only where the policy
remediates. The risk and approval rules apply to its choice unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from ..rules.playbooks import execution_order
from . import risk

DECISIONS = ("investigate", "remediate", "escalate", "ignore")
#: "Confidence > 0.8 and risk within policy → execute".
CONFIDENCE_TO_ACT = 0.8
#: Confidence of a template's response type before any outcome is known.
PRIOR = {"investigation": 0.9, "remediation": 0.75, "escalation": 0.85}
DECISION_OF = {"investigation": "investigate", "remediation": "remediate", "escalation": "escalate"}
#: Weight of the prior, in runs, against observed outcomes.
PRIOR_WEIGHT = 4
APPROVER_ROLES = ("operator", "admin")
SEVERITY_RANK = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
IMPACTS = ("none", "low", "medium", "high", "critical")


@dataclass(frozen=True, kw_only=True)
class History:
    """Outcomes of earlier runs (``autonomous.learning_stats``)."""

    successes: int = 0
    failures: int = 0
    confidence_adjustment: float = 0.0
    requires_approval: bool = False


@dataclass(frozen=True, kw_only=True)
class Situation:
    event: dict[str, Any]
    incident: dict[str, Any] | None = None
    template: dict[str, Any] | None = None
    history: History = field(default_factory=History)
    context: risk.Context = field(default_factory=risk.Context)
    maintenance: str | None = None
    mode: str = "suggest"
    #: The automation level of the agent whose proposal this is (None: a playbook): it caps ``mode``.
    automation_level: str | None = None
    #: An LLM's answer: decision, confidence, reasoning, summary, recommended_action_ids.
    llm: Any = None


@dataclass(frozen=True, kw_only=True)
class Decision:
    decision_type: str
    confidence: float
    reasoning: str
    decided_by: str
    actions: list[dict[str, Any]]
    assessments: list[risk.Assessment]
    approval_required: bool
    approval_reason: str
    business_impact: str
    #: Create an execution (false: record only).
    execute: bool
    #: Every action waits for an approval (suggest mode, low confidence, a template marked dangerous).
    gate_all: bool = False
    summary: str | None = None

    @property
    def gated(self) -> set[str]:
        """Ids of the actions that may not run before a human approved."""
        return {a.action_id for a in self.assessments if self.gate_all or a.approval_required}

    @property
    def risk_score(self) -> float:
        return max((a.score for a in self.assessments), default=0.0)

    @property
    def risk_level(self) -> str:
        return max((a.level for a in self.assessments), key=risk.RISK_LEVELS.index, default="low")


#: An agent's automation level: ``manual`` needs an approval for everything, ``semi-auto`` runs only
#: low-risk actions alone, ``full-auto`` leaves it to the policy (AUTONOMY_MODE still caps all three).
AUTOMATION_LEVELS = ("manual", "semi-auto", "full-auto")


def automation_cap(level: str | None, assessments: list[risk.Assessment]) -> list[risk.Assessment]:
    """``assessments`` with the gates an agent's ``semi-auto`` level adds: an action above low risk waits.

    ``manual`` gates every action (the decision's general gate, see :func:`decide`); ``full-auto`` and
    a playbook (None) add nothing. A gate is only ever added, never removed: the stricter wins.
    """
    if level != "semi-auto":
        return assessments
    return [
        a if a.level == "low" or a.approval_required
        else replace(a, approval_required=True, reason=f"{a.reason}; semi-auto runs only low risk alone")
        for a in assessments
    ]  # fmt: skip


def confidence_from(prior: float, history: History) -> float:
    """The prior, blended with the observed success rate, plus feedback's adjustment, in [0, 1]."""
    runs = history.successes + history.failures
    blended = (prior * PRIOR_WEIGHT + history.successes) / (PRIOR_WEIGHT + runs)
    return round(min(1.0, max(0.0, blended + history.confidence_adjustment)), 2)


def business_impact(event: dict[str, Any], incident: dict[str, Any] | None, criticality: str) -> str:
    severity = (incident or {}).get("severity") or event.get("severity") or "info"
    rank = max(
        SEVERITY_RANK.get(str(severity), 0), risk.RISK_LEVELS.index(criticality) + 1 if severity != "info" else 0
    )
    return IMPACTS[min(rank, 4)]


def with_dependencies(actions: list[dict[str, Any]], chosen: set[str]) -> list[dict[str, Any]]:
    by_id = {str(a["id"]): a for a in actions}
    todo, keep = list(chosen & set(by_id)), set()
    while todo:
        action_id = todo.pop()
        if action_id not in keep:
            keep.add(action_id)
            todo.extend(str(d) for d in by_id[action_id].get("depends_on") or [])
    return [a for a in actions if str(a["id"]) in keep]


def _without_blocked(actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop remediation steps and every step that depends on a dropped one."""
    dropped: set[str] = set()
    kept = []
    for action_id in execution_order(actions):
        action = next(a for a in actions if str(a["id"]) == action_id)
        if risk.category_of(action) == "remediation" or dropped & {str(d) for d in action.get("depends_on") or []}:
            dropped.add(action_id)
        else:
            kept.append(action)
    return kept


def _bounded_by_policy(llm: Any, decision_type: str, confidence: float, reasons: list[str]) -> tuple[str, float]:
    """The LLM's decision and confidence, held within the policy's (``reasons`` gets why)."""
    reasons.append(f"LLM analysis: {llm.reasoning}")
    answered = float(llm.confidence) if isinstance(llm.confidence, int | float) else 0.0
    if not 0.0 <= answered <= 1.0:  # NaN included: it compares false
        answered = 0.0
    if answered > confidence:
        reasons.append(f"The LLM's confidence {answered:.2f} is capped at the policy's {confidence:.2f}.")
    chosen = llm.decision if llm.decision in DECISIONS else decision_type
    if chosen == "remediate" and decision_type != "remediate":
        reasons.append(f"The LLM proposed to remediate; the policy does not, so the decision stays {decision_type}.")
        chosen = decision_type
    return chosen, round(min(confidence, answered), 2)


def _no_template(s: Situation) -> Decision:
    """Nothing to run: the decision only records what humans should do, with the LLM's analysis if asked."""
    severity = str((s.incident or {}).get("severity") or s.event.get("severity") or "info")
    urgent = SEVERITY_RANK.get(severity, 0) >= SEVERITY_RANK["high"]
    decision_type, confidence = "escalate" if urgent else "investigate", 0.6
    reasons = [f"No response template is linked to the rule; a {severity} event is "
               + ("escalated to humans." if urgent else "left for investigation.")]  # fmt: skip
    if s.llm is not None:
        decision_type, confidence = _bounded_by_policy(s.llm, decision_type, confidence, reasons)
    return Decision(
        decision_type=decision_type,
        confidence=confidence,
        reasoning=" ".join(reasons),
        decided_by="policy" if s.llm is None else "llm",
        summary=None if s.llm is None else s.llm.summary,
        actions=[],
        assessments=[],
        approval_required=False,
        approval_reason="Nothing to execute",
        business_impact=business_impact(s.event, s.incident, s.context.system_criticality),
        execute=False,
    )


def decide(s: Situation) -> Decision:  # noqa: C901 - one policy, read top to bottom
    """Decide what to do about a firing; see the module docstring for the policy."""
    impact = business_impact(s.event, s.incident, s.context.system_criticality)
    if s.incident is not None and s.incident.get("status") == "closed":
        return Decision(
            decision_type="ignore", confidence=0.95, decided_by="policy", actions=[], assessments=[],
            reasoning="The incident was already resolved when the firing was decided."
            + (f" LLM analysis: {s.llm.reasoning}" if s.llm is not None else ""),
            summary=s.llm.summary if s.llm is not None else None,
            approval_required=False, approval_reason="Nothing to execute", business_impact=impact, execute=False,
        )  # fmt: skip
    if s.template is None:
        return _no_template(s)
    response_type = str(s.template.get("response_type") or "investigation")
    decision_type = DECISION_OF.get(response_type, "investigate")
    confidence = confidence_from(PRIOR.get(response_type, 0.75), s.history)
    actions = list(s.template.get("actions") or [])
    runs = s.history.successes + s.history.failures
    reasons = [
        f"Template {s.template.get('name')!r} ({response_type}); "
        + (f"{s.history.successes} of {runs} earlier runs succeeded." if runs else "no earlier runs.")
    ]
    decided_by, summary = "policy", None
    if s.llm is not None:
        decided_by, summary = "llm", s.llm.summary
        decision_type, confidence = _bounded_by_policy(s.llm, decision_type, confidence, reasons)
        if s.llm.recommended_action_ids:
            actions = with_dependencies(actions, {str(i) for i in s.llm.recommended_action_ids})
    if decision_type == "ignore":
        actions = []
    # The template's actions, not the LLM's selection, say whether the window blocks a remediation:
    # an LLM picking only the diagnostics must not keep "remediate" where the policy escalates.
    blocks = bool(s.maintenance) and any(risk.category_of(a) == "remediation" for a in s.template.get("actions") or [])
    if blocks and (decision_type == "remediate" or any(risk.category_of(a) == "remediation" for a in actions)):
        actions = _without_blocked(actions)
        reasons.append(f"Maintenance window {s.maintenance!r} blocks remediation on this target.")
        if decision_type == "remediate":
            decision_type = "escalate"
    if decision_type == "escalate" and s.llm is not None:
        # Escalating means telling humans, not acting: only notifications and diagnostics run.
        actions = [a for a in actions if risk.category_of(a) != "remediation"]
    assessments = automation_cap(s.automation_level, [risk.assess(a, s.context) for a in actions])
    gates = [f"{a.action_id}: {a.reason}" for a in assessments if a.approval_required]
    general = []
    if s.mode == "suggest":
        general.append("AUTONOMY_MODE is suggest: every execution needs an approval")
    if s.automation_level == "manual":
        general.append("the agent's automation level is manual: every action needs an approval")
    if confidence <= CONFIDENCE_TO_ACT:
        general.append(f"confidence {confidence:.2f} is not above {CONFIDENCE_TO_ACT}")
    if s.history.requires_approval or s.template.get("approval_required") is True:
        general.append("the template requires approval (operator feedback or its definition)")
    gates = general + gates
    reasons.append(f"Highest action risk {max((a.score for a in assessments), default=0.0):.2f}.")
    execute = s.mode != "off" and bool(actions)
    if s.mode == "off":
        reasons.append("AUTONOMY_MODE is off: the decision is recorded only.")
    return Decision(
        decision_type=decision_type,
        confidence=confidence,
        reasoning=" ".join(reasons),
        decided_by=decided_by,
        actions=actions,
        assessments=assessments,
        approval_required=bool(gates) and bool(actions),
        approval_reason="; ".join(gates) if gates else "Low risk actions within approved parameters",
        business_impact=impact,
        execute=execute,
        gate_all=bool(general),
        summary=summary,
    )

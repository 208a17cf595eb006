"""Learning from outcomes: per-rule and per-template statistics the decider turns into confidence.

Every finished execution counts as a success or a failure of its rule and template; operators'
feedback moves the confidence adjustment; ``dangerous`` feedback makes every later run of the
template wait for an approval until an admin clears it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import audit
from ..db import is_postgres
from ..errors import InvalidInput
from ..models import Execution, Feedback, LearningData, LearningStat, ResponseTemplate, RuleExecution
from .policy import History

if TYPE_CHECKING:
    from ..executions.prepared import Writes

FEEDBACK_TYPES = ("effectiveness", "accuracy", "timeliness", "safety")
FEEDBACK_VALUES = ("helpful", "not_helpful", "incorrect", "dangerous")
#: Confidence moved by one piece of feedback, besides its rating ((rating - 3) × 0.02).
FEEDBACK_WEIGHT = {"helpful": 0.02, "not_helpful": -0.03, "incorrect": -0.05, "dangerous": -0.1}
ADJUSTMENT_RANGE = (-0.5, 0.2)


def _scopes(rule_id: int | None, template_id: int | None) -> list[tuple[str, int]]:
    return [(s, i) for s, i in (("rule", rule_id), ("template", template_id)) if i is not None]


def _rule_of(row: Execution) -> int | None:
    if row.rule_execution_id is None:
        return None
    if hasattr(row, "ctx_firing"):  # read with the row (app.executions.prepared.locked_with_context)
        return row.ctx_firing.trigger_rule_id if row.ctx_firing is not None else None
    firing = RuleExecution.get_or_none(RuleExecution.id == row.rule_execution_id)
    return firing.trigger_rule_id if firing else None


def _bump(scope: str, scope_id: int, writes: Writes | None = None, **increments: int) -> None:
    query = LearningStat.insert(scope=scope, scope_id=scope_id, **increments).on_conflict(
        conflict_target=[LearningStat.scope, LearningStat.scope_id],
        update={getattr(LearningStat, k): getattr(LearningStat, k) + v for k, v in increments.items()},
    )
    if writes is None:
        query.execute()
    else:
        writes.add(query)


def history_for(rule_id: int | None, template_id: int | None) -> History:
    """What the decider knows of earlier runs: the template's outcomes, both scopes' adjustments."""
    stats = {
        (s.scope, s.scope_id): s
        for s in LearningStat.select().where(
            ((LearningStat.scope == "rule") & (LearningStat.scope_id == (rule_id or -1)))
            | ((LearningStat.scope == "template") & (LearningStat.scope_id == (template_id or -1)))
        )
    }
    return history_of(stats.get(("rule", rule_id or -1)), stats.get(("template", template_id or -1)))


def history_of(rule: LearningStat | None, template: LearningStat | None) -> History:
    """The :class:`History` of a rule's and a template's statistics (either None when it has none)."""
    outcomes = template or rule
    return History(
        successes=outcomes.successes if outcomes else 0,
        failures=outcomes.failures if outcomes else 0,
        confidence_adjustment=sum(s.confidence_adjustment for s in (template, rule) if s),
        requires_approval=bool(template and template.requires_approval),
    )


def record_outcome(row: Execution, *, success: bool, writes: Writes | None = None) -> None:
    """Count a finished execution for its rule and template (dry runs teach nothing).

    ``writes``: the runner's writes of the transaction, sent with them (nothing here is read back).
    """
    if row.dry_run:
        return
    for scope, scope_id in _scopes(_rule_of(row), row.response_template_id):
        _bump(scope, scope_id, writes, **({"successes": 1} if success else {"failures": 1}))
    values = {
        "decision_id": row.decision_id,
        "action_taken": {"execution_id": str(row.id), "template_id": row.response_template_id,
                         "actions": [a["id"] for a in row.definition["actions"]]},
        "outcome_success": success,
        "outcome_metrics": {"status": row.status, "risk_score": row.risk_score},
    }  # fmt: skip
    if writes is None:
        LearningData.create(**values)
    else:
        writes.insert(LearningData, **values)


def parse_feedback(body: Any) -> dict[str, Any]:
    """Validate the spec's feedback body.

    Raises:
      InvalidInput: naming the field.
    """
    if not isinstance(body, dict):
        raise InvalidInput("the feedback is a JSON object", field="body")
    if not body.get("execution_id") and body.get("decision_id") is None:
        raise InvalidInput("execution_id or decision_id is required", field="execution_id")
    if body.get("feedback_type", "effectiveness") not in FEEDBACK_TYPES:
        raise InvalidInput(f"feedback_type is one of {', '.join(FEEDBACK_TYPES)}", field="feedback_type")
    rating = body.get("rating")
    if rating is not None and (not isinstance(rating, int) or isinstance(rating, bool) or not 1 <= rating <= 5):
        raise InvalidInput("rating is an integer from 1 to 5", field="rating")
    if body.get("feedback") is not None and body["feedback"] not in FEEDBACK_VALUES:
        raise InvalidInput(f"feedback is one of {', '.join(FEEDBACK_VALUES)}", field="feedback")
    if "would_approve_again" in body and not isinstance(body["would_approve_again"], bool | None):
        raise InvalidInput("would_approve_again is true or false", field="would_approve_again")
    for key in ("comments", "suggestions"):
        if body.get(key) is not None and not isinstance(body[key], str):
            raise InvalidInput(f"{key} is a string", field=key)
    return body


def _adjust(scope: str, scope_id: int, delta: float, *, dangerous: bool) -> float:
    """Move a scope's adjustment by ``delta`` within :data:`ADJUSTMENT_RANGE`; return the change applied."""
    LearningStat.insert(scope=scope, scope_id=scope_id).on_conflict_ignore().execute()
    query = LearningStat.select().where(LearningStat.scope == scope, LearningStat.scope_id == scope_id)
    stat = (query.for_update() if is_postgres() else query).get()
    low, high = ADJUSTMENT_RANGE
    new = round(min(high, max(low, stat.confidence_adjustment + delta)), 4)
    applied = round(new - stat.confidence_adjustment, 4)
    LearningStat.update(
        confidence_adjustment=new,
        feedback_count=LearningStat.feedback_count + 1,
        requires_approval=LearningStat.requires_approval | dangerous,
    ).where(LearningStat.scope == scope, LearningStat.scope_id == scope_id).execute()
    return applied


def record_feedback(body: dict[str, Any], *, actor: str) -> dict[str, Any]:
    """Store feedback and apply it; return the spec's response with the learning impact applied.

    Raises:
      InvalidInput: the execution or decision does not exist.
    """
    execution = None
    if body.get("execution_id"):
        execution = Execution.get_or_none(Execution.id == str(body["execution_id"]))
        if execution is None:
            raise InvalidInput(f"no execution {body['execution_id']}", field="execution_id")
    rating, verdict = body.get("rating"), body.get("feedback")
    delta = round((rating - 3) * 0.02 if rating else 0.0, 4) + FEEDBACK_WEIGHT.get(verdict or "", 0.0)
    dangerous = verdict == "dangerous"
    rule_id = _rule_of(execution) if execution else None
    template_id = execution.response_template_id if execution else None
    applied = {scope: _adjust(scope, i, delta, dangerous=dangerous and scope == "template")
               for scope, i in _scopes(rule_id, template_id)}  # fmt: skip
    template = ResponseTemplate.get_or_none(ResponseTemplate.id == template_id) if template_id else None
    impact = {
        "confidence_adjustment": applied.get("template", applied.get("rule", 0.0)),
        "template_updates": [template.template_name] if template and (dangerous or applied.get("template")) else [],
        "pattern_updates": [f"rule:{rule_id}"] if rule_id and applied.get("rule") else [],
        "requires_approval": dangerous and template_id is not None,
    }
    row = Feedback.create(
        execution_id=execution.id if execution else None,
        decision_id=body.get("decision_id") or (execution.decision_id if execution else None),
        feedback_type=body.get("feedback_type", "effectiveness"),
        rating=rating, feedback=verdict, comments=body.get("comments"), suggestions=body.get("suggestions"),
        would_approve_again=body.get("would_approve_again"), submitted_by=actor, learning_impact=impact,
    )  # fmt: skip
    audit.record(audit.Action.FEEDBACK_RECORDED, actor=actor, subject=f"feedback:{row.id}",
                 details={"execution_id": str(execution.id) if execution else None, **impact})  # fmt: skip
    return {"feedback_id": row.id, "status": "recorded", "learning_impact": impact}


def clear_approval_requirement(template_id: int, *, actor: str) -> bool:
    """An admin clears ``dangerous``: the template's runs follow the normal policy again."""
    changed = (
        LearningStat.update(requires_approval=False)
        .where(LearningStat.scope == "template", LearningStat.scope_id == template_id)
        .execute()
    )
    audit.record(audit.Action.RESPONSE_TEMPLATE_APPROVAL_REQUIREMENT_CLEARED, actor=actor,
                 subject=f"response_template:{template_id}")  # fmt: skip
    return bool(changed)

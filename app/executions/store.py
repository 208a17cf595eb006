"""Executions: created from a decision, shown in the spec's shape, listed, cancelled.

An execution keeps a snapshot of the template's selected actions (with the decider's risk
assessment and whether each waits for an approval), so a later template version never changes
what an execution runs.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from .. import audit
from ..actions import redact_template
from ..decisions import risk
from ..errors import InvalidRule
from ..ids import uuid7
from ..models import Approval, AuditLog, Execution, ExecutionLog, ExecutionStep
from ..models.ops import person_of
from ..present import iso
from ..rules.playbooks import execution_order

#: Statuses after which nothing more runs (a rollback may still be asked for some).
TERMINAL = frozenset({"completed", "failed", "cancelled", "rolled_back", "rollback_failed"})
STATUSES = ("queued", "awaiting_approval", "running", "rolling_back", *sorted(TERMINAL))


def _now() -> datetime:
    return datetime.now(UTC)


def snapshot(
    template: dict[str, Any], actions: list[dict[str, Any]], assessments: list[risk.Assessment], gated: set[str]
) -> dict[str, Any]:
    """What an execution runs: the selected actions in order, each with its risk and gate."""
    by_id = {a.action_id: a for a in assessments}
    selected = []
    for action in actions:
        action_id = str(action["id"])
        assessment = by_id[action_id]
        selected.append({
            **action,
            "depends_on": [d for d in action.get("depends_on") or [] if any(str(a["id"]) == d for a in actions)],
            "assessment": assessment.as_json(),
            "gated": action_id in gated,
        })  # fmt: skip
    return {
        "name": template.get("name"),
        "response_type": template.get("response_type"),
        "actions": selected,
        "execution_order": execution_order(selected) if selected else [],
        "rollback_actions": template.get("rollback_actions") or [],
        "variables": template.get("variables") or [],
    }


def create_execution(
    *,
    definition: dict[str, Any],
    requested_by: str,
    decision_id: int | None,
    rule_execution_id: int | None = None,
    event_id: Any = None,
    incident_id: Any = None,
    template_id: int | None = None,
    template_version: int | None = None,
    variables: dict[str, Any] | None = None,
    dry_run: bool = False,
    rollback_on_failure: bool = True,
    max_execution_time_minutes: int = 30,
    writes: Any = None,
) -> Execution:
    """Store a queued execution and its pending steps (call inside a transaction).

    ``writes``: a :class:`app.executions.prepared.Writes` of the caller's transaction: the rows go
    with its flush, in one round trip (the caller flushes before it commits).
    """

    scores = [a["assessment"]["risk_score"] for a in definition["actions"]]
    levels = [a["assessment"]["risk_level"] for a in definition["actions"]]
    values = {
        "id": uuid7(),
        "decision_id": decision_id,
        "rule_execution_id": rule_execution_id,
        "event_id": event_id,
        "incident_id": incident_id,
        "response_template_id": template_id,
        "template_version": template_version,
        "definition": definition,
        "variables": variables or {},
        "status": "queued",
        "dry_run": dry_run,
        "rollback_on_failure": rollback_on_failure,
        "max_execution_time_minutes": max_execution_time_minutes,
        "requested_by": requested_by,
        "risk_score": max(scores, default=0.0),
        "risk_level": max(levels, key=risk.RISK_LEVELS.index, default="low"),
    }
    if writes is None:
        row = Execution.create(**values)
    else:
        writes.insert(Execution, **values)
        row = Execution(**values)
    by_id = {str(a["id"]): a for a in definition["actions"]}
    for position, action_id in enumerate(definition["execution_order"], start=1):
        step = {"execution_id": row.id, "phase": "action", "action_id": action_id,
                "name": by_id[action_id].get("name") or action_id, "position": position}  # fmt: skip
        if writes is None:
            ExecutionStep.create(**step)
        else:
            writes.insert(ExecutionStep, **step)
    message = f"Execution created by {requested_by} ({len(by_id)} actions{', dry run' if dry_run else ''})."
    details = {"decision_id": decision_id, "actions": list(by_id), "dry_run": dry_run,
               "gated": [a for a, v in by_id.items() if v.get("gated")]}  # fmt: skip
    if writes is None:
        log(row.id, message)
        audit.record(audit.Action.EXECUTION_CREATED, actor=requested_by, subject=f"execution:{row.id}", details=details)
    else:
        writes.insert(ExecutionLog, execution_id=row.id, message=message, level="info", action_id=None)
        writes.insert(AuditLog, action=audit.Action.EXECUTION_CREATED.value, actor=requested_by,
                      person=person_of(requested_by), subject=f"execution:{row.id}", details=details)  # fmt: skip
    return row


def rendered_request(execution_id: Any, action: dict[str, Any]) -> dict[str, Any]:
    """What an action would send, rendered now against its execution with secrets masked (inside a transaction).

    For approvers: the approval request shows it, so a human approves a request, not an action id.

    Returns:
      The redacted plan (``method``, ``url``, ``headers``, ``json`` for http …), or ``{"error": …}``
      when it cannot be rendered yet (e.g. it uses the output of a step that has not run).
    """
    from .. import actions
    from ..decisions.context import render_context

    try:
        return actions.redact(actions.plan(action, render_context(execution_id)))
    except InvalidRule as e:
        return {"error": f"cannot be rendered yet: {e.message}"}


def requests_text(requested_actions: list[dict[str, Any]]) -> str:
    """The rendered requests of an approval as plain text (for the approvers' email), secrets masked."""
    lines = []
    for entry in requested_actions:
        request = entry.get("request") or {}
        lines.append(f"- {entry.get('action_id')}: " + _request_line(request))
        lines += [f"    {name}: {value}" for name, value in (request.get("headers") or {}).items()]
        for key in ("json", "args", "to", "subject", "message", "prompt"):
            if request.get(key) not in (None, "", []):
                lines.append(f"    {key}: {json.dumps(request[key], ensure_ascii=False)[:2000]}")
    return "\n".join(lines)


def _request_line(request: dict[str, Any]) -> str:
    integration = request.get("integration")
    if integration == "http":
        return f"{request.get('method')} {request.get('url')}"
    if integration == "shell":
        return f"run {request.get('program')}"
    if integration == "notify":
        return f"notify {request.get('channel') or ', '.join(request.get('channels') or [])} {request.get('url') or ''}".rstrip()
    if integration == "llm":
        return "ask the LLM"
    return str(request.get("error") or "no request")


def log(execution_id: uuid.UUID | str, message: str, *, level: str = "info", action_id: str | None = None) -> None:
    from .prepared import insert

    insert(ExecutionLog, execution_id=execution_id, message=message, level=level, action_id=action_id)


def cancel_execution(row: Execution, reason: str, now: datetime) -> None:
    """Mark ``row`` (locked by the caller) cancelled with its pending steps, and log ``reason``."""
    row.status, row.completed_at, row.error_message, row.heartbeat_at = "cancelled", now, reason, None
    row.save()
    ExecutionStep.update(status="cancelled", completed_at=now).where(
        ExecutionStep.execution_id == row.id, ExecutionStep.status == "pending"
    ).execute()
    log(row.id, f"Execution cancelled: {reason}")


def _step_json(step: ExecutionStep) -> dict[str, Any]:
    duration = None
    if step.started_at and step.completed_at:
        duration = round((step.completed_at - step.started_at).total_seconds(), 3)
    return {
        "action_id": step.action_id,
        "name": step.name,
        "status": step.status,
        "started_at": iso(step.started_at),
        "completed_at": iso(step.completed_at),
        "duration_seconds": duration,
        "attempts": step.attempts,
        "planned": redact_template(step.rendered),  # a rollback step keeps its template action
        "result": step.result,
        "error_message": step.error_message,
    }


def approval_json(row: Approval) -> dict[str, Any]:
    return {
        "approval_id": row.id,
        "status": row.status,
        "requested_by": row.requested_by,
        "approvers": row.approvers,
        "reason": row.reason,
        "risk_score": row.risk_score,
        "risk_level": row.risk_level,
        "business_impact": row.business_impact,
        "requested_actions": row.requested_actions,
        "timeout_minutes": row.timeout_minutes,
        "expires_at": iso(row.expires_at),
        "decided_by": row.decided_by,
        "decided_at": iso(row.decided_at),
        "comment": row.comment,
    }


def execution_json(row: Execution, *, detail: bool = True) -> dict[str, Any]:
    """An execution in the shape of the spec's ``GET /api/v1/autonomous/executions/{id}``."""
    steps = list(
        ExecutionStep.select()
        .where(ExecutionStep.execution_id == row.id)
        .order_by(ExecutionStep.phase, ExecutionStep.position, ExecutionStep.id)
    )
    actions = [s for s in steps if s.phase == "action"]
    done = sum(1 for s in actions if s.status in ("completed", "failed", "skipped", "cancelled"))
    running = next((i for i, s in enumerate(actions, 1) if s.status == "running"), None)
    total = len(actions)
    estimate = None
    if row.started_at is not None:
        estimate = iso(row.started_at + timedelta(minutes=row.max_execution_time_minutes))
    body: dict[str, Any] = {
        "execution_id": str(row.id),
        "decision_id": row.decision_id,
        "event_id": str(row.event_id) if row.event_id else None,
        "incident_id": str(row.incident_id) if row.incident_id else None,
        "response_template_id": row.response_template_id,
        "template_version": row.template_version,
        "status": row.status,
        "dry_run": row.dry_run,
        "requested_by": row.requested_by,
        "risk_score": row.risk_score,
        "risk_level": row.risk_level,
        "created_at": iso(row.created_at),
        "started_at": iso(row.started_at),
        "completed_at": iso(row.completed_at),
        "estimated_completion": estimate,
        "error_message": row.error_message,
        "progress": {
            "current_step": running or min(done + 1, total) if total else 0,
            "total_steps": total,
            "percentage_complete": round(100 * done / total) if total else 100,
        },
        "actions": [_step_json(s) for s in actions],
    }
    if not detail:
        return body
    rollback_actions = [s for s in steps if s.phase == "rollback"]
    body["rollback_plan"] = {
        "supported": bool(row.definition.get("rollback_actions"))
        or any(a.get("rollback") or a.get("rollback_supported") for a in row.definition["actions"]),
        "rollback_actions": [_step_json(s) for s in rollback_actions],
    }
    approval = Approval.get_or_none(Approval.execution_id == row.id)
    body["approval"] = approval_json(approval) if approval else None
    body["logs"] = [
        {"timestamp": iso(lg.at), "level": lg.level, "message": lg.message, "action_id": lg.action_id}
        for lg in ExecutionLog.select().where(ExecutionLog.execution_id == row.id).order_by(ExecutionLog.id)
    ]
    return body

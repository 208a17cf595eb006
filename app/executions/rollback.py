"""Rollback: the compensating actions of an execution's completed remediation steps, newest first.

A step's compensation is its inline ``rollback`` action, or a template ``rollback_actions`` entry
that names it (``rolls_back: <id>``, or the spec's ``condition: "<id>.failed"`` / ``"<id>.…"``).
The plan is stored as ``rollback`` steps before anything runs, so a redelivered message runs only
what has not completed; the execution ends ``rolled_back`` or ``rollback_failed`` (escalated).
Before a compensating step acts, the rollback claims the execution's resource leases as the runner
does (:mod:`.leases`): while another execution acts on them it is :data:`WAITING` and asked again.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from functools import partial
from typing import Any

from .. import audit
from ..config import Settings
from ..db import in_transaction
from ..decisions import risk
from ..models import ExecutionStep, Notification
from ..notifications import delivery, pages, routing
from . import leases
from .runner import locked, perform
from .store import log

logger = logging.getLogger(__name__)

#: Statuses from which a rollback may start.
ROLLBACK_FROM = frozenset({"failed", "completed", "cancelled", "rolling_back", "rollback_failed"})
#: What :func:`run_rollback` answers while a resource is leased to another execution: ask again after ``LEASE_RETRY_SECONDS``.
WAITING = "waiting_for_resource"


def _now() -> datetime:
    return datetime.now(UTC)


def _target(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return None
    condition = str(entry.get("condition") or "")
    return entry.get("rolls_back") or (condition.split(".", 1)[0] if condition else None)


def compensations(definition: dict[str, Any], steps: list[ExecutionStep]) -> list[tuple[str, dict[str, Any]]]:
    """``(step id, rollback action)`` for the steps to compensate, newest first."""
    actions = {str(a["id"]): a for a in definition["actions"]}
    listed = definition.get("rollback_actions") or []
    plan: list[tuple[str, dict[str, Any]]] = []
    ordered = sorted(steps, key=lambda s: (s.completed_at or s.started_at or _now(), s.position), reverse=True)
    for step in ordered:
        action = actions.get(step.action_id)
        if action is None:
            continue
        if step.status == "completed" and risk.category_of(action) == "remediation":
            candidates = [action.get("rollback")] + [
                e
                for e in listed
                if _target(e) == step.action_id and not str(e.get("condition", "")).endswith(".failed")
            ]
        elif step.status == "failed":
            candidates = [e for e in listed if str(e.get("condition", "")) == f"{step.action_id}.failed"]
        else:
            continue
        for candidate in candidates:
            if isinstance(candidate, dict):
                rollback_id = str(candidate.get("id") or f"rollback_{step.action_id}")
                plan.append((rollback_id, {"type": "remediation", **candidate, "id": rollback_id}))
    return plan


def _start(execution_id: str, actor: str, settings: Settings, now: datetime) -> str | None:
    """Claim the leases, move the execution to ``rolling_back`` and store the plan; None when it cannot roll back.

    Returns :data:`WAITING` while a resource it targets is leased to another execution.
    """
    row = locked(execution_id)
    if row is None or row.status not in ROLLBACK_FROM or row.dry_run:
        return row.status if row else None
    existing = ExecutionStep.select().where(ExecutionStep.execution_id == row.id, ExecutionStep.phase == "rollback")
    plan: list[tuple[str, dict[str, Any]]] = []
    if row.status != "rolling_back" or not existing.exists():
        steps = list(
            ExecutionStep.select().where(ExecutionStep.execution_id == row.id, ExecutionStep.phase == "action")
        )
        plan = compensations(row.definition, steps)
        if not plan and row.status != "rolling_back":
            log(row.id, "Nothing to roll back: no completed step has a compensating action.")
            return row.status
    # also when resuming: the leases are held while rolling back, unless taken before they were claimed here
    if not leases.claim(row, approved=True, now=now, settings=settings, rollback=True).granted:
        return WAITING
    if plan:
        for position, (rollback_id, action) in enumerate(plan, start=1):
            ExecutionStep.insert(
                execution_id=row.id, phase="rollback", action_id=rollback_id, name=action.get("name") or rollback_id,
                position=position, rendered={"action": action},
            ).on_conflict_ignore().execute()  # fmt: skip
    if row.status != "rolling_back":
        log(row.id, f"Rollback started by {actor}: {len(plan)} compensating actions.")
        audit.record(audit.Action.ROLLBACK_STARTED, actor=actor, subject=f"execution:{row.id}",
                     details={"from_status": row.status, "actions": [p[0] for p in plan]})  # fmt: skip
        row.status = "rolling_back"
        row.save()
    return "rolling_back"


def _next_step(execution_id: str, now: datetime, settings: Settings) -> tuple[ExecutionStep | None, str | None]:
    row = locked(execution_id)
    if row is None or row.status != "rolling_back":
        return None, row.status if row else None
    pending = list(
        ExecutionStep.select()
        .where(ExecutionStep.execution_id == row.id, ExecutionStep.phase == "rollback")
        .order_by(ExecutionStep.position)
    )
    for step in pending:
        if step.status == "completed":
            continue
        action = step.rendered["action"]
        if step.status == "failed" or (step.status == "running" and not action.get("idempotent")):
            error = step.error_message or "the worker running it stopped; its effect is unknown"
            step.status, step.error_message, step.completed_at = "failed", error, step.completed_at or now
            step.save()
            row.status, row.completed_at, row.error_message = (
                "rollback_failed",
                now,
                f"rollback {step.action_id}: {error}",
            )
            row.save()
            log(row.id, f"Rollback failed at {step.action_id}: {error}. Escalated to humans.", level="error")
            audit.record(audit.Action.ROLLBACK_FAILED, actor="rollbacker", subject=f"execution:{row.id}",
                         details={"step": step.action_id, "error": error, "escalated": True})  # fmt: skip
            page = pages.rollback_failed(execution_id=str(row.id), error=row.error_message, event_id=row.event_id,
                                         incident_id=row.incident_id)  # fmt: skip
            routing.route(page, now=now, fallback=settings)
            return None, "rollback_failed"
        step.status, step.started_at, step.attempts = "running", now, step.attempts + 1
        step.save()
        return step, None
    row.status, row.completed_at = "rolled_back", now
    row.save()
    log(row.id, "Rollback completed.")
    audit.record(audit.Action.ROLLBACK_COMPLETED, actor="rollbacker", subject=f"execution:{row.id}")
    return None, "rolled_back"


def _record(step_id: int, planned: dict[str, Any] | None, outcome: Any, now: datetime) -> None:
    from .. import actions

    step = ExecutionStep.get_by_id(step_id)
    step.result = {"success": outcome.success, "output": outcome.output}
    step.rendered = {**step.rendered, "planned": actions.redact(planned) if planned else None}
    step.status = "completed" if outcome.success else "failed"
    step.error_message = None if outcome.success else (outcome.error or "failed")
    step.completed_at = now
    step.save()
    log(step.execution_id, f"Rollback step {step.action_id} {step.status}.", action_id=step.action_id)
    audit.record(audit.outcome("rollback_step", step.status), actor="rollbacker",
                 subject=f"execution:{step.execution_id}",
                 details={"action_id": step.action_id, "planned": step.rendered.get("planned"),
                          "error": step.error_message})  # fmt: skip


def run_rollback(execution_id: str, *, settings: Settings, actor: str = "rollbacker", now: Any = _now) -> str | None:
    """Roll an execution back (or resume its rollback); return its final status.

    Idempotent: a completed compensating step never runs again; a finished rollback is a no-op.
    :data:`WAITING`: a resource it targets is leased to another execution; the caller asks again later.
    """
    status = in_transaction(lambda: _start(execution_id, actor, settings, now()))
    if status != "rolling_back":
        return status
    while True:
        step, final = in_transaction(lambda: _next_step(execution_id, now(), settings))
        if step is None:
            return final
        action = step.rendered["action"]
        timeout_s = float(action.get("timeout_minutes") or 5) * 60
        logger.info("Execution %r: running rollback step %r.", execution_id, step.action_id)
        planned, outcome = perform(
            execution_id, action, dry_run=False, settings=settings, timeout_s=timeout_s, now=now()
        )
        in_transaction(partial(_record, step.id, planned, outcome, now()))


def escalate(execution_id: str, *, settings: Settings) -> bool:
    """Make the first attempt at the notifications of a failed rollback now; return whether one was sent.

    The rollback's failure paged through the notification policies (NOTIFY_EMAIL_TO when none takes
    it) in its own transaction; failed attempts are retried by the ``notify`` actor through the clock.
    """
    ids = in_transaction(lambda: [
        r.id for r in Notification.select(Notification.id).where(
            Notification.dedup_key == f"rollback_failed:execution:{execution_id}", Notification.status == "pending")
    ])  # fmt: skip
    sent = [delivery.deliver(i, settings=settings) == "sent" for i in ids]
    if any(sent):
        in_transaction(lambda: log(execution_id, "Escalated: the rollback failed.", level="warning"))
    elif ids:
        logger.warning("Could not escalate the failed rollback of %r yet; the notifications are retried.", execution_id)
    return any(sent)

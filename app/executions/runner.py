"""The playbook runner: an execution's steps in ``depends_on`` order, under the safety rules.

Each step moves ``pending → running → completed | failed`` in its own short transaction, and the
action itself runs outside any transaction (no connection is held while a target is slow). So:

- a redelivered message never runs a completed step again;
- a step found ``running`` belongs to a worker that died mid-step: it runs again only if the
  template marks it ``idempotent``, otherwise it fails ("effect unknown") and the execution with it;
- a step marked ``gated`` waits for an approval: the execution becomes ``awaiting_approval`` and
  the approval request is created; once approved, the same message runs the rest;
- a remediation step inside a maintenance window does not run.

While a worker runs an execution it holds a lease on it (``heartbeat_at``), renewed every
:data:`LEASE_RENEW_S` while a step runs: a redelivered message inside the lease is retried later
(:class:`ExecutionBusy`); once a dead worker's lease has run out, the next delivery takes over.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from .. import actions, audit
from ..config import Settings
from ..db import in_transaction, is_postgres, release_connection
from ..decisions import context as run_context
from ..decisions import learning, policy
from ..errors import ActionNotAllowed, InvalidRule, TransientError
from ..models import Approval, AuditLog, Execution, ExecutionLog, ExecutionStep
from ..models.ops import person_of
from ..notifications import pages, routing
from . import leases, prepared
from .store import TERMINAL, log, rendered_request

logger = logging.getLogger(__name__)

#: A step without its own ``timeout_minutes``.
DEFAULT_STEP_TIMEOUT_S = 300.0
#: How long a worker's hold on an execution lasts without renewal, and how often it renews it.
LEASE_S = 30.0
LEASE_RENEW_S = 10.0
#: The approvers of a request: roles whose keys may answer it (the policy's, stored as a list).
APPROVER_ROLES = list(policy.APPROVER_ROLES)


class ExecutionBusy(TransientError):
    """Another worker is running this execution (its lease is still valid): try again later."""


@dataclass(frozen=True)
class RunResult:
    status: str
    #: A pending approval whose timeout the caller must schedule.
    approval_id: int | None = None
    #: The caller must start the rollback.
    rollback: bool = False
    #: A resource it targets is leased to another execution: the caller sends it again after this many seconds.
    wait_s: float | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def locked(execution_id: str) -> Execution | None:
    """The execution, its row locked (on PostgreSQL) until the transaction ends; None when there is none.

    Every change of an execution's status takes this lock first (call inside a transaction), so the
    runner, the rollbacker, an approval's answer and a cancellation never interleave.
    """

    def build() -> Any:
        query = Execution.select().where(Execution.id == execution_id)
        return query.for_update() if is_postgres() else query

    return prepared.first(Execution, "locked", build, [Execution.id.db_value(execution_id)])


def _approval(execution_id: Any) -> Approval | None:
    """``Approval.get_or_none(Approval.execution_id == execution_id)``."""
    build = lambda: Approval.select().where(Approval.execution_id == execution_id)  # noqa: E731
    return prepared.first(Approval, "approval", build, [Approval.execution_id.db_value(execution_id)])


def _steps(execution_id: Any) -> list[ExecutionStep]:
    def build() -> Any:
        return (
            ExecutionStep.select()
            .where(ExecutionStep.execution_id == execution_id, ExecutionStep.phase == "action")
            .order_by(ExecutionStep.position)
        )

    return prepared.select(ExecutionStep, "steps", build, [ExecutionStep.execution_id.db_value(execution_id), "action"])


def _finish(row: Execution, status: str, *, error: str | None = None, now: datetime, writes: prepared.Writes) -> None:
    """End ``row`` with ``status``; its writes join ``writes`` (flushed by the caller)."""
    row.status, row.completed_at, row.error_message, row.heartbeat_at = status, now, error, None
    writes.save(row)
    writes.insert(ExecutionLog, execution_id=row.id, message=f"Execution {status}" + (f": {error}" if error else "."),
                  level="error" if error else "info", action_id=None)  # fmt: skip
    _audit(writes, audit.outcome("execution", status), row, {"error": error} if error else None)
    if status in ("completed", "failed"):
        learning.record_outcome(row, success=status == "completed", writes=writes)
    if status == "failed":
        writes.flush()  # routing reads and writes the notifications' tables: in order
        routing.route(pages.execution_failed(execution_id=str(row.id), error=error, event_id=row.event_id,
                                             incident_id=row.incident_id), now=now)  # fmt: skip


def _audit(writes: prepared.Writes, action: audit.Action, row: Execution, details: dict[str, Any] | None) -> None:
    """:func:`app.audit.record` by the executor, at the flush (its person is itself: no key to look up)."""
    writes.insert(AuditLog, action=action.value, actor="executor", person=person_of("executor"),
                  subject=f"execution:{row.id}", details=details)  # fmt: skip


def _request_approval(row: Execution, gated: list[dict[str, Any]], settings: Settings, now: datetime) -> Approval:
    approval = Approval.get_or_none(Approval.execution_id == row.id)
    if approval is None:
        minutes = settings.approval_timeout_minutes
        approval = Approval.create(
            execution_id=row.id,
            requested_by=row.requested_by,
            approvers=APPROVER_ROLES,
            reason="; ".join(f"{a['id']}: {a['assessment']['reason']}" for a in gated)
            or "the decision needs a human approval",
            risk_score=row.risk_score,
            risk_level=row.risk_level,
            business_impact=(row.definition.get("business_impact") or None),
            # what each action would send, rendered now with its secrets masked: approvers see the request
            requested_actions=[
                {"action_id": a["id"], "name": a.get("name"), **a["assessment"], "request": rendered_request(row.id, a)}
                for a in gated
            ],  # fmt: skip
            timeout_minutes=minutes,
            expires_at=now + timedelta(minutes=minutes),
            created_at=now,
        )
        log(row.id, f"Waiting for an approval (request {approval.id}, rejected after {minutes} min).")
        audit.record(audit.Action.APPROVAL_REQUESTED, actor="executor", subject=f"execution:{row.id}",
                     details={"approval_id": approval.id, "reason": approval.reason})  # fmt: skip
    row.status = "awaiting_approval"
    row.heartbeat_at = None
    prepared.save(row)
    return approval


@dataclass
class _Next:
    """What the runner does next, decided under the execution's row lock."""

    result: RunResult | None = None
    step: ExecutionStep | None = None
    action: dict[str, Any] | None = None
    timeout_s: float = 0.0
    dry_run: bool = False
    #: The names the step's templates render with, read in the same transaction (one round trip less).
    context: dict[str, Any] | None = None


def _dependency_failed(action: dict[str, Any], steps: dict[str, ExecutionStep]) -> bool:
    return any(steps[d].status in ("failed", "skipped", "cancelled") for d in action.get("depends_on") or [])


def _fail_step(row: Execution, step: ExecutionStep, error: str, now: datetime,
               writes: prepared.Writes) -> RunResult | None:  # fmt: skip
    step.status, step.completed_at, step.error_message = "failed", now, error
    writes.save(step)
    writes.insert(ExecutionLog, execution_id=row.id, message=f"Step {step.action_id} failed: {error}", level="error",
                  action_id=step.action_id)  # fmt: skip
    action = next(a for a in row.definition["actions"] if str(a["id"]) == step.action_id)
    if action.get("required", True) is False:
        return None
    _finish(row, "failed", error=f"step {step.action_id} failed: {error}", now=now, writes=writes)
    return RunResult("failed", rollback=row.rollback_on_failure and not row.dry_run)


@dataclass(frozen=True)
class _Done:
    """A step's outcome, recorded by the next look at its execution, in that look's transaction."""

    step: ExecutionStep
    planned: dict[str, Any] | None
    outcome: actions.Outcome


def _record(row: Execution, steps: dict[str, ExecutionStep], done: _Done, now: datetime,
            writes: prepared.Writes) -> RunResult | None:  # fmt: skip
    """Record a step's outcome on its row as read under the execution's lock (one of ``steps``)."""
    step = next((s for s in steps.values() if s.id == done.step.id), None)
    assert step is not None  # steps are never deleted
    outcome = done.outcome
    step.rendered = actions.redact(done.planned) if done.planned else None
    step.result = {
        "success": outcome.success,
        "output": outcome.output,
        **({"data": outcome.data} if outcome.data else {}),
    }
    _audit(writes, audit.Action.STEP_COMPLETED if outcome.success else audit.Action.STEP_FAILED, row,
           {"action_id": step.action_id, "planned": step.rendered, "error": outcome.error})  # fmt: skip
    if outcome.success:
        step.status, step.completed_at = "completed", now
        writes.save(step)
        writes.insert(ExecutionLog, execution_id=row.id, level="info", action_id=step.action_id,
                      message=f"Step {step.action_id} completed: {outcome.output[:200]}")  # fmt: skip
        return None
    return _fail_step(row, step, outcome.error or "failed", now, writes)


def _next(execution_id: str, settings: Settings, now: datetime, *, own: bool, done: _Done | None = None) -> _Next:
    """What the runner does next (call inside a transaction); ``done``, the step just run, is recorded first.

    PERF (issue #14): the row is locked and read with what the templates render against in one
    statement, and the writes nobody reads back in this transaction (log lines, audit rows, the
    step's and execution's rows) go in one round trip at its end (:class:`prepared.Writes`).
    """
    writes = prepared.Writes()
    nxt = _look(execution_id, settings, now, own=own, done=done, writes=writes)
    writes.flush()
    return nxt


def _look(execution_id: str, settings: Settings, now: datetime, *, own: bool, done: _Done | None,  # noqa: C901
          writes: prepared.Writes) -> _Next:  # fmt: skip
    """The state machine of :func:`_next`, its writes into ``writes``."""
    row = prepared.locked_with_context(execution_id)
    if row is None:
        return _Next(RunResult("missing"))
    steps: dict[str, ExecutionStep] | None = None
    if done is not None:
        steps = {s.action_id: s for s in _steps(row.id)}
        failed = _record(row, steps, done, now, writes)
        if failed is not None:
            return _Next(failed)
    if row.status in TERMINAL or row.status == "rolling_back":
        return _Next(RunResult(row.status))
    # PERF: an approval exists only for an execution with a gated action (requested by the runner, or
    # redeemed from a token): none is read on the way to the first step of a playbook that gates nothing
    gates = row.status == "awaiting_approval" or any(a.get("gated") for a in row.definition["actions"])
    approval = _approval(row.id) if gates else None
    approved = approval is not None and approval.status == "approved"
    if row.status == "awaiting_approval" and not approved:
        return _Next(
            RunResult(row.status, approval_id=approval.id if approval and approval.status == "pending" else None)
        )
    if not own and row.status == "running" and row.heartbeat_at and row.heartbeat_at > now:
        raise ExecutionBusy(f"execution {row.id} is leased until {row.heartbeat_at.isoformat()}")
    writes.flush()  # nothing yet on the way to a first step; the leases' tables see what came before
    claim = leases.claim(row, approved=approved, now=now, settings=settings)  # its target resources, all or none
    if not claim.granted:
        return _Next(RunResult("cancelled" if claim.cancelled else row.status, wait_s=claim.wait_s))
    if row.started_at is None:
        row.started_at = now
        writes.insert(ExecutionLog, execution_id=row.id, message="Execution started.", level="info", action_id=None)
    row.status = "running"
    deadline = row.started_at + timedelta(minutes=row.max_execution_time_minutes)
    if now >= deadline:
        _finish(row, "failed", error=f"max_execution_time_minutes ({row.max_execution_time_minutes}) exceeded",
                now=now, writes=writes)  # fmt: skip
        return _Next(RunResult("failed", rollback=row.rollback_on_failure and not row.dry_run))
    actions_by_id = {str(a["id"]): a for a in row.definition["actions"]}
    if steps is None:
        steps = {s.action_id: s for s in _steps(row.id)}
    for step in sorted(steps.values(), key=lambda s: s.position):
        if step.status in ("completed", "failed", "skipped", "cancelled"):
            continue
        action = actions_by_id[step.action_id]
        if step.status == "running" and not action.get("idempotent"):
            result = _fail_step(row, step, "the worker running it stopped; its effect is unknown", now, writes)
            if result:
                return _Next(result)
            continue
        if _dependency_failed(action, steps):
            step.status, step.completed_at = "skipped", now
            writes.save(step)
            writes.insert(ExecutionLog, execution_id=row.id, level="info", action_id=step.action_id,
                          message=f"Step {step.action_id} skipped: a step it depends on did not complete.")  # fmt: skip
            continue
        if action.get("gated") and not approved and not row.dry_run:
            writes.flush()  # the request renders its actions from the stored rows
            gated = [a for a in row.definition["actions"] if a.get("gated") and steps[str(a["id"])].status == "pending"]
            approval = _request_approval(row, gated, settings, now)
            return _Next(RunResult("awaiting_approval", approval_id=approval.id))
        window = run_context.maintenance_for(row, action, now)
        if window is not None and not row.dry_run:
            step.status, step.completed_at, step.error_message = "skipped", now, f"maintenance window {window!r}"
            writes.save(step)
            _finish(row, "cancelled", error=f"remediation blocked by maintenance window {window!r}", now=now,
                    writes=writes)  # fmt: skip
            return _Next(RunResult("cancelled"))
        timeout_s = min(
            float(action.get("timeout_minutes") or DEFAULT_STEP_TIMEOUT_S / 60) * 60, (deadline - now).total_seconds()
        )
        step.status, step.started_at, step.attempts = "running", now, step.attempts + 1
        writes.save(step)
        row.heartbeat_at = now + timedelta(seconds=LEASE_S)
        writes.save(row)
        context = prepared.render_context(row, steps.values())
        return _Next(step=step, action=action, timeout_s=timeout_s, dry_run=row.dry_run, context=context)
    _finish(row, "completed", now=now, writes=writes)
    return _Next(RunResult("completed"))


def perform(row_id: str, action: dict[str, Any], *, dry_run: bool, settings: Settings, timeout_s: float,
            now: datetime, context: dict[str, Any] | None = None) -> tuple[dict[str, Any] | None, actions.Outcome]:  # fmt: skip
    """Plan and perform one action; the plan returned (to store and show) has its secrets masked.

    The secrets' values are read right before the action runs and live only in the plan performed.
    ``context``: the names to render with, when the caller read them already (else read here).
    """
    from .. import secrets

    try:
        if context is None:
            context = in_transaction(lambda: run_context.render_context(row_id))
        shown = actions.plan(action, context)
    except InvalidRule as e:
        return None, actions.Outcome(success=False, output="", data={}, error=f"cannot render the action: {e.message}")
    if dry_run:
        release_connection()
        return shown, actions.Outcome(success=True, output=f"dry run: would run {shown['integration']}", data={})
    try:
        names = actions.secrets_of(action)
        values = in_transaction(lambda: secrets.reveal(names, keys=settings.secret_keys)) if names else {}
        planned = actions.plan(action, context, secrets=values) if values else shown
    except ActionNotAllowed as e:  # an unknown or unreadable secret, or secrets disabled
        return shown, actions.Outcome(success=False, output="", data={}, error=f"not allowed: {e}")
    except InvalidRule as e:
        return shown, actions.Outcome(success=False, output="", data={}, error=f"cannot render the action: {e.message}")
    finally:
        release_connection()
    try:
        return shown, actions.perform(
            planned, settings=settings, timeout_s=max(timeout_s, 1.0), secrets=list(values.values())
        )
    except ActionNotAllowed as e:
        return shown, actions.Outcome(success=False, output="", data={}, error=f"not allowed: {e}")


class _Lease:
    """Renews the execution's lease from a background thread (a greenlet under gevent) while a step runs."""

    def __init__(self, execution_id: str, now: Any) -> None:
        self.execution_id, self.now = execution_id, now
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._renew, name=f"lease-{execution_id}", daemon=True)

    def _renew(self) -> None:
        while not self.stop.wait(LEASE_RENEW_S):
            try:
                in_transaction(partial(self._extend, self.now() + timedelta(seconds=LEASE_S)))
            except TransientError as e:
                logger.warning("Could not renew the lease of execution %r: %s", self.execution_id, e)
            finally:
                release_connection()

    def _extend(self, until: datetime) -> None:
        Execution.update(heartbeat_at=until).where(
            Execution.id == self.execution_id, Execution.status == "running"
        ).execute()

    def __enter__(self) -> _Lease:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def run(execution_id: str, *, settings: Settings, now: Any = _now) -> RunResult:
    """Run (or resume) an execution until it completes, fails, or waits for an approval.

    Raises:
      ExecutionBusy: another worker holds the execution's lease.
      DatabaseUnavailable: retried by the caller; no completed step runs again.
    """
    own = False  # the first look respects another worker's lease; later ones are ours
    done: _Done | None = None
    while True:
        # a step's outcome is recorded in the transaction that decides what comes next (one lock, one commit)
        nxt = in_transaction(partial(_next, execution_id, settings, now(), own=own, done=done))
        own = True
        if nxt.result is not None:
            return nxt.result
        assert nxt.step is not None and nxt.action is not None
        logger.info("Execution %r: running step %r.", execution_id, nxt.step.action_id)
        with _Lease(execution_id, now):
            planned, outcome = perform(execution_id, nxt.action, dry_run=nxt.dry_run, settings=settings,
                                       timeout_s=nxt.timeout_s, now=now(), context=nxt.context)  # fmt: skip
        done = _Done(nxt.step, planned, outcome)

"""Resource leases: two executions (of playbooks or of agents' proposals) never act on one resource at once.

Before an execution's steps act, the runner claims a lease on each resource the execution targets
(:func:`claim`, inside the transaction that holds the execution's row lock). The race is settled
by PostgreSQL: one row per resource (its primary key), inserted ``ON CONFLICT DO NOTHING`` and then
read ``FOR UPDATE``, so of two claimants exactly one holds it.

- **Targets**: ``target_resources`` of the execution's definition (an agent's proposal declares
  them); a playbook's execution that remediates targets its incident's hosts (else its event's
  host), one that only diagnoses and notifies targets nothing. A bare name
  is a host: ``web-01`` is ``host:web-01``; ``k8s:<ns>/<kind>/<name>`` and ``tf:<workspace>:<address>``
  name a Kubernetes workload and a Terraform resource.
- **Rollbacks** claim them too (:mod:`app.executions.rollback`, ``rollback=True``): a completed
  execution rolled back later waits while another acts on its resources, and is never cancelled.
- **Held** while the holder runs: its status is ``running`` with a current worker lease
  (``heartbeat_at``, renewed while a step runs) or ``rolling_back`` (and for
  :data:`ROLLBACK_GRACE` after it failed, until its rollback starts). So a lease ends with its
  execution, while the execution waits for an approval, and when the worker running it dies.
- **Priority** (:data:`PRIORITIES`): incident response over scaling over cost over drift. When a
  lease is free, the highest priority waiting (then the oldest) takes it; the others wait.
- **Waiting**: a claim that cannot be granted takes nothing (all or none) and records the wait;
  the caller asks again after ``LEASE_RETRY_SECONDS``. A waiter behind a higher-priority holder
  for more than ``LEASE_MAX_WAIT_MINUTES`` is cancelled with the reason recorded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .. import audit
from ..actions.operations import category_of
from ..config import Settings
from ..db import is_postgres
from ..models import Execution, ExecutionStep, Incident, ProcessedEvent, ResourceLease, ResourceLeaseWait
from .store import TERMINAL, cancel_execution, log

logger = logging.getLogger(__name__)

#: Why an execution acts, and its priority: the higher wins a contested resource.
PRIORITIES = {"incident": 4, "scaling": 3, "cost": 2, "drift": 1}
PURPOSE_NAMES = {"incident": "incident response", "scaling": "scaling", "cost": "cost", "drift": "drift"}
#: Prefixes of resource names; a name with none is a host.
PREFIXES = ("host:", "k8s:", "tf:")
#: How often a wait is written to the execution's log (the clock's sweep takes a silent one for lost).
LOG_EVERY = timedelta(minutes=2)
#: A failed execution keeps its leases this long for its rollback to start (``rolling_back`` holds them then).
ROLLBACK_GRACE = timedelta(seconds=30)
#: A waiter that has not asked again for this many retry intervals (at least a minute) is passed over.
STALE_WAITER_RETRIES = 12


@dataclass(frozen=True)
class Claim:
    """The answer to a claim: granted, or wait ``wait_s`` seconds and ask again, or cancelled (why)."""

    granted: bool
    wait_s: float | None = None
    cancelled: str | None = None


@dataclass(frozen=True)
class _Blocker:
    resource: str
    execution_id: str
    priority: int
    holding: bool


def canonical(resource: str) -> str:
    """A resource's name as leases key it: ``host:<name>`` for a bare host name."""
    resource = resource.strip()
    return resource if resource.startswith(PREFIXES) else f"host:{resource}"


def targets_of(row: Execution) -> list[str]:
    """The resources an execution acts on: declared, else (when it remediates) its incident's hosts, else its event's host.

    A playbook that only diagnoses and notifies changes nothing, so it runs beside others.
    """
    declared = row.definition.get("target_resources")
    if isinstance(declared, list) and declared:
        return sorted({canonical(str(r)) for r in declared if str(r).strip()})
    if not any(category_of(a) == "remediation" for a in row.definition.get("actions", [])):
        return []
    hosts: list[str] = []
    if row.incident_id:
        incident = Incident.select(Incident.hosts).where(Incident.id == row.incident_id).first()
        hosts = list((incident.hosts if incident else None) or [])
    if not hosts and row.event_id:
        event = ProcessedEvent.select(ProcessedEvent.source_host).where(ProcessedEvent.id == row.event_id).first()
        hosts = [event.source_host] if event is not None and event.source_host else []
    return sorted({canonical(h) for h in hosts if h})


def purpose_of(row: Execution) -> str:
    """Why the execution acts (its priority's name): declared by a proposal, else incident response."""
    purpose = row.definition.get("purpose")
    return purpose if purpose in PRIORITIES else "incident"


def _alive(execution_id: Any, now: datetime) -> bool:
    """Whether the execution holds its leases now: it runs (worker lease current) or rolls back, or it
    just failed and its rollback is on its way (:data:`ROLLBACK_GRACE`)."""
    row = (
        Execution.select(Execution.status, Execution.heartbeat_at, Execution.completed_at, Execution.dry_run,
                         Execution.rollback_on_failure)
        .where(Execution.id == execution_id)
        .first()
    )  # fmt: skip
    if row is None:
        return False
    if row.status == "rolling_back":
        return True
    if row.status == "failed" and row.rollback_on_failure and not row.dry_run and row.completed_at is not None:
        return row.completed_at > now - ROLLBACK_GRACE
    return row.status == "running" and row.heartbeat_at is not None and row.heartbeat_at > now


def _asks_approval_first(row: Execution, approved: bool) -> bool:
    """Whether the next step waits for an approval: nothing acts yet, and a wait must not hold a lease."""
    if approved or row.dry_run:
        return False
    gated = {str(a["id"]) for a in row.definition.get("actions", []) if a.get("gated")}
    if not gated:  # PERF: most playbooks gate nothing; no query on the way to their first step
        return False
    first = (
        ExecutionStep.select(ExecutionStep.action_id)
        .where(ExecutionStep.execution_id == row.id, ExecutionStep.phase == "action", ExecutionStep.status == "pending")
        .order_by(ExecutionStep.position)
        .first()
    )
    return first is not None and first.action_id in gated


def _lease(resource: str) -> ResourceLease | None:
    query = ResourceLease.select().where(ResourceLease.resource == resource)
    if is_postgres():
        query = query.for_update()
    return query.first()


def _take(resource: str, row: Execution, priority: int, purpose: str, now: datetime) -> _Blocker | bool:
    """Take ``resource`` for ``row``; True when newly taken, False when already held by it, else who holds it."""
    mine = str(row.id)
    ResourceLease.insert(resource=resource, execution_id=row.id, priority=priority, purpose=purpose,
                         acquired_at=now).on_conflict_ignore().execute()  # fmt: skip
    lease = _lease(resource)
    assert lease is not None
    if str(lease.execution_id) == mine:
        return lease.acquired_at == now
    if _alive(lease.execution_id, now):
        return _Blocker(resource, str(lease.execution_id), lease.priority, holding=True)
    logger.info("Lease of %r passes from execution %r (no longer running) to %r.", resource,
                str(lease.execution_id), mine)  # fmt: skip
    ResourceLease.update(execution_id=row.id, priority=priority, purpose=purpose, acquired_at=now).where(
        ResourceLease.resource == resource
    ).execute()
    return True


def _ahead(resource: str, row: Execution, priority: int, since: datetime, now: datetime,
           stale_after: timedelta) -> _Blocker | None:  # fmt: skip
    """A live waiter for ``resource`` that goes before ``row``: higher priority, or the same and older."""
    waiters = (
        ResourceLeaseWait.select()
        .where(
            ResourceLeaseWait.resource == resource,
            ResourceLeaseWait.execution_id != row.id,
            ResourceLeaseWait.seen_at > now - stale_after,
            (ResourceLeaseWait.priority > priority)
            | ((ResourceLeaseWait.priority == priority) & (ResourceLeaseWait.since < since)),
        )
        .order_by(ResourceLeaseWait.priority.desc(), ResourceLeaseWait.since)
    )
    for waiter in waiters:
        status = Execution.select(Execution.status).where(Execution.id == waiter.execution_id).first()
        if status is not None and status.status not in TERMINAL:
            return _Blocker(resource, str(waiter.execution_id), waiter.priority, holding=False)
    return None


def _describe(blocker: _Blocker) -> str:
    purpose = next((PURPOSE_NAMES[p] for p, n in PRIORITIES.items() if n == blocker.priority), "?")
    how = "held by" if blocker.holding else "promised first to"
    return f"{blocker.resource} {how} execution {blocker.execution_id} ({purpose}, priority {blocker.priority})"


def _waits(row: Execution, resources: list[str], priority: int, purpose: str, now: datetime) -> ResourceLeaseWait:
    """Record (or refresh) the waits of ``row``; return the oldest, whose ``since`` is when it began waiting."""
    for resource in resources:
        ResourceLeaseWait.insert(resource=resource, execution_id=row.id, priority=priority, purpose=purpose, since=now,
                                 seen_at=now, logged_at=now).on_conflict_ignore().execute()  # fmt: skip
    ResourceLeaseWait.update(seen_at=now).where(ResourceLeaseWait.execution_id == row.id).execute()
    oldest = (
        ResourceLeaseWait.select().where(ResourceLeaseWait.execution_id == row.id).order_by(ResourceLeaseWait.since)
    )
    found = oldest.first()
    assert found is not None
    return found


def claim(row: Execution, *, approved: bool, now: datetime, settings: Settings, rollback: bool = False) -> Claim:
    """Claim the leases of every resource ``row`` targets, all or none (call under ``row``'s lock).

    Parameters:
      row: The execution, locked by the caller (:func:`app.executions.runner.locked`).
      approved: Whether its approval was given (an unapproved gated next step claims nothing).
      now: The instant the claim is made at.
      settings: ``LEASE_RETRY_SECONDS`` and ``LEASE_MAX_WAIT_MINUTES``.
      rollback: The claim of the rollbacker, before compensating steps act: it waits like any
        other claim but is never cancelled (what was changed must still be undone).

    Returns:
      Granted (also when it targets nothing, is a dry run, or waits for an approval first);
      else a wait of ``LEASE_RETRY_SECONDS`` (the wait is recorded and logged on the execution);
      else cancelled, when a higher-priority execution held a resource for longer than
      ``LEASE_MAX_WAIT_MINUTES`` of this one's wait (the execution is cancelled and audited here).
    """
    targets = [] if row.dry_run or (not rollback and _asks_approval_first(row, approved)) else targets_of(row)
    if not targets:
        return Claim(granted=True)
    purpose = purpose_of(row)
    priority = PRIORITIES[purpose]
    stale_after = max(timedelta(minutes=1), timedelta(seconds=settings.lease_retry_s * STALE_WAITER_RETRIES))
    waiting = (
        ResourceLeaseWait.select().where(ResourceLeaseWait.execution_id == row.id).order_by(ResourceLeaseWait.since)
    )
    first = waiting.first()
    since = first.since if first is not None else now
    taken: list[str] = []
    blockers: list[_Blocker] = []
    for resource in targets:  # sorted: claimants lock rows in one order
        held = _lease(resource)
        mine = held is not None and str(held.execution_id) == str(row.id)
        ahead = None if mine else _ahead(resource, row, priority, since, now, stale_after)
        got = _take(resource, row, priority, purpose, now) if ahead is None else ahead
        if isinstance(got, _Blocker):
            blockers.append(got)
        elif got:
            taken.append(resource)
    if not blockers:
        ResourceLeaseWait.delete().where(ResourceLeaseWait.execution_id == row.id).execute()
        return Claim(granted=True)
    if taken:  # all or none: a waiter holds nothing
        ResourceLease.delete().where(ResourceLease.resource.in_(taken), ResourceLease.execution_id == row.id).execute()
    return _wait(row, blockers, priority, purpose, now, settings, may_cancel=not rollback)


def _wait(row: Execution, blockers: list[_Blocker], priority: int, purpose: str, now: datetime,
          settings: Settings, *, may_cancel: bool) -> Claim:  # fmt: skip
    wait = _waits(row, [b.resource for b in blockers], priority, purpose, now)
    why = "; ".join(_describe(b) for b in blockers)
    stronger = [b for b in blockers if b.holding and b.priority > priority]
    if may_cancel and stronger and now - wait.since > timedelta(minutes=settings.lease_max_wait_minutes):
        reason = (f"waited {settings.lease_max_wait_minutes:g} min for {why}: a higher-priority execution holds it"
                  f" ({PURPOSE_NAMES[purpose]} gives way)")  # fmt: skip
        cancel_execution(row, reason, now)
        ResourceLeaseWait.delete().where(ResourceLeaseWait.execution_id == row.id).execute()
        audit.record(audit.Action.EXECUTION_CANCELLED, actor="executor", subject=f"execution:{row.id}",
                     details={"reason": reason, "resources": [b.resource for b in stronger],
                              "held_by": sorted({b.execution_id for b in stronger})})  # fmt: skip
        logger.info("Execution %r cancelled: %s", str(row.id), reason)
        return Claim(granted=False, cancelled=reason)
    if wait.reason != why or now - wait.logged_at >= LOG_EVERY:
        said = "Waiting" if wait.since == now else f"Still waiting (since {wait.since.isoformat()})"
        log(row.id, f"{said} for a resource: {why}.", level="warning")
        ResourceLeaseWait.update(logged_at=now, reason=why).where(ResourceLeaseWait.execution_id == row.id).execute()
    return Claim(granted=False, wait_s=float(settings.lease_retry_s))


def listing(*, now: datetime) -> list[dict[str, Any]]:
    """Leases held now and the executions waiting for each resource (call inside a transaction)."""
    from ..present import iso

    shown: dict[str, dict[str, Any]] = {}
    for lease in ResourceLease.select().order_by(ResourceLease.resource):
        if _alive(lease.execution_id, now):
            shown[lease.resource] = {"resource": lease.resource, "execution_id": str(lease.execution_id),
                                     "purpose": lease.purpose, "priority": lease.priority,
                                     "acquired_at": iso(lease.acquired_at), "waiting": []}  # fmt: skip
    for wait in ResourceLeaseWait.select().order_by(ResourceLeaseWait.priority.desc(), ResourceLeaseWait.since):
        entry = shown.setdefault(wait.resource, {"resource": wait.resource, "execution_id": None, "purpose": None,
                                                 "priority": None, "acquired_at": None, "waiting": []})  # fmt: skip
        entry["waiting"].append({"execution_id": str(wait.execution_id), "purpose": wait.purpose,
                                 "priority": wait.priority, "since": iso(wait.since)})  # fmt: skip
    return list(shown.values())

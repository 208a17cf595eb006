"""``GET /api/v1/agents/status``: each agent's state, health, last run, work in flight, and the leases held now."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import peewee

from ..db import in_transaction
from ..executions import leases
from ..executions.store import TERMINAL
from ..models import AgentConfig, Execution
from ..present import iso
from . import health, registry
from .base import RUNNABLE_KINDS, implementation

logger = logging.getLogger(__name__)


def _in_flight() -> dict[str, dict[str, int]]:
    """Executions of each agent (``requested_by`` ``agent:<name>``) not yet finished, by status."""
    query: Any = (
        Execution.select(Execution.requested_by, Execution.status, peewee.fn.COUNT(Execution.id))
        .where(Execution.requested_by.startswith("agent:"), Execution.status.not_in(TERMINAL))
        .group_by(Execution.requested_by, Execution.status)
        .tuples()
    )
    found: dict[str, dict[str, int]] = {}
    for requested_by, status, n in query:
        found.setdefault(requested_by.removeprefix("agent:"), {})[status] = n
    return found


def _readiness(row: AgentConfig) -> Mapping[str, Any]:
    """What the agent's own code says about working here (a failure to say is shown, not raised)."""
    if row.kind not in RUNNABLE_KINDS:
        return {"ready": True, "reason": "the orchestrator is the clock, the decider's cap and the executor's leases"}
    agent = implementation(row.kind)
    if agent is None:
        return {"ready": False, "reason": f"no {row.kind} agent is implemented in this release"}
    try:
        return agent.status(registry.settings_of(row))
    except Exception as e:  # noqa: BLE001 - one agent's broken status must not hide the others'
        logger.warning("Agent %r could not tell its status.", row.name, exc_info=True)
        return {"ready": False, "reason": f"status failed: {type(e).__name__}: {e}"}


def status(now: datetime, *, interval_s: float) -> dict[str, Any]:
    """Every agent with its health and work, and the resource leases (reads in one transaction)."""

    def read() -> tuple[list[AgentConfig], dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
        registry.ensure_defaults()
        rows = list(AgentConfig.select().order_by(AgentConfig.kind, AgentConfig.name))
        return rows, health.health(now, interval_s=interval_s), _in_flight(), leases.listing(now=now)

    rows, seen, flight, held = in_transaction(read)
    agents = []
    for row in rows:
        state = registry.state_of(row)
        agents.append({
            "name": row.name, "type": row.kind, "state": state, "enabled": row.enabled,
            "automation_level": row.automation_level, "approval_required": row.approval_required,
            "health": "up" if seen[row.name]["up"] else "down" if seen[row.name]["down"] else "unknown",
            "down_since": seen[row.name]["down_since"], "processes": seen[row.name]["processes"],
            "last_run_at": iso(row.last_run_at), "last_result": row.last_result, "last_error": row.last_error,
            "last_scheduled_at": iso(row.last_scheduled_at), "interval_seconds": row.interval_s,
            "executions_in_flight": flight.get(row.name, {}), "implementation": dict(_readiness(row)),
        })  # fmt: skip
    return {"agents": agents, "leases": held, "checked_at": iso(now)}


def actions(*, agent: str | None = None, incident_id: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Agents' proposals that became executions, newest first: what each does, to what, and where it stands.

    Parameters:
      agent: Only this agent's. incident_id: Only those answering this incident.
    """
    query = Execution.select().where(Execution.requested_by.startswith("agent:"))
    if agent is not None:
        query = query.where(Execution.requested_by == f"agent:{agent}")
    if incident_id is not None:
        query = query.where(Execution.incident_id == incident_id)
    shown = []
    for x in query.order_by(Execution.created_at.desc()).limit(limit):
        proposal = (x.definition or {}).get("agent") or {}
        shown.append({
            "execution_id": str(x.id), "agent": x.requested_by.removeprefix("agent:"), "status": x.status,
            "finished": x.status in TERMINAL, "type": proposal.get("action_type"),
            "description": proposal.get("description"), "estimated_impact": proposal.get("estimated_impact"),
            "risk_level": proposal.get("risk_level") or x.risk_level,
            "target_resources": list((x.definition or {}).get("target_resources") or ()),
            "incident_id": str(x.incident_id) if x.incident_id else None, "decision_id": x.decision_id,
            "created_at": iso(x.created_at), "completed_at": iso(x.completed_at),
        })  # fmt: skip
    return shown

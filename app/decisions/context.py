"""What an execution's actions are rendered against, and whether a maintenance window blocks one."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..correlation.query import incident_json
from ..events.query import event_json
from ..models import Execution, ExecutionStep, Incident, ProcessedEvent, RuleExecution, TriggerRule
from ..topology.store import criticality_of as topology_criticality
from . import risk


def event_and_incident(event_id: Any, incident_id: Any = None) -> tuple[dict[str, Any], dict[str, Any] | None]:
    event = ProcessedEvent.get_or_none(ProcessedEvent.id == event_id) if event_id else None
    event_body = event_json(event) if event else {}
    incident_id = incident_id or (event.correlation_id if event else None)
    incident = Incident.get_or_none(Incident.id == incident_id) if incident_id else None
    return event_body, incident_json(incident) if incident else None


def incident_detail(incident_id: Any, *, limit: int = 20) -> dict[str, Any]:
    """The incident's latest events and the reasons they were grouped (for the LLM's summary)."""
    from ..models import EventCorrelation

    if not incident_id:
        return {"events": [], "correlations": []}
    events = (
        ProcessedEvent.select()
        .where(ProcessedEvent.correlation_id == incident_id)
        .order_by(ProcessedEvent.received_at.desc())
        .limit(limit)
    )
    links = (
        EventCorrelation.select()
        .where(EventCorrelation.correlation_id == incident_id)
        .order_by(EventCorrelation.id.desc())
        .limit(limit)
    )
    return {
        "events": [
            {k: v for k, v in event_json(e).items() if k in ("id", "host", "service", "severity", "event_type", "title",
                                                              "received_at", "occurrences")}
            for e in events
        ],
        "correlations": [{"type": c.correlation_type, "reason": c.correlation_reason,
                          "score": float(c.correlation_score) if c.correlation_score is not None else None}
                         for c in links],
    }  # fmt: skip


def criticality_of(host: str | None, service: str | None) -> str:
    """The asset's criticality from the topology (the service's, else the host's), else the default."""
    nodes = [n for n in (service, host) if n]
    if not nodes:
        return risk.DEFAULT_CRITICALITY
    rows = topology_criticality(nodes)
    return next((rows[n] for n in nodes if n in rows), risk.DEFAULT_CRITICALITY)


def variables_of(definition: dict[str, Any], given: dict[str, Any] | None) -> dict[str, Any]:
    values = {v["name"]: v.get("default") for v in definition.get("variables") or []}
    values.update(given or {})
    return values


def render_context(execution_id: Any) -> dict[str, Any]:
    """The names a template's actions may use: event, incident, rule, variables, steps, execution."""
    row = Execution.get_by_id(execution_id)
    event, incident = event_and_incident(row.event_id, row.incident_id)
    rule = None
    if row.rule_execution_id:
        firing = RuleExecution.get_or_none(RuleExecution.id == row.rule_execution_id)
        rule_row = TriggerRule.get_or_none(TriggerRule.id == firing.trigger_rule_id) if firing else None
        if rule_row is not None:
            rule = {"id": rule_row.id, "name": rule_row.rule_name}
    steps = {
        s.action_id: {"status": s.status, "result": s.result, "output": (s.result or {}).get("output")}
        for s in ExecutionStep.select().where(ExecutionStep.execution_id == row.id)
    }
    variables = variables_of(row.definition, row.variables)
    return {
        **variables,
        "variables": variables,
        "event": event,
        "incident": incident,
        "rule": rule,
        "steps": steps,
        "execution": {"id": str(row.id), "dry_run": row.dry_run, "decision_id": row.decision_id},
    }


def maintenance_window(event: dict[str, Any], at: datetime) -> str | None:
    """The name of a maintenance window covering the event's host/service/tags at ``at``, if any."""
    from .maintenance import covering_window

    window = covering_window(at=at, host=event.get("host"), service=event.get("service"), tags=event.get("tags") or [])
    return window.name if window is not None else None


def maintenance_for(row: Execution, action: dict[str, Any], at: datetime) -> str | None:
    """A window that blocks this action now: only remediation is blocked."""
    if risk.category_of(action) != "remediation":
        return None
    event, _ = event_and_incident(row.event_id, row.incident_id)
    return maintenance_window(event, at)

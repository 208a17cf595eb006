"""What happened to an incident, in time order: its events, why they were grouped, the rules they
fired, the decisions (risk, LLM reasoning), approvals, executions and their steps, and what
people did (notes, status changes, assignments, merges and splits).

Each kind is read with one query, capped at the latest :data:`LIMIT` rows, so an incident of
100,000 events answers as fast as one of 500; ``omitted`` says how many of each kind were left out.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import peewee

from ..correlation.query import incident_json
from ..db import in_transaction
from ..errors import NotFound
from ..models import (
    Approval,
    DecisionLog,
    EventCorrelation,
    Execution,
    ExecutionStep,
    Incident,
    IncidentActivity,
    ProcessedEvent,
    RuleExecution,
    RuleMatch,
    TriggerRule,
)
from ..present import iso

#: Rows of each kind shown at most (the latest ones).
LIMIT = 500

Entry = tuple[datetime, str, str, dict[str, Any]]


def timeline(incident_id: str) -> dict[str, Any]:
    """``{"incident", "entries": [{"at", "kind", "summary", "details"}], "omitted": {kind: n}}``, oldest first.

    Raises:
      NotFound: no incident ``incident_id``.
    """

    def work() -> dict[str, Any]:
        try:
            key = uuid.UUID(str(incident_id))
        except ValueError:
            raise NotFound(f"no incident {incident_id!r}") from None
        row = Incident.get_or_none(Incident.id == key)
        if row is None:
            raise NotFound(f"no incident {incident_id!r}")
        omitted: dict[str, int] = {}
        entries = [*_opened(row), *_events(key, omitted), *_correlations(key, omitted), *_people(key, omitted)]
        fired = _firings(key, omitted)
        entries += [entry for entry, _ in fired]
        decisions = _decisions(key, [rule_execution_id for _, rule_execution_id in fired if rule_execution_id], omitted)
        entries += [entry for entry, _ in decisions]
        executions = _executions(key, [d for _, d in decisions], omitted)
        entries += [entry for entry, _ in executions]
        ids = [e for _, e in executions]
        entries += _approvals(ids) + _steps(ids, omitted)
        entries.sort(key=lambda e: e[0])
        return {
            "incident": incident_json(row),
            "entries": [{"at": iso(at), "kind": kind, "summary": summary, "details": details}
                        for at, kind, summary, details in entries],
            "omitted": {kind: n for kind, n in omitted.items() if n > 0},
        }  # fmt: skip

    return in_transaction(work)


def _latest(query: Any, order: peewee.Field, kind: str, omitted: dict[str, int]) -> list[Any]:
    """The latest :data:`LIMIT` rows of ``query`` by ``order``; counts the rest in ``omitted``."""
    rows = list(query.order_by(order.desc()).limit(LIMIT + 1))
    if len(rows) > LIMIT:
        rows = rows[:LIMIT]
        omitted[kind] = omitted.get(kind, 0) + query.count() - LIMIT
    return rows


def _events_of(key: uuid.UUID) -> Any:
    return ProcessedEvent.select(ProcessedEvent.id).where(ProcessedEvent.correlation_id == key)


def _opened(row: Incident) -> list[Entry]:
    entries: list[Entry] = [
        (row.opened_at, "status", f"Opened: {row.title}", {"to": "open", "root_event_id": str(row.root_event_id)})
    ]
    if row.closed_by_event_id and row.closed_at:
        entries.append((row.closed_at, "status", "Closed by a resolution event",
                        {"to": "closed", "event_id": str(row.closed_by_event_id)}))  # fmt: skip
    return entries


def _events(key: uuid.UUID, omitted: dict[str, int]) -> list[Entry]:
    query = ProcessedEvent.select().where(ProcessedEvent.correlation_id == key)
    return [
        (e.received_at, "event", f"{e.severity} {e.title}" + (f" on {e.source_host}" if e.source_host else ""),
         {"event_id": str(e.id), "title": e.title, "event_type": e.event_type, "severity": e.severity, "host": e.source_host,
          "service": e.source_service, "source_type": e.source_type, "occurrences": e.occurrences})
        for e in _latest(query, ProcessedEvent.received_at, "event", omitted)
    ]  # fmt: skip


def _correlations(key: uuid.UUID, omitted: dict[str, int]) -> list[Entry]:
    query = EventCorrelation.select().where(EventCorrelation.correlation_id == key)
    entries: list[Entry] = []
    for c in _latest(query, EventCorrelation.id, "correlation", omitted):
        score = float(c.correlation_score) if c.correlation_score is not None else None
        entries.append((c.created_at, "correlation", f"{c.correlation_type} ({score}): {c.correlation_reason}",
                        {"correlation_type": c.correlation_type, "score": score, "reason": c.correlation_reason,
                         "related_event_ids": c.related_event_ids or []}))  # fmt: skip
    return entries


def _people(key: uuid.UUID, omitted: dict[str, int]) -> list[Entry]:
    query = IncidentActivity.select().where(IncidentActivity.incident_id == key)
    entries: list[Entry] = []
    for a in _latest(query, IncidentActivity.id, "activity", omitted):
        details = {"activity": a.kind, "actor": a.actor, "person": a.person, "text": a.text, **(a.details or {})}
        if a.kind == "note":
            entries.append((a.at, "note", f"{a.person}: {a.text}", details))
        elif a.kind == "status" and a.to_status == "flapping":
            entries.append((a.at, "status", f"Flapping: {a.text}", details))  # set by the correlator (app/correlation/placing.py)
        elif a.kind == "status":
            what = f"{a.from_status} → {a.to_status} by {a.person}" + (f": {a.text}" if a.text else "")
            entries.append((a.at, "status", what, details))
        elif a.kind == "assignment":
            entries.append((a.at, "status", f"Assigned to {(a.details or {}).get('assignee')} by {a.person}", details))
        else:  # merge, split
            entries.append((a.at, "status", f"{a.kind.capitalize()} by {a.person}: {a.text}", details))
    return entries


def _firings(key: uuid.UUID, omitted: dict[str, int]) -> list[tuple[Entry, int | None]]:
    """Rules fired by the incident's events (with the rule execution's id), and matches that did not fire."""
    names = {}
    fired = _latest(RuleExecution.select().where(RuleExecution.triggering_event_id.in_(_events_of(key))),
                    RuleExecution.id, "rule_fired", omitted)  # fmt: skip
    matches = _latest(RuleMatch.select().where(RuleMatch.event_id.in_(_events_of(key))), RuleMatch.matched_at,
                      "rule_fired", omitted)  # fmt: skip
    rule_ids = {r.trigger_rule_id for r in fired} | {m.rule_id for m in matches}
    if rule_ids:
        names = {
            r.id: r.rule_name
            for r in TriggerRule.select(TriggerRule.id, TriggerRule.rule_name).where(TriggerRule.id.in_(rule_ids))
        }
    entries: list[tuple[Entry, int | None]] = []
    done = set()
    for r in fired:
        done.add((r.trigger_rule_id, str(r.triggering_event_id)))
        name = names.get(r.trigger_rule_id, f"rule {r.trigger_rule_id}")
        entries.append(((r.fired_at or r.started_at, "rule_fired", f"Rule {name!r} fired ({r.execution_status})",
                         {"fired": True, "rule_id": r.trigger_rule_id, "rule_name": name, "rule_execution_id": r.id,
                          "event_id": str(r.triggering_event_id), "status": r.execution_status,
                          "error": r.error_message}), r.id))  # fmt: skip
    for m in matches:
        if (m.rule_id, str(m.event_id)) in done:
            continue
        name = names.get(m.rule_id, f"rule {m.rule_id}")
        entries.append(((m.matched_at, "rule_fired", f"Rule {name!r} matched without firing (threshold, limit or cooldown)",
                         {"fired": False, "rule_id": m.rule_id, "rule_name": name, "event_id": str(m.event_id)}), None))  # fmt: skip
    return entries


def _decisions(key: uuid.UUID, rule_execution_ids: list[int], omitted: dict[str, int]) -> list[tuple[Entry, int]]:
    where = (DecisionLog.incident_id == key) | DecisionLog.event_id.in_(_events_of(key))
    if rule_execution_ids:
        where |= DecisionLog.rule_execution_id.in_(rule_execution_ids)
    entries: list[tuple[Entry, int]] = []
    for d in _latest(DecisionLog.select().where(where), DecisionLog.id, "decision", omitted):
        result = (d.analysis or {}).get("analysis_result") or {}
        confidence = float(d.confidence_score)
        summary = f"Decision: {d.decision_type} by {d.decided_by} (risk {d.risk_level} {d.risk_score}, confidence {confidence})"
        entries.append(((d.created_at, "decision", summary,
                         {"decision_id": d.id, "decision": d.decision_type, "decided_by": d.decided_by,
                          "risk_level": d.risk_level, "risk_score": d.risk_score, "confidence": confidence,
                          "reasoning": d.reasoning, "incident_summary": result.get("incident_summary"),
                          "approval": (d.analysis or {}).get("approval_requirements"),
                          "rule_execution_id": d.rule_execution_id}), d.id))  # fmt: skip
    return entries


def _executions(key: uuid.UUID, decision_ids: list[int], omitted: dict[str, int]) -> list[tuple[Entry, str]]:
    where = Execution.incident_id == key
    if decision_ids:
        where |= Execution.decision_id.in_(decision_ids)
    entries: list[tuple[Entry, str]] = []
    for x in _latest(Execution.select().where(where), Execution.created_at, "execution", omitted):
        details = {"execution_id": str(x.id), "status": x.status, "dry_run": x.dry_run, "requested_by": x.requested_by,
                   "risk_level": x.risk_level, "started_at": iso(x.started_at), "completed_at": iso(x.completed_at),
                   "error": x.error_message, "decision_id": x.decision_id}  # fmt: skip
        entries.append(((x.created_at, "execution", f"Execution {x.status}" + (" (dry run)" if x.dry_run else ""),
                         details), str(x.id)))  # fmt: skip
    return entries


def _approvals(execution_ids: list[str]) -> list[Entry]:
    if not execution_ids:
        return []
    entries: list[Entry] = []
    for a in Approval.select().where(Approval.execution_id.in_(execution_ids)):
        base = {"approval_id": a.id, "execution_id": str(a.execution_id), "risk_level": a.risk_level,
                "risk_score": a.risk_score, "approvers": a.approvers, "reason": a.reason}  # fmt: skip
        entries.append((a.created_at, "approval", f"Approval requested by {a.requested_person or a.requested_by}: {a.reason}",
                        {**base, "status": "requested", "expires_at": iso(a.expires_at)}))  # fmt: skip
        if a.decided_at and a.status != "pending":
            who = a.decided_person or a.decided_by or "the timeout"
            entries.append((a.decided_at, "approval", f"Approval {a.status} by {who}" + (f": {a.comment}" if a.comment else ""),
                            {**base, "status": a.status, "decided_by": who, "comment": a.comment}))  # fmt: skip
    return entries


def _steps(execution_ids: list[str], omitted: dict[str, int]) -> list[Entry]:
    if not execution_ids:
        return []
    query = ExecutionStep.select().where(
        ExecutionStep.execution_id.in_(execution_ids) & ExecutionStep.started_at.is_null(False)
    )
    entries: list[Entry] = []
    for s in _latest(query, ExecutionStep.id, "step", omitted):
        took = (s.completed_at - s.started_at).total_seconds() if s.completed_at else None
        entries.append((s.started_at, "step", f"{s.phase.capitalize()} step {s.name!r} {s.status}",
                        {"execution_id": str(s.execution_id), "phase": s.phase, "action_id": s.action_id, "name": s.name,
                         "status": s.status, "attempts": s.attempts, "started_at": iso(s.started_at),
                         "completed_at": iso(s.completed_at), "duration_s": took, "error": s.error_message}))  # fmt: skip
    return entries

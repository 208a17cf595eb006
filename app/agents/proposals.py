"""An agent's proposal becomes a decision and an execution, exactly as a rule firing does.

:func:`propose` is the agents' one way to act: their :class:`~app.agents.base.AgentAction` is
checked as a response template (the same validation as ``POST /api/v1/rules/responses``), decided
by the decider's policy (:func:`app.decisions.policy.decide`: risk matrix, confidence, maintenance
windows, ``AUTONOMY_MODE``, capped by the agent's automation level), recorded in the decision log
(:func:`app.decisions.analysis.record`) and, when the policy executes, stored as a queued execution
(:func:`app.executions.store.create_execution`) whose gated steps wait for an approval. The caller
sends the execution to the ``execute`` actor after the commit; the executor, approvals, resource
leases, rollbacker and audit trail then treat it as any playbook's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .. import audit
from ..config import Settings
from ..db import in_transaction
from ..decisions import analysis, context, policy, risk
from ..errors import InvalidRule
from ..executions.leases import PRIORITIES, canonical
from ..executions.store import TERMINAL, create_execution, snapshot
from ..models import Execution
from ..notifications import pages, routing
from ..rules.playbooks import parse_playbook
from .base import DEFAULT_PURPOSE, RISK_LEVELS, AgentAction, AgentSettings

logger = logging.getLogger(__name__)

#: Bounds of how far an agent's own confidence moves the decider's prior (those of operators' feedback).
CONFIDENCE_BOUNDS = (-0.5, 0.2)


@dataclass(frozen=True)
class Proposal:
    """What became of a proposal."""

    decision_id: int | None
    #: The execution to send to ``execute`` (None: the policy only recorded the decision).
    execution_id: str | None
    decision: str
    approval_required: bool
    #: A proposal with the same key was still in flight: nothing new was created.
    duplicate: bool = False


def template_of(agent: AgentSettings, action: AgentAction) -> dict[str, Any]:
    """The proposal as a response template, validated like an operator's.

    Raises:
      InvalidRule: naming the field (``type``, ``risk_level``, ``target_resources``, ``actions[0].http.url`` ...).
    """
    if not isinstance(action.type, str) or not action.type.strip():
        raise InvalidRule("an agent action names its type", field="type")
    if action.risk_level not in RISK_LEVELS:
        raise InvalidRule(f"risk_level is one of {', '.join(RISK_LEVELS)}", field="risk_level")
    if not action.target_resources or not all(isinstance(r, str) and r.strip() for r in action.target_resources):
        raise InvalidRule("an agent action declares the resources it targets", field="target_resources")
    if action.purpose is not None and action.purpose not in PRIORITIES:
        raise InvalidRule(f"purpose is one of {', '.join(PRIORITIES)}", field="purpose")
    if action.confidence is not None and not 0.0 <= action.confidence <= 1.0:
        raise InvalidRule("confidence is a number from 0 to 1", field="confidence")
    steps = []
    for step in action.steps:
        declared = step.get("risk_level") if step.get("risk_level") in RISK_LEVELS else "low"
        # the action's risk is a floor for each of its steps: a step may say more, never less
        steps.append({**step, "risk_level": max(declared, action.risk_level, key=RISK_LEVELS.index)})
    remediates = any(risk.category_of(s) == "remediation" for s in steps)
    body: dict[str, Any] = {
        "name": f"{agent.name}: {action.type}",
        "description": action.description,
        "response_type": "remediation" if remediates else "investigation",
        "actions": steps,
        "rollback_actions": [dict(s) for s in action.rollback_steps],
        "max_execution_time_minutes": action.max_execution_time_minutes,
    }
    if agent.approval_required:
        body["approval_required"] = True
    return parse_playbook(body)


def _criticality(targets: list[str]) -> str:
    """The highest criticality the topology gives a target (a host by its name, others by their full name)."""
    found = [context.criticality_of(t.removeprefix("host:"), None) for t in targets]
    return max(found, key=risk.RISK_LEVELS.index, default=risk.DEFAULT_CRITICALITY)


def _maintenance(targets: list[str], now: datetime) -> str | None:
    for target in targets:
        if target.startswith("host:"):
            window = context.maintenance_window({"host": target.removeprefix("host:")}, now)
            if window is not None:
                return window
    return None


def _in_flight(agent: AgentSettings, key: str | None) -> Execution | None:
    if key is None:
        return None
    rows = Execution.select().where(Execution.requested_by == f"agent:{agent.name}", Execution.status.not_in(TERMINAL))
    return next((r for r in rows if (r.definition.get("agent") or {}).get("key") == key), None)


def _gather(agent: AgentSettings, action: AgentAction, template: dict[str, Any], targets: list[str],
            settings: Settings, now: datetime) -> analysis.Gathered:  # fmt: skip
    event, incident = context.event_and_incident(action.event_id, action.incident_id)
    if not event:  # what the proposal is about, for the decision's impact and the approvers
        event = {"title": action.description, "host": targets[0].removeprefix("host:"),
                 "severity": action.risk_level, "source": f"agent:{agent.name}"}  # fmt: skip
    adjustment = 0.0
    if action.confidence is not None:
        prior = policy.PRIOR.get(template["response_type"], 0.75)
        adjustment = min(CONFIDENCE_BOUNDS[1], max(CONFIDENCE_BOUNDS[0], action.confidence - prior))
    window = _maintenance(targets, now)
    situation = policy.Situation(
        event=event, incident=incident, template=template,
        history=policy.History(confidence_adjustment=adjustment),
        context=risk.Context(
            system_criticality=_criticality(targets),
            business_hours=risk.in_business_hours(now, hours=settings.business_hours, timezone=settings.business_timezone),
            maintenance_window=bool(window),
        ),
        maintenance=window, mode=settings.autonomy_mode, automation_level=agent.automation_level,
    )  # fmt: skip
    return analysis.Gathered(situation=situation, template_id=None, template_version=None, rule_id=None,
                             event_id=event.get("id"), incident_id=(incident or {}).get("id"))  # fmt: skip


def propose(agent: AgentSettings, action: AgentAction, *, settings: Settings, now: datetime | None = None) -> Proposal:
    """Decide an agent's proposal and store its execution, as a rule firing is (one transaction).

    Parameters:
      agent: The proposing agent's configuration (its automation level caps the decision).
      action: The proposal.
      settings: ``AUTONOMY_MODE``, business hours.

    Returns:
      The decision and, when the policy executes, the queued execution the caller sends to ``execute``.

    Raises:
      InvalidRule: the proposal is not valid (naming the field); nothing is stored.
    """
    now = now or datetime.now(UTC)
    template = template_of(agent, action)
    targets = sorted({canonical(r) for r in action.target_resources})
    purpose = action.purpose or DEFAULT_PURPOSE.get(agent.kind, "incident")

    def write() -> Proposal:
        running = _in_flight(agent, action.key)
        if running is not None:
            return Proposal(decision_id=running.decision_id, execution_id=str(running.id), decision="remediate",
                            approval_required=False, duplicate=True)  # fmt: skip
        g = _gather(agent, action, template, targets, settings, now)
        d = policy.decide(g.situation)
        actor = f"agent:{agent.name}"
        row = analysis.record(d, g, rule_execution_id=None, actor=actor)
        if d.decision_type == "escalate":
            routing.route(pages.escalation(decision_id=row.id, reasoning=d.reasoning, event_id=g.event_id,
                                           incident_id=g.incident_id, confidence=d.confidence), now=now)  # fmt: skip
        execution = None
        if d.execute:
            definition = {
                **snapshot(template, d.actions, d.assessments, d.gated), "business_impact": d.business_impact,
                "target_resources": targets, "purpose": purpose,
                "agent": {"name": agent.name, "type": agent.kind, "action_type": action.type, "key": action.key,
                          "description": action.description, "estimated_impact": action.estimated_impact,
                          "risk_level": action.risk_level},
            }  # fmt: skip
            execution = create_execution(
                definition=definition, requested_by=actor, decision_id=row.id, event_id=g.event_id,
                incident_id=g.incident_id, max_execution_time_minutes=action.max_execution_time_minutes,
            )  # fmt: skip
        audit.record(audit.Action.AGENT_ACTION_PROPOSED, actor=actor, subject=f"agent:{agent.name}", details={
            "type": action.type, "target_resources": targets, "risk_level": action.risk_level, "purpose": purpose,
            "estimated_impact": action.estimated_impact, "decision_id": row.id, "decision": d.decision_type,
            "execution_id": str(execution.id) if execution else None, "approval_required": d.approval_required,
        })  # fmt: skip
        return Proposal(decision_id=row.id, execution_id=str(execution.id) if execution else None,
                        decision=d.decision_type, approval_required=d.approval_required)  # fmt: skip

    proposal = in_transaction(write)
    logger.info("Agent %r proposed %r on %s: decision %r (%s), execution %r.", agent.name, action.type,
                ", ".join(targets), proposal.decision_id, proposal.decision, proposal.execution_id)  # fmt: skip
    return proposal


"""The decider's work around the policy: gather the situation, ask the LLM, record the decision.

Reads happen in one short transaction, the LLM is asked outside any transaction (it may take
seconds), and the decision with its execution is written in a second transaction. A firing is
decided once: the decision log is unique per firing, so a redelivered message finds the decision
already made and only hands its execution on again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .. import audit
from ..config import Settings
from ..correlation.query import incident_json
from ..db import in_transaction
from ..errors import NotFound
from ..events.query import event_json
from ..executions.store import create_execution, snapshot
from ..models import (
    AuditLog,
    DecisionLog,
    Execution,
    Incident,
    ProcessedEvent,
    ResponseTemplate,
    ResponseTemplateVersion,
    RuleExecution,
)
from ..models.ops import person_of
from ..notifications import pages, routing
from . import context, learning, policy, risk

if TYPE_CHECKING:
    from ..executions.prepared import Writes

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Gathered:
    situation: policy.Situation
    template_id: int | None
    template_version: int | None
    rule_id: int | None
    event_id: str | None
    incident_id: str | None


def _template(template_id: int | None, rule_id: int | None) -> tuple[int | None, int | None, dict[str, Any] | None]:
    row = None
    if template_id is not None:
        row = ResponseTemplate.get_or_none(ResponseTemplate.id == template_id, ResponseTemplate.active == True)  # noqa: E712
    elif rule_id is not None:
        row = (
            ResponseTemplate.select()
            .where(ResponseTemplate.trigger_rule_id == rule_id, ResponseTemplate.active == True)  # noqa: E712
            .order_by(ResponseTemplate.id.desc())
            .first()
        )
    if row is None:
        return None, None, None
    return row.id, row.version, row.response_definition


def gather(
    *, event_id: Any, rule_id: int | None, template_id: int | None, settings: Settings, now: datetime,
    overrides: dict[str, Any] | None = None, read: tuple[dict[str, Any], dict[str, Any] | None] | None = None,
    read_template: tuple[int | None, int | None, dict[str, Any] | None] | None = None,
    read_history: policy.History | None = None,
) -> Gathered:  # fmt: skip
    """Everything the policy looks at (call inside a transaction).

    ``read``, ``read_template``, ``read_history``: what the caller read already (with the firing):
    the event and its incident (as :func:`app.decisions.context.event_and_incident` gives them),
    the template (as :func:`_template` gives it) and its history (:func:`learning.history_for`).
    """
    overrides = overrides or {}
    event, incident = read if read is not None else context.event_and_incident(event_id)
    template_id, version, template = read_template if read_template is not None else _template(template_id, rule_id)
    criticality = overrides.get("system_criticality") or context.criticality_of(event.get("host"), event.get("service"))
    if criticality not in risk.RISK_LEVELS:
        criticality = risk.DEFAULT_CRITICALITY
    business = overrides.get("business_hours")
    if not isinstance(business, bool):
        business = risk.in_business_hours(now, hours=settings.business_hours, timezone=settings.business_timezone)
    window = context.maintenance_window(event, now) if event else None
    if overrides.get("maintenance_window") is True and window is None:
        window = "declared in the request"
    situation = policy.Situation(
        event=event,
        incident=incident,
        template=template,
        history=read_history if read_history is not None else learning.history_for(rule_id, template_id),
        context=risk.Context(system_criticality=criticality, business_hours=business, maintenance_window=bool(window)),
        maintenance=window,
        mode=settings.autonomy_mode,
    )
    return Gathered(
        situation=situation, template_id=template_id, template_version=version, rule_id=rule_id,
        event_id=event.get("id"), incident_id=(incident or {}).get("id"),
    )  # fmt: skip


def llm_summary(g: Gathered) -> dict[str, Any]:
    """The incident summary sent to the LLM: no secrets, only what the decision is about."""
    s = g.situation
    actions = (s.template or {}).get("actions") or []
    return {
        "event": s.event,
        "incident": s.incident,
        "asset_context": s.context.factors(),
        "maintenance_window": s.maintenance,
        "history": {"successes": s.history.successes, "failures": s.history.failures},
        "risk_assessment": [risk.assess(a, s.context).as_json() for a in actions],
        "template": {"name": (s.template or {}).get("name"), "response_type": (s.template or {}).get("response_type")},
    }


def ask_llm(g: Gathered, settings: Settings, *, without_template: bool = False) -> Any:
    """The LLM's analysis, or None (no key, failure, malformed answer: the policy decides alone).

    Parameters:
      without_template: Ask even when no template applies (an operator's analysis on demand): the
        model may then recommend no action, and its summary and reasoning are all it adds.
    """
    if not settings.openai_api_key or (g.situation.template is None and not without_template):
        return None
    from .llm import LlmUnavailable, analyze

    allowed = [
        {"id": str(a["id"]), "name": a.get("name"), "type": a.get("type"), "risk_level": a.get("risk_level", "low"),
         "description": a.get("description")}
        for a in (g.situation.template or {}).get("actions") or []
    ]  # fmt: skip
    summary = {**llm_summary(g), **in_transaction(lambda: context.incident_detail(g.incident_id))}
    try:
        return analyze(summary, allowed_actions=allowed, settings=settings)
    except LlmUnavailable as e:
        logger.warning("LLM analysis failed (%s); the policy decides alone.", e)
        return None


def analysis_json(row: DecisionLog) -> dict[str, Any]:
    """A decision in the shape of the spec's ``POST /api/v1/autonomous/analyze`` response."""
    return {"decision_id": row.id, **(row.analysis or {})}


def _analysis(d: policy.Decision, g: Gathered) -> dict[str, Any]:
    actions = {str(a["id"]): a for a in d.actions}
    h = g.situation.history
    success = round((h.successes + 1) / (h.successes + h.failures + 2), 2)
    return {
        "analysis_result": {
            "recommended_action": d.decision_type,
            "confidence_score": d.confidence,
            "risk_level": d.risk_level,
            "risk_score": round(d.risk_score, 2),
            "business_impact": d.business_impact,
            "reasoning": d.reasoning,
            "decided_by": d.decided_by,
            "incident_summary": d.summary,
            "estimated_resolution_time_minutes": sum(int(a.get("timeout_minutes") or 5) for a in d.actions) or None,
        },
        "recommended_actions": [
            {
                "action_id": a.action_id,
                "action_type": a.category,
                "action_name": actions[a.action_id].get("name") or a.action_id,
                "description": actions[a.action_id].get("description"),
                "risk_level": a.level,
                "risk_score": round(a.score, 2),
                "approval_required": a.action_id in d.gated,
                "estimated_duration_minutes": actions[a.action_id].get("timeout_minutes") or 5,
                "success_probability": success,
            }
            for a in d.assessments
        ],
        "approval_requirements": {
            "required": d.approval_required,
            "reason": d.approval_reason,
            "approvers": list(policy.APPROVER_ROLES) if d.approval_required else [],
        },
        "response_template_id": g.template_id,
        "template_version": g.template_version,
    }


def record(d: policy.Decision, g: Gathered, *, rule_execution_id: int | None, actor: str,
           writes: Writes | None = None) -> DecisionLog:  # fmt: skip
    """Store a decision (call inside a transaction); its audit row goes with ``writes`` when given."""
    row = DecisionLog.create(
        event_id=g.event_id,
        decision_type=d.decision_type,
        confidence_score=d.confidence,
        reasoning=d.reasoning,
        recommended_actions=[a.as_json() for a in d.assessments],
        rule_execution_id=rule_execution_id,
        incident_id=g.incident_id,
        trigger_rule_id=g.rule_id,
        response_template_id=g.template_id,
        template_version=g.template_version,
        risk_score=d.risk_score,
        risk_level=d.risk_level,
        decided_by=d.decided_by,
        analysis=_analysis(d, g),
    )
    details = {"decision": d.decision_type, "confidence": d.confidence, "decided_by": d.decided_by,
               "approval": d.approval_reason, "rule_execution_id": rule_execution_id}  # fmt: skip
    if writes is None:
        audit.record(audit.Action.DECISION_MADE, actor=actor, subject=f"decision:{row.id}", details=details)
    else:
        writes.insert(AuditLog, action=audit.Action.DECISION_MADE.value, actor=actor, person=person_of(actor),
                      subject=f"decision:{row.id}", details=details)  # fmt: skip
    return row


def _firing(rule_execution_id: int) -> RuleExecution | None:
    """The firing, read in one statement with what the decider reads about it, each None when there is none.

    Its attributes: ``ctx_decided`` (its decision's id, if one was made), ``ctx_event``,
    ``ctx_incident`` (the event's), ``ctx_template`` (the active template :func:`_template` would
    read: the firing's, else the rule's latest) and ``ctx_stats`` (the rule's and the template's
    :class:`~app.models.LearningStat`, for :func:`learning.history_of`).
    """
    from peewee import JOIN, SQL, fn

    from ..executions import prepared
    from ..models import LearningStat

    latest = ResponseTemplate.alias("latest")
    rule_stat, template_stat = LearningStat.alias("rule_stat"), LearningStat.alias("template_stat")

    def build() -> Any:
        by_rule = latest.select(fn.MAX(latest.id)).where(
            (latest.trigger_rule_id == RuleExecution.trigger_rule_id) & latest.active
        )
        template_id = fn.COALESCE(RuleExecution.response_template_id, by_rule)
        return (
            RuleExecution.select(RuleExecution, DecisionLog.id, ProcessedEvent, Incident, ResponseTemplate.id,
                                 ResponseTemplate.version, ResponseTemplate.response_definition, rule_stat,
                                 template_stat)
            .join_from(RuleExecution, DecisionLog, JOIN.LEFT_OUTER,
                       on=DecisionLog.rule_execution_id == RuleExecution.id, attr="ctx_decided")
            .join_from(RuleExecution, ProcessedEvent, JOIN.LEFT_OUTER,
                       on=ProcessedEvent.id == RuleExecution.triggering_event_id, attr="ctx_event")
            .join_from(ProcessedEvent, Incident, JOIN.LEFT_OUTER, on=Incident.id == ProcessedEvent.correlation_id,
                       attr="ctx_incident")
            .join_from(RuleExecution, ResponseTemplate, JOIN.LEFT_OUTER,
                       on=(ResponseTemplate.id == template_id) & ResponseTemplate.active, attr="ctx_template")
            .join_from(RuleExecution, rule_stat, JOIN.LEFT_OUTER,
                       on=(rule_stat.scope == SQL("'rule'")) & (rule_stat.scope_id == RuleExecution.trigger_rule_id),
                       attr="ctx_rule_stat")
            .join_from(ResponseTemplate, template_stat, JOIN.LEFT_OUTER,
                       on=(template_stat.scope == SQL("'template'")) & (template_stat.scope_id == ResponseTemplate.id),
                       attr="ctx_template_stat")
            .where(RuleExecution.id == rule_execution_id)
        )  # fmt: skip

    rows = prepared.joined("decider-firing", build, [rule_execution_id])
    if not rows:
        return None
    firing = rows[0]

    def found(row: Any) -> Any:
        return row if row is not None and row.get_id() is not None else None

    event = found(getattr(firing, "ctx_event", None))
    template = found(getattr(firing, "ctx_template", None))
    firing.ctx_event, firing.ctx_template = event, template
    firing.ctx_incident = found(getattr(event, "ctx_incident", None))
    firing.ctx_decided = found(getattr(firing, "ctx_decided", None))
    stats = (getattr(firing, "ctx_rule_stat", None), getattr(template, "ctx_template_stat", None))
    firing.ctx_stats = tuple(s if s is not None and s.scope is not None else None for s in stats)
    return firing


def decide_firing(rule_execution_id: int, *, settings: Settings, now: datetime | None = None) -> Execution | None:
    """Decide a rule firing; return the execution to run (queued), if any. Idempotent per firing.

    PERF (issue #14): without an LLM to ask (no key), the firing is read, decided and written in one
    transaction, and the rows nobody reads back go in one round trip at its end.
    """
    now = now or datetime.now(UTC)

    def read() -> Gathered | Execution | None:
        firing = _firing(rule_execution_id)  # with its decision's id, event and incident: one round trip
        done = getattr(firing, "ctx_decided", None)
        if firing is None:
            done = DecisionLog.get_or_none(DecisionLog.rule_execution_id == rule_execution_id)
        if done is not None:
            return Execution.select().where(Execution.decision_id == done.id).first()
        if firing is None:
            logger.warning("Firing %r no longer exists.", rule_execution_id)
            return None
        event, incident = getattr(firing, "ctx_event", None), getattr(firing, "ctx_incident", None)
        loaded = (event_json(event) if event else {}, incident_json(incident) if incident else None)
        template = getattr(firing, "ctx_template", None)
        read_template = (
            (template.id, template.version, template.response_definition) if template else (None, None, None)
        )
        history = learning.history_of(*getattr(firing, "ctx_stats"))  # noqa: B009 - set by _firing
        return gather(event_id=firing.triggering_event_id, rule_id=firing.trigger_rule_id,
                      template_id=firing.response_template_id, settings=settings, now=now, read=loaded,
                      read_template=read_template, read_history=history)  # fmt: skip

    def write(g: Gathered, d: policy.Decision) -> Execution | None:
        from ..executions.prepared import Writes

        writes = Writes()
        row = record(d, g, rule_execution_id=rule_execution_id, actor="decider", writes=writes)
        writes.add(RuleExecution.update(execution_status=f"decided:{d.decision_type}").where(
            RuleExecution.id == rule_execution_id))  # fmt: skip
        if d.decision_type == "escalate":
            writes.flush()  # routing reads and writes the notifications' tables: in order
            page = pages.escalation(decision_id=row.id, reasoning=d.reasoning, event_id=g.event_id,
                                    incident_id=g.incident_id, confidence=d.confidence)  # fmt: skip
            routing.route(page, now=now)
        execution = None
        if d.execute:
            assert g.situation.template is not None
            execution = create_execution(
                definition={**snapshot(g.situation.template, d.actions, d.assessments, d.gated),
                            "business_impact": d.business_impact},
                requested_by="decider", decision_id=row.id, rule_execution_id=rule_execution_id, event_id=g.event_id,
                incident_id=g.incident_id, template_id=g.template_id, template_version=g.template_version,
                max_execution_time_minutes=int(g.situation.template.get("max_execution_time_minutes") or 30),
                writes=writes,
            )  # fmt: skip
        writes.flush()
        return execution

    if not settings.openai_api_key:  # nothing to ask outside a transaction

        def at_once() -> Execution | None:
            found = read()
            return write(found, policy.decide(found.situation)) if isinstance(found, Gathered) else found

        return in_transaction(at_once)

    found = in_transaction(read)
    if not isinstance(found, Gathered):
        return found
    g = found
    d = policy.decide(_with_llm(g, settings))

    def write_once() -> Execution | None:
        if DecisionLog.get_or_none(DecisionLog.rule_execution_id == rule_execution_id) is not None:
            return None  # another worker decided it meanwhile; it hands the execution on
        return write(g, d)

    return in_transaction(write_once)


def _with_llm(g: Gathered, settings: Settings, *, without_template: bool = False) -> policy.Situation:
    analysis = ask_llm(g, settings, without_template=without_template)
    if analysis is None:
        return g.situation
    from dataclasses import replace

    return replace(g.situation, llm=analysis)


def analyze_event(
    body: dict[str, Any], *, settings: Settings, actor: str, now: datetime | None = None
) -> dict[str, Any]:
    """``POST /api/v1/autonomous/analyze``: the same analysis, on demand, for an event.

    The template is the one of the latest rule that fired for the event, if any. The configured
    LLM is asked either way: with no template it analyses the event and recommends no action.

    Raises:
      NotFound: no such event.
    """
    now = now or datetime.now(UTC)
    event_id = str(body.get("event_id"))

    def read() -> Gathered:
        if ProcessedEvent.get_or_none(ProcessedEvent.id == event_id) is None:
            raise NotFound(f"no event {event_id}")
        firing = (
            RuleExecution.select()
            .where(RuleExecution.triggering_event_id == event_id)
            .order_by(RuleExecution.id.desc())
            .first()
        )
        return gather(
            event_id=event_id, rule_id=firing.trigger_rule_id if firing else None,
            template_id=firing.response_template_id if firing else None, settings=settings, now=now,
            overrides=body.get("context") or {},
        )  # fmt: skip

    g = in_transaction(read)
    d = policy.decide(_with_llm(g, settings, without_template=True))
    row = in_transaction(lambda: record(d, g, rule_execution_id=None, actor=actor))
    return analysis_json(row)


def template_definition(template_id: int, version: int | None) -> dict[str, Any]:
    """A template as it was at ``version`` (the current one when None)."""
    if version is not None:
        kept = ResponseTemplateVersion.get_or_none(
            ResponseTemplateVersion.template_id == template_id, ResponseTemplateVersion.version == version
        )
        if kept is not None:
            return dict(kept.definition)
    row = ResponseTemplate.get_or_none(ResponseTemplate.id == template_id)
    if row is None:
        raise NotFound(f"no response template {template_id}")
    return dict(row.response_definition)

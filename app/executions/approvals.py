"""Answers to approval requests: approve, reject, or the timeout's rejection.

Who may answer: a key whose role is among the request's approvers, held by another person than
the requester's (two keys of one person are one person), and, to approve, by none of the persons
who wrote the rule or template that caused the run (unless APPROVAL_ALLOW_AUTHOR). Every answer
is audited with the persons. The timeout is a delayed message scheduled when the request is
made; when it arrives after an answer it changes nothing.

An approval hands out a token: it pre-approves, once, another execution of the same decision
(``POST /autonomous/execute``) for the approved actions only, until the request's ``expires_at``;
:mod:`app.executions.control` redeems it.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import UTC, datetime
from typing import Any

from .. import audit
from ..errors import ActionNotAllowed, Conflict, NotFound
from ..models import (
    Approval,
    DecisionLog,
    Execution,
    ResponseTemplate,
    ResponseTemplateVersion,
    RuleExecution,
    TriggerRule,
)
from ..models.ops import person_of
from ..present import iso
from .runner import locked
from .store import approval_json, cancel_execution, log

logger = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


def authors(row: Execution) -> set[str]:
    """The persons who created or last changed the rule and the template (its version) behind ``row``."""
    persons: set[str | None] = set()
    if row.response_template_id is not None:
        template = ResponseTemplate.get_or_none(ResponseTemplate.id == row.response_template_id)
        if template is not None:
            persons |= {template.created_by_person, template.updated_by_person}
        version = ResponseTemplateVersion.get_or_none(
            (ResponseTemplateVersion.template_id == row.response_template_id)
            & (ResponseTemplateVersion.version == row.template_version)
        )
        if version is not None and version.created_by:
            persons.add(person_of(version.created_by))
    rule_id = None
    if row.decision_id is not None:
        decision = DecisionLog.get_or_none(DecisionLog.id == row.decision_id)
        rule_id = decision.trigger_rule_id if decision else None
    if rule_id is None and row.rule_execution_id is not None:
        firing = RuleExecution.get_or_none(RuleExecution.id == row.rule_execution_id)
        rule_id = firing.trigger_rule_id if firing else None
    if rule_id is not None:
        rule = TriggerRule.get_or_none(TriggerRule.id == rule_id)
        if rule is not None:
            persons |= {rule.created_by_person, rule.updated_by_person}
    return {p for p in persons if p}


def answer(execution_id: str, *, approve: bool, actor: str, role: str, comment: str | None = None,
           allow_author: bool = False, now: datetime | None = None) -> dict[str, Any]:  # fmt: skip
    """Approve or reject the pending approval of an execution (call inside a transaction).

    Parameters:
      actor: Who answers (``key:<id>:<name>``); compared with the requester and authors by person.
      allow_author: APPROVAL_ALLOW_AUTHOR: an author of the rule or template may approve its runs.

    Returns:
      The approval as the API shows it; when approved it carries the single-use ``approval_token``
      and the caller sends the execution to ``execute``.

    Raises:
      NotFound: no such execution. Conflict: nothing awaits an approval.
      ActionNotAllowed: the requester's person answering its own request, a role that may not
        approve, or an author of the rule or template approving its run.
    """
    now = now or _now()
    row = locked(execution_id)
    if row is None:
        raise NotFound(f"no execution {execution_id}")
    approval = Approval.get_or_none(Approval.execution_id == row.id)
    if approval is None or approval.status != "pending" or row.status != "awaiting_approval":
        raise Conflict(f"execution {execution_id} is {row.status}: no approval is pending")
    person, requester = person_of(actor), person_of(approval.requested_by)
    if person == requester:
        raise ActionNotAllowed(f"{person!r} requested this execution: another person must approve or reject it")
    if role not in approval.approvers:
        raise ActionNotAllowed(f"role {role!r} is not among the approvers {approval.approvers}")
    if approve and not allow_author and person in authors(row):
        raise ActionNotAllowed(f"{person!r} wrote the rule or template behind this execution: "
                               "another person must approve it (APPROVAL_ALLOW_AUTHOR is false)")  # fmt: skip
    approval.status = "approved" if approve else "rejected"
    approval.decided_by, approval.decided_at, approval.comment = actor, now, comment
    approval.requested_person, approval.decided_person = requester, person
    approval.save()
    verb = "approved" if approve else "rejected"
    log(row.id, f"Approval {approval.id} {verb} by {actor} ({person})" + (f": {comment}" if comment else "."))
    audit.record(audit.outcome("approval", verb), actor=actor, subject=f"execution:{row.id}",
                 details={"approval_id": approval.id, "comment": comment, "requested_by": requester})  # fmt: skip
    if approve:
        row.status = "queued"
        row.save()
        token = secrets.token_urlsafe(24)
        approval.token_hash = hashlib.sha256(token.encode()).hexdigest()
        approval.token_actions = sorted({str(a["action_id"]) for a in approval.requested_actions})
        approval.save()
        return {**approval_json(approval), "approval_token": token,
                "approval_token_scope": {"decision_id": row.decision_id, "action_ids": approval.token_actions,
                                         "expires_at": iso(approval.expires_at), "uses": 1}}  # fmt: skip
    cancel_execution(row, f"rejected by {actor}", now)
    return approval_json(approval)


def expire(approval_id: int, *, now: datetime | None = None) -> str:
    """Reject a request still pending at its timeout; return what happened.

    Returns ``expired``, ``answered`` (nothing to do) or ``early`` (the caller schedules it again).
    """
    now = now or _now()
    approval = Approval.get_or_none(Approval.id == approval_id)
    if approval is None or approval.status != "pending":
        return "answered"
    row = locked(str(approval.execution_id))
    approval = Approval.get_by_id(approval_id)  # read again under the execution's lock
    if approval.status != "pending":
        return "answered"
    if approval.expires_at > now:
        return "early"
    approval.status, approval.decided_by, approval.decided_at = "rejected", "system:timeout", now
    approval.comment = f"no answer within {approval.timeout_minutes} minutes"
    approval.save()
    audit.record(audit.Action.APPROVAL_REJECTED, actor="system:timeout", subject=f"execution:{approval.execution_id}",
                 details={"approval_id": approval.id, "reason": approval.comment})  # fmt: skip
    if row is not None and row.status == "awaiting_approval":
        cancel_execution(row, f"approval {approval.id} unanswered within {approval.timeout_minutes} minutes", now)
    return "expired"

"""Operators' requests on executions: execute a decision's actions, cancel, roll back.

``POST /api/v1/autonomous/execute`` runs the actions of a decision's template (as the decision
saw it), re-assessed for risk now. Actions that need an approval wait for one unless the request
carries an ``approval_token`` handed out by an approval of the same decision. A token is:

- single use: it is used up by a conditional update, so of two concurrent requests one wins;
- bound to its decision and to the actions the approval covered: a request whose gated actions
  (as assessed now) are not all among them is refused, naming the others;
- bound to its approver: the approver's key must still be valid, and the approver's person may
  not redeem it (that would approve their own request);
- valid until the approval request's ``expires_at``.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from .. import audit
from ..config import Settings
from ..decisions import policy, risk
from ..decisions.analysis import gather, template_definition
from ..errors import ActionNotAllowed, Conflict, InvalidInput, NotFound
from ..models import Approval, DecisionLog, Execution
from ..models.ops import key_revoked, person_of
from .runner import APPROVER_ROLES, locked
from .store import TERMINAL, cancel_execution, create_execution, log, snapshot


def _options(body: dict[str, Any]) -> dict[str, Any]:
    options = body.get("execution_options") or {}
    if not isinstance(options, dict):
        raise InvalidInput("execution_options is an object", field="execution_options")
    for flag in ("dry_run", "rollback_on_failure"):
        if flag in options and not isinstance(options[flag], bool):
            raise InvalidInput(f"{flag} is true or false", field=f"execution_options.{flag}")
    minutes = options.get("max_execution_time_minutes", 30)
    if not isinstance(minutes, int) or isinstance(minutes, bool) or not 1 <= minutes <= 1440:
        raise InvalidInput("max_execution_time_minutes is an integer from 1 to 1440",
                           field="execution_options.max_execution_time_minutes")  # fmt: skip
    return {"dry_run": options.get("dry_run", False), "rollback_on_failure": options.get("rollback_on_failure", True),
            "max_execution_time_minutes": minutes}  # fmt: skip


def _token_approval(token: Any, decision_id: int, *, actor: str, now: datetime) -> Approval | None:
    """The approval whose token ``token`` is, checked for ``decision_id``, ``actor`` and ``now``.

    Raises:
      InvalidInput: not a string. Conflict: the token was used already.
      ActionNotAllowed: unknown, expired, for another decision, redeemed by its approver, or
        its approver's key is revoked.
    """
    if token is None:
        return None
    if not isinstance(token, str):
        raise InvalidInput("approval_token is a string", field="approval_token")
    approval = Approval.get_or_none(Approval.token_hash == hashlib.sha256(token.encode()).hexdigest())
    if approval is None or approval.status != "approved":
        raise ActionNotAllowed("the approval_token is not valid")
    execution = Execution.get_or_none(Execution.id == approval.execution_id)
    if execution is None or execution.decision_id != decision_id:
        raise ActionNotAllowed(f"the approval_token was given for another decision, not decision {decision_id}")
    if approval.token_used_at is not None:
        raise Conflict(f"the approval_token of approval {approval.id} was used already "
                       f"(execution {approval.token_used_for}): a token is good for one execution")  # fmt: skip
    if approval.expires_at <= now:
        raise ActionNotAllowed(f"the approval_token expired with its request at {approval.expires_at.isoformat()}")
    approver = approval.decided_person or person_of(approval.decided_by or "")
    if person_of(actor) == approver:
        raise ActionNotAllowed(f"{approver!r} gave this approval and cannot use its token: "
                               "another person requests the execution")  # fmt: skip
    if key_revoked(approval.decided_by or ""):
        raise ActionNotAllowed(f"the key that gave approval {approval.id} has been revoked")
    return approval


def _check_scope(token: Approval, gated: set[str]) -> None:
    """Every action that needs an approval now is one the token's approval covered.

    Raises:
      ActionNotAllowed: naming the gated actions outside the approval.
    """
    approved = sorted(str(a) for a in token.token_actions or [])
    outside = sorted(gated - set(approved))
    if outside:
        raise ActionNotAllowed(f"the approval_token approves only {approved}: {outside} need their own approval")


def _redeem(token: Approval, *, actor: str, execution_id: Any, now: datetime) -> None:
    """Use the token up, once: a conditional update, so of two concurrent requests one wins.

    Raises:
      Conflict: another request used it first.
    """
    used = (
        Approval.update(token_used_at=now, token_used_by=actor, token_used_for=execution_id)
        .where(Approval.id == token.id, Approval.token_used_at.is_null())
        .execute()
    )
    if used != 1:
        raise Conflict(f"the approval_token of approval {token.id} was used already: a token is good for one execution")


def request_execution(body: Any, *, settings: Settings, actor: str, now: datetime | None = None) -> Execution:
    """Create an execution from the spec's execute body (call inside a transaction).

    Raises:
      InvalidInput: a malformed body. NotFound: no such decision.
      ActionNotAllowed: AUTONOMY_MODE is off, an invalid approval token, or a decision with no template.
    """
    now = now or datetime.now(UTC)
    if not isinstance(body, dict) or not isinstance(body.get("decision_id"), int):
        raise InvalidInput("decision_id (an integer) is required", field="decision_id")
    if settings.autonomy_mode == "off":
        raise ActionNotAllowed("AUTONOMY_MODE is off: decisions are recorded only, nothing is executed")
    options = _options(body)
    row = DecisionLog.get_or_none(DecisionLog.id == body["decision_id"])
    if row is None:
        raise NotFound(f"no decision {body['decision_id']}")
    if row.response_template_id is None:
        raise ActionNotAllowed(f"decision {row.id} has no response template: there is nothing to execute")
    template = template_definition(row.response_template_id, row.template_version)
    ids = body.get("action_ids")
    actions = template.get("actions") or []
    if ids is not None:
        if not isinstance(ids, list) or not all(isinstance(i, str | int) for i in ids):
            raise InvalidInput("action_ids is a list of action ids", field="action_ids")
        unknown = {str(i) for i in ids} - {str(a["id"]) for a in actions}
        if unknown:
            raise InvalidInput(f"unknown action ids {sorted(unknown)}", field="action_ids")
        actions = policy.with_dependencies(actions, {str(i) for i in ids})
    g = gather(event_id=row.event_id, rule_id=row.trigger_rule_id, template_id=None, settings=settings, now=now)
    situation = g.situation
    assessments = [risk.assess(a, situation.context) for a in actions]
    dangerous = situation.history.requires_approval or template.get("approval_required") is True
    gated = {a.action_id for a in assessments if a.approval_required or dangerous}
    token = _token_approval(body.get("approval_token"), row.id, actor=actor, now=now)
    if token is not None and gated:
        _check_scope(token, gated)
    execution = create_execution(
        definition={**snapshot(template, actions, assessments, gated), "business_impact": None},
        requested_by=actor, decision_id=row.id, event_id=row.event_id, incident_id=row.incident_id,
        template_id=row.response_template_id, template_version=row.template_version, **options,
    )  # fmt: skip
    if token is not None and gated:
        _redeem(token, actor=actor, execution_id=execution.id, now=now)
        Approval.create(
            execution_id=execution.id, status="approved", requested_by=actor, approvers=APPROVER_ROLES,
            reason=f"approved beforehand with the token of approval {token.id}",
            requested_actions=[{"action_id": action_id} for action_id in sorted(gated)],
            timeout_minutes=settings.approval_timeout_minutes, expires_at=now, decided_by=token.decided_by,
            decided_at=now, requested_person=person_of(actor), decided_person=token.decided_person,
        )  # fmt: skip
        log(execution.id, f"Pre-approved by {token.decided_by} (approval {token.id}, its token now used up).")
        audit.record(audit.Action.APPROVAL_TOKEN_USED, actor=actor, subject=f"execution:{execution.id}",
                     details={"approval_id": token.id, "action_ids": sorted(gated), "approved_by": token.decided_by})  # fmt: skip
    return execution


def cancel(execution_id: str, *, actor: str) -> Execution:
    """Stop an execution: no further step starts (a running step finishes)."""
    row = locked(execution_id)
    if row is None:
        raise NotFound(f"no execution {execution_id}")
    if row.status in TERMINAL or row.status == "rolling_back":
        raise Conflict(f"execution {execution_id} is already {row.status}")
    cancel_execution(row, f"cancelled by {actor}", datetime.now(UTC))
    Approval.update(
        status="rejected", decided_by=actor, decided_at=datetime.now(UTC), comment="execution cancelled"
    ).where(Approval.execution_id == row.id, Approval.status == "pending").execute()
    audit.record(audit.Action.EXECUTION_CANCELLED, actor=actor, subject=f"execution:{row.id}")
    return row


def check_rollback(execution_id: str) -> Execution:
    """The execution may be rolled back (the rollbacker does the work)."""
    from .rollback import ROLLBACK_FROM

    row = Execution.get_or_none(Execution.id == execution_id)
    if row is None:
        raise NotFound(f"no execution {execution_id}")
    if row.status not in ROLLBACK_FROM:
        raise Conflict(f"execution {execution_id} is {row.status}: only a finished execution can be rolled back")
    if row.dry_run:
        raise Conflict("a dry run changed nothing: there is nothing to roll back")
    return row


__all__ = ["cancel", "check_rollback", "request_execution"]

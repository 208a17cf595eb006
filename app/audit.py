"""The audit log: who did what to which object, when and why, in one vocabulary.

Every change an operator, a key or an actor makes is written here, through :func:`record`,
inside the transaction of the change (so a change and its audit row commit or roll back
together). Actions are past tense and name one noun per object kind
(``trigger_rule.created``, ``approval.approved``).

Rows written before this vocabulary keep their old names; :data:`RENAMED` maps them.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from .models import AuditLog


class Action(StrEnum):
    """What was done; the value is what the ``action`` column holds."""

    AGENT_ACTION_PROPOSED = "agent_action.proposed"
    AGENT_CONFIGURED = "agent.configured"
    AGENT_STARTED = "agent.started"
    AGENT_STOPPED = "agent.stopped"
    API_KEY_CREATED = "api_key.created"
    API_KEY_REVOKED = "api_key.revoked"
    APPROVAL_REQUESTED = "approval.requested"
    APPROVAL_APPROVED = "approval.approved"
    APPROVAL_REJECTED = "approval.rejected"
    APPROVAL_TOKEN_USED = "approval.token_used"
    APPROVAL_LINK_REDEEMED = "approval_link.redeemed"
    CONSOLE_SESSION_STARTED = "console_session.started"
    CONSOLE_SESSION_ENDED = "console_session.ended"
    DEAD_LETTERS_REPLAYED = "dead_letters.replayed"
    DECISION_MADE = "decision.made"
    EXECUTION_CREATED = "execution.created"
    EXECUTION_COMPLETED = "execution.completed"
    EXECUTION_FAILED = "execution.failed"
    EXECUTION_CANCELLED = "execution.cancelled"
    FEEDBACK_RECORDED = "feedback.recorded"
    INCIDENT_ACKNOWLEDGED = "incident.acknowledged"
    INCIDENT_RESOLVED = "incident.resolved"
    INCIDENT_CLOSED = "incident.closed"
    INCIDENT_REOPENED = "incident.reopened"
    INCIDENT_ASSIGNED = "incident.assigned"
    INCIDENT_MERGED = "incident.merged"
    INCIDENT_SPLIT = "incident.split"
    INCIDENT_NOTE_CREATED = "incident_note.created"
    MAINTENANCE_WINDOW_CREATED = "maintenance_window.created"
    MAINTENANCE_WINDOW_UPDATED = "maintenance_window.updated"
    MAINTENANCE_WINDOW_DELETED = "maintenance_window.deleted"
    NOTIFICATION_FAILED = "notification.failed"
    NOTIFICATION_RETRIED = "notification.retried"
    NOTIFICATION_POLICY_CREATED = "notification_policy.created"
    NOTIFICATION_POLICY_UPDATED = "notification_policy.updated"
    NOTIFICATION_POLICY_DELETED = "notification_policy.deleted"
    RESPONSE_TEMPLATE_CREATED = "response_template.created"
    RESPONSE_TEMPLATE_UPDATED = "response_template.updated"
    RESPONSE_TEMPLATE_DEACTIVATED = "response_template.deactivated"
    RESPONSE_TEMPLATE_APPROVAL_REQUIREMENT_CLEARED = "response_template.approval_requirement_cleared"
    ROLLBACK_STARTED = "rollback.started"
    ROLLBACK_COMPLETED = "rollback.completed"
    ROLLBACK_FAILED = "rollback.failed"
    ROLLBACK_STEP_COMPLETED = "rollback_step.completed"
    ROLLBACK_STEP_FAILED = "rollback_step.failed"
    SECRET_CREATED = "secret.created"
    SECRET_UPDATED = "secret.updated"
    SECRET_DELETED = "secret.deleted"
    SECRET_ROTATED = "secret.rotated"
    SILENCE_CREATED = "silence.created"
    SILENCE_UPDATED = "silence.updated"
    SILENCE_EXPIRED = "silence.expired"
    STEP_COMPLETED = "step.completed"
    STEP_FAILED = "step.failed"
    SYSLOG_RULE_IMPORTED = "syslog_rule.imported"
    TOPOLOGY_REPLACED = "topology.replaced"
    TOPOLOGY_PATCHED = "topology.patched"
    TOPOLOGY_IMPORTED = "topology.imported"
    TOPOLOGY_MIGRATED = "topology.migrated"
    TRIGGER_RULE_CREATED = "trigger_rule.created"
    TRIGGER_RULE_UPDATED = "trigger_rule.updated"
    TRIGGER_RULE_DELETED = "trigger_rule.deleted"


#: Old action names (rows written before this vocabulary) -> the action they mean now.
RENAMED: dict[str, Action] = {
    "api_key.create": Action.API_KEY_CREATED,
    "api_key.revoke": Action.API_KEY_REVOKED,
    "maintenance.created": Action.MAINTENANCE_WINDOW_CREATED,
    "maintenance.updated": Action.MAINTENANCE_WINDOW_UPDATED,
    "maintenance.deleted": Action.MAINTENANCE_WINDOW_DELETED,
    "response_template.create": Action.RESPONSE_TEMPLATE_CREATED,
    "response_template.update": Action.RESPONSE_TEMPLATE_UPDATED,
    "response_template.deactivate": Action.RESPONSE_TEMPLATE_DEACTIVATED,
    "template.approval_requirement_cleared": Action.RESPONSE_TEMPLATE_APPROVAL_REQUIREMENT_CLEARED,
    "secret.create": Action.SECRET_CREATED,
    "secret.update": Action.SECRET_UPDATED,
    "secret.delete": Action.SECRET_DELETED,
    "secret.rotate": Action.SECRET_ROTATED,
    "syslog_rules.import": Action.SYSLOG_RULE_IMPORTED,
    "topology.replace": Action.TOPOLOGY_REPLACED,
    "trigger_rule.create": Action.TRIGGER_RULE_CREATED,
    "trigger_rule.update": Action.TRIGGER_RULE_UPDATED,
    "trigger_rule.delete": Action.TRIGGER_RULE_DELETED,
}


def record(action: Action, *, actor: str, subject: str | None, details: dict[str, Any] | None = None) -> AuditLog:
    """Append one audit row (call inside the transaction of the change it records).

    Parameters:
      action: What was done.
      actor: Who did it: ``key:<id>:<name>`` for an API key, ``cli``, or an actor's name
        (``executor``, ``system:timeout``). The row's ``person`` is the person behind it
        (a key's person, else the actor itself), resolved when the row is written.
      subject: The object, as ``<kind>:<id>`` (``trigger_rule:7``, ``execution:<uuid>``).
      details: What an operator needs to know why (JSON; never a secret's value).

    Returns:
      The row written.
    """
    return AuditLog.create(action=action.value, actor=actor, subject=subject, details=details)


def outcome(kind: str, status: str) -> Action:
    """The action for an object that reached ``status`` (``outcome("execution", "failed")``).

    Raises:
      ValueError: ``kind.status`` is not in the vocabulary.
    """
    return Action(f"{kind}.{status}")

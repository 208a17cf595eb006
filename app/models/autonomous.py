"""Tables of the ``autonomous`` schema (technical architecture, "Autonomous Schema")."""

from __future__ import annotations

import peewee

from ..db import BaseModel, JSONField, TimestampField
from ..timeutil import now


class ActionDefinition(BaseModel):
    id = peewee.BigAutoField()
    action_name = peewee.CharField(max_length=200)
    action_type = peewee.CharField(max_length=50)
    action_category = peewee.CharField(max_length=100, null=True)
    automation_script_id = peewee.IntegerField(null=True)
    risk_level = peewee.CharField(max_length=20, default="medium")
    approval_required = peewee.BooleanField(default=True)
    rollback_script_id = peewee.IntegerField(null=True)
    estimated_duration_minutes = peewee.IntegerField(null=True)
    success_criteria = JSONField(null=True)
    created_at = TimestampField(default=now)

    class Meta:
        schema = "autonomous"
        table_name = "action_definitions"


class DecisionLog(BaseModel):
    id = peewee.BigAutoField()
    event_id = peewee.UUIDField(null=True, index=True)
    decision_type = peewee.CharField(max_length=50)
    confidence_score = peewee.DecimalField(max_digits=3, decimal_places=2)
    reasoning = peewee.TextField()
    recommended_actions = JSONField(null=True)
    human_override = peewee.BooleanField(default=False)
    override_reason = peewee.TextField(null=True)
    decision_outcome = peewee.CharField(max_length=50, null=True)
    created_at = TimestampField(default=now)
    # Beyond the spec's columns: what the decision was about and how it was reached.
    #: The rule firing decided on; unique, so a redelivered firing is decided once.
    rule_execution_id = peewee.BigIntegerField(null=True, unique=True)
    incident_id = peewee.UUIDField(null=True)
    trigger_rule_id = peewee.BigIntegerField(null=True)
    response_template_id = peewee.BigIntegerField(null=True)
    template_version = peewee.IntegerField(null=True)
    risk_score = peewee.FloatField(null=True)
    risk_level = peewee.CharField(max_length=20, null=True)
    #: ``policy`` or ``llm``: which path produced the decision.
    decided_by = peewee.CharField(max_length=20, default="policy")
    #: The full analysis as the API shows it (analysis_result, recommended_actions, approval_requirements).
    analysis = JSONField(null=True)

    class Meta:
        schema = "autonomous"
        table_name = "decision_log"


class LearningData(BaseModel):
    id = peewee.BigAutoField()
    event_pattern_id = peewee.BigIntegerField(null=True)
    decision_id = peewee.BigIntegerField(null=True)
    action_taken = JSONField(null=True)
    outcome_success = peewee.BooleanField(null=True)
    outcome_metrics = JSONField(null=True)
    lessons_learned = peewee.TextField(null=True)
    knowledge_updates = JSONField(null=True)
    created_at = TimestampField(default=now)

    class Meta:
        schema = "autonomous"
        table_name = "learning_data"


class Execution(BaseModel):
    """One run of a response template's actions (the spec's ``exec_…``)."""

    id = peewee.UUIDField(primary_key=True)
    decision_id = peewee.BigIntegerField(null=True, index=True)
    rule_execution_id = peewee.BigIntegerField(null=True)
    event_id = peewee.UUIDField(null=True, index=True)
    incident_id = peewee.UUIDField(null=True)
    response_template_id = peewee.BigIntegerField(null=True)
    template_version = peewee.IntegerField(null=True)
    #: The template as it was when the execution was created, with the selected actions.
    definition = JSONField()
    variables = JSONField(null=True)
    #: queued | awaiting_approval | running | completed | failed | cancelled | rolling_back | rolled_back | rollback_failed
    status = peewee.CharField(max_length=30, index=True)
    dry_run = peewee.BooleanField(default=False)
    rollback_on_failure = peewee.BooleanField(default=True)
    max_execution_time_minutes = peewee.IntegerField(default=30)
    requested_by = peewee.CharField(max_length=200)
    risk_score = peewee.FloatField(null=True)
    risk_level = peewee.CharField(max_length=20, null=True)
    created_at = TimestampField(default=now, index=True)
    started_at = TimestampField(null=True)
    completed_at = TimestampField(null=True)
    #: Refreshed by the worker running it; a stale one means the worker died.
    heartbeat_at = TimestampField(null=True)
    error_message = peewee.TextField(null=True)

    class Meta:
        schema = "autonomous"
        table_name = "executions"


class ExecutionStep(BaseModel):
    """One action of an execution (``phase`` action) or one compensating action (``phase`` rollback)."""

    id = peewee.BigAutoField()
    execution_id = peewee.UUIDField()
    phase = peewee.CharField(max_length=10, default="action")
    action_id = peewee.CharField(max_length=200)
    name = peewee.CharField(max_length=200)
    position = peewee.IntegerField()
    #: pending | running | completed | failed | skipped | cancelled
    status = peewee.CharField(max_length=20, default="pending")
    attempts = peewee.IntegerField(default=0)
    started_at = TimestampField(null=True)
    completed_at = TimestampField(null=True)
    #: What ran (or, in a dry run, would run): integration and rendered arguments.
    rendered = JSONField(null=True)
    result = JSONField(null=True)
    error_message = peewee.TextField(null=True)

    class Meta:
        schema = "autonomous"
        table_name = "execution_steps"
        indexes = ((("execution_id", "phase", "action_id"), True),)


class ExecutionLog(BaseModel):
    id = peewee.BigAutoField()
    execution_id = peewee.UUIDField(index=True)
    at = TimestampField(default=now)
    level = peewee.CharField(max_length=10, default="info")
    message = peewee.TextField()
    action_id = peewee.CharField(max_length=200, null=True)

    class Meta:
        schema = "autonomous"
        table_name = "execution_logs"


class Approval(BaseModel):
    """A request for a human to approve an execution; rejected at ``expires_at`` if unanswered."""

    id = peewee.BigAutoField()
    execution_id = peewee.UUIDField(unique=True)
    #: pending | approved | rejected | expired
    status = peewee.CharField(max_length=20, default="pending", index=True)
    requested_by = peewee.CharField(max_length=200)
    #: Roles that may answer.
    approvers = JSONField()
    reason = peewee.TextField()
    risk_score = peewee.FloatField(null=True)
    risk_level = peewee.CharField(max_length=20, null=True)
    business_impact = peewee.CharField(max_length=20, null=True)
    requested_actions = JSONField()
    timeout_minutes = peewee.FloatField()
    expires_at = TimestampField()
    created_at = TimestampField(default=now)
    decided_by = peewee.CharField(max_length=200, null=True)
    decided_at = TimestampField(null=True)
    comment = peewee.TextField(null=True)
    #: SHA-256 of the token an approval hands out, for ``POST /autonomous/execute`` of the same decision.
    token_hash = peewee.CharField(max_length=64, null=True, index=True)
    #: The action ids the token pre-approves (the request's gated actions); None approves none.
    token_actions = JSONField(null=True)
    #: When the token was used up (single use), and by whom for which execution.
    token_used_at = TimestampField(null=True)
    token_used_by = peewee.CharField(max_length=200, null=True)
    token_used_for = peewee.UUIDField(null=True)
    #: The persons behind ``requested_by`` and ``decided_by`` (two-person rule, audit).
    requested_person = peewee.CharField(max_length=200, null=True)
    decided_person = peewee.CharField(max_length=200, null=True)
    #: When the approvers were notified (once per request).
    notified_at = TimestampField(null=True)

    class Meta:
        schema = "autonomous"
        table_name = "approvals"


class Feedback(BaseModel):
    id = peewee.BigAutoField()
    execution_id = peewee.UUIDField(null=True, index=True)
    decision_id = peewee.BigIntegerField(null=True)
    feedback_type = peewee.CharField(max_length=20)
    rating = peewee.IntegerField(null=True)
    feedback = peewee.CharField(max_length=20, null=True)
    comments = peewee.TextField(null=True)
    suggestions = peewee.TextField(null=True)
    would_approve_again = peewee.BooleanField(null=True)
    submitted_by = peewee.CharField(max_length=200)
    learning_impact = JSONField(null=True)
    created_at = TimestampField(default=now)

    class Meta:
        schema = "autonomous"
        table_name = "feedback"


class LearningStat(BaseModel):
    """Success statistics per rule or per template, which the decider turns into confidence."""

    scope = peewee.CharField(max_length=20)  # rule | template
    scope_id = peewee.BigIntegerField()
    successes = peewee.IntegerField(default=0)
    failures = peewee.IntegerField(default=0)
    feedback_count = peewee.IntegerField(default=0)
    rating_sum = peewee.IntegerField(default=0)
    #: Added to the decider's confidence, in [-0.5, 0.2].
    confidence_adjustment = peewee.FloatField(default=0.0)
    #: Set by ``dangerous`` feedback: every run needs approval until an admin clears it.
    requires_approval = peewee.BooleanField(default=False)
    updated_at = TimestampField(default=now)

    class Meta:
        schema = "autonomous"
        table_name = "learning_stats"
        primary_key = peewee.CompositeKey("scope", "scope_id")


class MaintenanceWindow(BaseModel):
    """A period in which remediation is blocked for the hosts, services or tags in scope."""

    id = peewee.BigAutoField()
    name = peewee.CharField(max_length=200)
    description = peewee.TextField(null=True)
    #: {"hosts": [...], "services": [...], "tags": [...]}; all empty means everything.
    scope = JSONField()
    #: One-off period (both set) ...
    starts_at = TimestampField(null=True)
    ends_at = TimestampField(null=True)
    #: ... or a recurring one: {days, start, end, timezone} as in trigger rules.
    schedule = JSONField(null=True)
    active = peewee.BooleanField(default=True)
    created_by = peewee.CharField(max_length=200, null=True)
    created_at = TimestampField(default=now)
    #: Whether pages about targets in scope are suppressed (kept, status ``suppressed``) while it is in force.
    suppress_notifications = peewee.BooleanField(default=False)

    class Meta:
        schema = "autonomous"
        table_name = "maintenance_windows"

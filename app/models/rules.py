"""Tables of the ``rules`` schema (technical architecture, "Rules Schema")."""

from __future__ import annotations

import peewee

from ..db import BaseModel, JSONField, TimestampField
from ..timeutil import now


class TriggerRule(BaseModel):
    id = peewee.BigAutoField()
    rule_name = peewee.CharField(max_length=200)
    rule_description = peewee.TextField(null=True)
    event_conditions = JSONField()
    severity_threshold = peewee.CharField(max_length=20, null=True)
    time_window_minutes = peewee.IntegerField(null=True)
    max_triggers_per_hour = peewee.IntegerField(default=10)
    active = peewee.BooleanField(default=True)
    created_by = peewee.IntegerField(null=True)
    created_at = TimestampField(default=now)
    updated_at = TimestampField(default=now)
    # Beyond the spec's columns: the rule semantics of the trigger-rule API.
    threshold_count = peewee.IntegerField(null=True)
    cooldown_minutes = peewee.IntegerField(null=True)
    schedule = JSONField(null=True)
    response_template_id = peewee.BigIntegerField(null=True)
    #: Last firing; evaluators lock the rule's row to read and move it, so limits hold across processes.
    last_fired_at = TimestampField(null=True)
    #: The persons who created and last changed the rule: they may not approve the runs it causes.
    created_by_person = peewee.CharField(max_length=200, null=True)
    updated_by_person = peewee.CharField(max_length=200, null=True)

    class Meta:
        schema = "rules"
        table_name = "trigger_rules"


class RuleMatch(BaseModel):
    """An event that matched a rule's condition (for thresholds in a window); idempotent per event."""

    rule_id = peewee.BigIntegerField()
    event_id = peewee.UUIDField()
    matched_at = TimestampField()

    class Meta:
        schema = "rules"
        table_name = "rule_matches"
        primary_key = peewee.CompositeKey("rule_id", "event_id")
        indexes = ((("rule_id", "matched_at"), False),)


class ResponseTemplate(BaseModel):
    id = peewee.BigAutoField()
    template_name = peewee.CharField(max_length=200)
    template_type = peewee.CharField(max_length=50)
    trigger_rule_id = peewee.BigIntegerField(null=True)
    response_definition = JSONField()
    approval_required = peewee.BooleanField(default=False)
    rollback_supported = peewee.BooleanField(default=False)
    max_execution_time_minutes = peewee.IntegerField(default=30)
    active = peewee.BooleanField(default=True)
    created_at = TimestampField(default=now)
    #: The current version; every earlier one stays in response_template_versions.
    version = peewee.IntegerField(default=1)
    #: The persons who created and last changed the template: they may not approve the runs it causes.
    created_by_person = peewee.CharField(max_length=200, null=True)
    updated_by_person = peewee.CharField(max_length=200, null=True)

    class Meta:
        schema = "rules"
        table_name = "response_templates"


class ResponseTemplateVersion(BaseModel):
    """Every version of a template, kept for the executions that used it."""

    template_id = peewee.BigIntegerField()
    version = peewee.IntegerField()
    definition = JSONField()
    created_at = TimestampField(default=now)
    created_by = peewee.CharField(max_length=200, null=True)

    class Meta:
        schema = "rules"
        table_name = "response_template_versions"
        indexes = ((("template_id", "version"), True),)


class RuleExecution(BaseModel):
    id = peewee.BigAutoField()
    trigger_rule_id = peewee.BigIntegerField(null=True)
    response_template_id = peewee.BigIntegerField(null=True)
    triggering_event_id = peewee.UUIDField(null=True)
    execution_status = peewee.CharField(max_length=50)
    started_at = TimestampField(default=now)
    completed_at = TimestampField(null=True)
    execution_result = JSONField(null=True)
    error_message = peewee.TextField(null=True)
    human_feedback = peewee.CharField(max_length=20, null=True)
    feedback_notes = peewee.TextField(null=True)
    #: When the rule fired: the triggering event's arrival, so limits replay the same over history.
    fired_at = TimestampField(null=True)

    class Meta:
        schema = "rules"
        table_name = "rule_executions"
        # A redelivered batch never fires a rule twice for the same event.
        indexes = ((("trigger_rule_id", "triggering_event_id"), True), (("trigger_rule_id", "fired_at"), False))

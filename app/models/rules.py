"""Tables of the ``rules`` schema (technical architecture, "Rules Schema")."""

from __future__ import annotations

import peewee

from ..db import BaseModel, JSONField, TimestampField
from .events import _now


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
    created_at = TimestampField(default=_now)
    updated_at = TimestampField(default=_now)

    class Meta:
        schema = "rules"
        table_name = "trigger_rules"


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
    created_at = TimestampField(default=_now)

    class Meta:
        schema = "rules"
        table_name = "response_templates"


class RuleExecution(BaseModel):
    id = peewee.BigAutoField()
    trigger_rule_id = peewee.BigIntegerField(null=True)
    response_template_id = peewee.BigIntegerField(null=True)
    triggering_event_id = peewee.UUIDField(null=True)
    execution_status = peewee.CharField(max_length=50)
    started_at = TimestampField(default=_now)
    completed_at = TimestampField(null=True)
    execution_result = JSONField(null=True)
    error_message = peewee.TextField(null=True)
    human_feedback = peewee.CharField(max_length=20, null=True)
    feedback_notes = peewee.TextField(null=True)

    class Meta:
        schema = "rules"
        table_name = "rule_executions"

"""Tables of the ``autonomous`` schema (technical architecture, "Autonomous Schema")."""

from __future__ import annotations

import peewee

from ..db import BaseModel, JSONField, TimestampField
from .events import _now


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
    created_at = TimestampField(default=_now)

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
    created_at = TimestampField(default=_now)

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
    created_at = TimestampField(default=_now)

    class Meta:
        schema = "autonomous"
        table_name = "learning_data"

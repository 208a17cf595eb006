"""Peewee models, grouped by the PostgreSQL schema they live in.

Importing this package registers every model with :mod:`app.db`, which names their tables for
the database it is bound to (schemas on PostgreSQL, prefixes on SQLite).
"""

from __future__ import annotations

from ..db import register_models
from .autonomous import (
    ActionDefinition,
    Approval,
    DecisionLog,
    Execution,
    ExecutionLog,
    ExecutionStep,
    Feedback,
    LearningData,
    LearningStat,
    MaintenanceWindow,
)
from .events import EventCorrelation, EventFingerprint, EventPattern, Incident, ProcessedEvent, RawEvent, TopologyLink
from .ops import ApiKey, AuditLog
from .rules import ResponseTemplate, ResponseTemplateVersion, RuleExecution, RuleMatch, TriggerRule
from .secrets import Secret

#: Every model, in creation order.
ALL_MODELS = [
    RawEvent,
    ProcessedEvent,
    EventFingerprint,
    EventCorrelation,
    EventPattern,
    Incident,
    TopologyLink,
    TriggerRule,
    RuleMatch,
    ResponseTemplate,
    ResponseTemplateVersion,
    RuleExecution,
    ActionDefinition,
    DecisionLog,
    LearningData,
    Execution,
    ExecutionStep,
    ExecutionLog,
    Approval,
    Feedback,
    LearningStat,
    MaintenanceWindow,
    ApiKey,
    AuditLog,
    Secret,
]
register_models(ALL_MODELS)

__all__ = [
    "ALL_MODELS",
    "ActionDefinition",
    "Approval",
    "Execution",
    "ExecutionLog",
    "ExecutionStep",
    "Feedback",
    "LearningStat",
    "MaintenanceWindow",
    "ApiKey",
    "AuditLog",
    "DecisionLog",
    "EventCorrelation",
    "EventFingerprint",
    "EventPattern",
    "Incident",
    "TopologyLink",
    "LearningData",
    "ProcessedEvent",
    "RawEvent",
    "ResponseTemplate",
    "ResponseTemplateVersion",
    "RuleExecution",
    "RuleMatch",
    "Secret",
    "TriggerRule",
]

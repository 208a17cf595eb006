"""Peewee models, grouped by the PostgreSQL schema they live in."""

from __future__ import annotations

from .autonomous import ActionDefinition, DecisionLog, LearningData
from .events import EventCorrelation, EventFingerprint, EventPattern, ProcessedEvent, RawEvent
from .ops import ApiKey, AuditLog
from .rules import ResponseTemplate, RuleExecution, RuleMatch, TriggerRule

#: Every model, in creation order.
ALL_MODELS = [
    RawEvent,
    ProcessedEvent,
    EventFingerprint,
    EventCorrelation,
    EventPattern,
    TriggerRule,
    RuleMatch,
    ResponseTemplate,
    RuleExecution,
    ActionDefinition,
    DecisionLog,
    LearningData,
    ApiKey,
    AuditLog,
]

__all__ = [
    "ALL_MODELS",
    "ActionDefinition",
    "ApiKey",
    "AuditLog",
    "DecisionLog",
    "EventCorrelation",
    "EventFingerprint",
    "EventPattern",
    "LearningData",
    "ProcessedEvent",
    "RawEvent",
    "ResponseTemplate",
    "RuleExecution",
    "RuleMatch",
    "TriggerRule",
]

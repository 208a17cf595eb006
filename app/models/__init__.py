"""Peewee models, grouped by the PostgreSQL schema they live in.

Importing this package registers every model with :mod:`app.db`, which names their tables for
the database it is bound to (schemas on PostgreSQL, prefixes on SQLite).
"""

from __future__ import annotations

from ..db import register_models
from .agents import AgentConfig, AgentHeartbeat, ResourceLease, ResourceLeaseWait
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
from .console import ConsoleSession
from .correlation import CorrelationDecision
from .cost import CostReport
from .events import EventCorrelation, EventFingerprint, EventPattern, Incident, ProcessedEvent, RawEvent, TopologyLink
from .incidents import IncidentActivity
from .kubernetes import WorkloadSample
from .links import ApprovalLinkUse, SigningKey
from .notifications import Notification, NotificationPolicy
from .ops import ApiKey, AuditLog
from .receivers import ReceiverStat
from .rules import ResponseTemplate, ResponseTemplateVersion, RuleExecution, RuleMatch, TriggerRule
from .secrets import Secret
from .silences import Silence
from .topology import TopologyEdge, TopologyNode, TopologyVersion

#: Every model, in creation order.
ALL_MODELS = [
    RawEvent,
    ProcessedEvent,
    EventFingerprint,
    EventCorrelation,
    CorrelationDecision,
    EventPattern,
    Incident,
    IncidentActivity,
    TopologyLink,
    TopologyVersion,
    TopologyNode,
    TopologyEdge,
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
    Silence,
    SigningKey,
    ApprovalLinkUse,
    ConsoleSession,
    NotificationPolicy,
    Notification,
    ReceiverStat,
    AgentConfig,
    AgentHeartbeat,
    ResourceLease,
    ResourceLeaseWait,
    WorkloadSample,
    CostReport,
]
register_models(ALL_MODELS)

__all__ = [
    "ALL_MODELS",
    "ActionDefinition",
    "AgentConfig",
    "AgentHeartbeat",
    "Approval",
    "Execution",
    "ExecutionLog",
    "ExecutionStep",
    "Feedback",
    "LearningStat",
    "MaintenanceWindow",
    "ApiKey",
    "ApprovalLinkUse",
    "AuditLog",
    "ConsoleSession",
    "CorrelationDecision",
    "DecisionLog",
    "EventCorrelation",
    "EventFingerprint",
    "EventPattern",
    "Incident",
    "IncidentActivity",
    "Notification",
    "NotificationPolicy",
    "TopologyEdge",
    "TopologyLink",
    "TopologyNode",
    "TopologyVersion",
    "LearningData",
    "ProcessedEvent",
    "RawEvent",
    "ReceiverStat",
    "ResourceLease",
    "ResourceLeaseWait",
    "ResponseTemplate",
    "ResponseTemplateVersion",
    "RuleExecution",
    "RuleMatch",
    "Secret",
    "Silence",
    "SigningKey",
    "TriggerRule",
]

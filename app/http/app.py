"""The WSGI application factory (after Falcon's tutorial: ``create_app(deps)`` and ``get_app()``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import dramatiq
import falcon
import falcon.media
import orjson

from ..auth import KeyStore
from ..config import Settings
from ..console import install as install_console
from ..publishing import BrokerDispatcher, Dispatcher, Publisher
from . import errors
from .metrics import Metrics
from .middleware import Authentication, ReleaseDatabase
from .notify import SendNotifications
from .openapi import OpenApi
from .resources.agents import AgentConfigs, AgentControl, Agents, AgentStatus
from .resources.audit import Audit, AuditExport
from .resources.autonomous import (
    Analyze,
    DecisionResource,
    Decisions,
    Execute,
    ExecutionResource,
    Executions,
    FeedbackResource,
    TemplateApproval,
)
from .resources.cost import CostReports
from .resources.events import Analytics, Event, Events, RawEvents
from .resources.health import Check, Health, Ready
from .resources.incidents import (
    EventCorrelations,
    IncidentNotes,
    IncidentResource,
    Incidents,
    IncidentTimeline,
    IncidentTransition,
)
from .resources.ingest import Ingest, PagerDutyEnqueue
from .resources.maintenance import Window, Windows
from .resources.notifications import Notifications, Policies, Policy, Retry
from .resources.playbooks import Playbook, Playbooks
from .resources.rules import Trigger, Triggers
from .resources.secrets import Secret, Secrets
from .resources.silences import IncidentSilence, Silence, Silences
from .resources.topology import NetboxImport, Topology, TopologyVersions

logger = logging.getLogger(__name__)


@dataclass(kw_only=True)
class Deps:
    """What the web app needs from the outside world."""

    publisher: Publisher
    #: Hands work on to actors by name (execute, rollback); default: Dramatiq's global broker.
    dispatch: Dispatcher = field(default_factory=BrokerDispatcher)
    keys: KeyStore = field(default_factory=KeyStore)
    checks: dict[str, Check] = field(default_factory=dict)
    max_body_bytes: int = 1024 * 1024
    settings: Settings = field(default_factory=Settings)
    #: The broker whose queues ``/metrics`` reports (default: Dramatiq's global broker).
    broker: dramatiq.Broker | None = None


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def create_app(deps: Deps) -> falcon.App:
    """Build the Falcon app from its dependencies."""
    auth = Authentication(deps.keys)
    app = falcon.App(middleware=[auth, ReleaseDatabase(), SendNotifications(deps.dispatch)])  # type: ignore[arg-type]
    json = falcon.media.JSONHandler(dumps=_dumps, loads=orjson.loads)
    app.req_options.media_handlers.update({falcon.MEDIA_JSON: json})
    app.resp_options.media_handlers.update({falcon.MEDIA_JSON: json})
    app.req_options.strip_url_path_trailing_slash = True
    errors.install(app)

    ingest = Ingest(deps.publisher, auth, max_body_bytes=deps.max_body_bytes)
    app.add_route("/api/v1/events/webhook", ingest)
    app.add_route("/api/v1/events/webhook/{adapter}", ingest, suffix="adapter")
    app.add_route("/v2/enqueue", PagerDutyEnqueue(deps.publisher, auth, max_body_bytes=deps.max_body_bytes))
    app.add_route("/api/v1/events", Events())
    app.add_route("/api/v1/events/analytics", Analytics())
    app.add_route("/api/v1/events/{event_id}", Event())
    app.add_route("/api/v1/events/{event_id}/correlations", EventCorrelations())
    app.add_route("/api/v1/incidents", Incidents())
    app.add_route("/api/v1/incidents/{incident_id}", IncidentResource())
    transition = IncidentTransition(max_body_bytes=deps.max_body_bytes)
    for verb in ("acknowledge", "resolve", "close", "reopen", "assign", "merge", "split"):
        app.add_route(f"/api/v1/incidents/{{incident_id}}/{verb}", transition, suffix=verb)
    app.add_route("/api/v1/incidents/{incident_id}/notes", IncidentNotes(max_body_bytes=deps.max_body_bytes))
    app.add_route("/api/v1/incidents/{incident_id}/timeline", IncidentTimeline())
    topology_limit = max(deps.max_body_bytes, deps.settings.topology_max_body_bytes)
    app.add_route("/api/v1/topology", Topology(max_body_bytes=topology_limit))
    app.add_route("/api/v1/topology/versions", TopologyVersions())
    app.add_route("/api/v1/topology/import/netbox", NetboxImport(max_body_bytes=topology_limit))
    app.add_route("/api/v1/raw-events", RawEvents())
    triggers = Trigger(max_body_bytes=deps.max_body_bytes)
    app.add_route("/api/v1/rules/triggers", Triggers(max_body_bytes=deps.max_body_bytes))
    app.add_route("/api/v1/rules/triggers/{rule_id:int}", triggers)
    app.add_route("/api/v1/rules/triggers/{rule_id:int}/test", triggers, suffix="test")
    app.add_route("/api/v1/rules/responses", Playbooks(max_body_bytes=deps.max_body_bytes))
    app.add_route("/api/v1/rules/responses/{template_id:int}", Playbook(max_body_bytes=deps.max_body_bytes))
    limit = deps.max_body_bytes
    app.add_route("/api/v1/autonomous/analyze", Analyze(settings=deps.settings, max_body_bytes=limit))
    app.add_route("/api/v1/autonomous/decisions", Decisions())
    app.add_route("/api/v1/autonomous/decisions/{decision_id:int}", DecisionResource())
    app.add_route("/api/v1/autonomous/execute", Execute(settings=deps.settings, max_body_bytes=limit, dispatch=deps.dispatch))
    app.add_route("/api/v1/autonomous/executions", Executions())
    execution = ExecutionResource(max_body_bytes=limit, dispatch=deps.dispatch, settings=deps.settings)
    app.add_route("/api/v1/autonomous/executions/{execution_id}", execution)
    for control in ("cancel", "rollback", "approve", "reject"):
        app.add_route(f"/api/v1/autonomous/executions/{{execution_id}}/{control}", execution, suffix=control)
    app.add_route("/api/v1/autonomous/feedback", FeedbackResource(max_body_bytes=limit))
    app.add_route("/api/v1/autonomous/templates/{template_id:int}/approval-requirement", TemplateApproval())
    app.add_route("/api/v1/maintenance", Windows(max_body_bytes=limit))
    app.add_route("/api/v1/maintenance/{window_id:int}", Window(max_body_bytes=limit))
    app.add_route("/api/v1/silences", Silences(max_body_bytes=limit))
    app.add_route("/api/v1/silences/{silence_id:int}", Silence(max_body_bytes=limit))
    app.add_route("/api/v1/incidents/{incident_id}/silence", IncidentSilence(max_body_bytes=limit))
    app.add_route("/api/v1/audit", Audit())
    app.add_route("/api/v1/audit/export", AuditExport())
    app.add_route("/api/v1/notification-policies", Policies(max_body_bytes=limit))
    app.add_route("/api/v1/notification-policies/{policy_id:int}", Policy(max_body_bytes=limit))
    app.add_route("/api/v1/notifications", Notifications())
    app.add_route("/api/v1/notifications/{notification_id:int}/retry", Retry(dispatch=deps.dispatch))
    app.add_route("/api/v1/secrets", Secrets(settings=deps.settings, max_body_bytes=limit))
    app.add_route("/api/v1/secrets/{name}", Secret(settings=deps.settings, max_body_bytes=limit))
    app.add_route("/api/v1/agents", Agents())
    app.add_route("/api/v1/agents/status", AgentStatus(settings=deps.settings))
    app.add_route("/api/v1/agents/config", AgentConfigs(max_body_bytes=limit))
    agent_control = AgentControl(dispatch=deps.dispatch)
    for verb in ("start", "stop", "run"):
        app.add_route(f"/api/v1/agents/{{name}}/{verb}", agent_control, suffix=verb)
    app.add_route("/api/v1/cost-optimization/reports", CostReports())
    app.add_route("/healthz", Health())
    app.add_route("/readyz", Ready(deps.checks))
    app.add_route("/openapi.json", OpenApi())
    app.add_route("/metrics", Metrics(deps.broker or dramatiq.get_broker()))
    install_console(app, deps)
    # PERF: Falcon compiles its router on the first request (~12 ms for these routes), blocking the worker: the
    # other worker then accepted the clients connecting meanwhile, keep-alive ones for good. Compiled here instead.
    app._router.find("/healthz")
    return app


def ensure_admin_key(key: str) -> None:
    """OPSCONDUCTOR_ADMIN_KEY exists with the admin role (the release step does it too)."""
    from ..auth import create_key
    from ..errors import DatabaseUnavailable

    try:
        create_key(role="admin", name="OPSCONDUCTOR_ADMIN_KEY", key=key, actor="startup")
    except (DatabaseUnavailable, Exception) as e:  # noqa: BLE001 - serve anyway; release also ensures it
        logger.error("Could not ensure OPSCONDUCTOR_ADMIN_KEY at start: %s", e)


def get_app() -> falcon.App:
    """The app of the ``web`` process: settings from the environment, RabbitMQ, PostgreSQL."""
    from gevent import monkey

    from ..publishing import BatchPublisher, DirectPublisher
    from ..runtime import bootstrap, broker
    from .checks import BrokerCheck, database_check

    settings = bootstrap(role="web", db_connections=10)
    if settings.admin_key:
        ensure_admin_key(settings.admin_key)
    publisher: Publisher = BatchPublisher(broker()) if monkey.is_module_patched("socket") else DirectPublisher(broker())
    return create_app(
        Deps(
            publisher=publisher,
            dispatch=BrokerDispatcher(broker()),
            keys=KeyStore(ttl_s=settings.auth_cache_seconds, stale_s=settings.auth_stale_seconds),
            checks={"database": database_check, "broker": BrokerCheck(broker())},
            max_body_bytes=settings.max_body_bytes,
            settings=settings,
        )
    )

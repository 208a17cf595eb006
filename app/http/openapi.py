"""``/openapi.json``: the API described for clients and tools (OpenAPI 3.1)."""

from __future__ import annotations

from typing import Any

import falcon

from .. import __version__
from ..events.schema import SEVERITIES

_ACCEPTED = {
    "type": "object",
    "properties": {
        "event_id": {"type": "string", "format": "uuid"},
        "status": {"const": "accepted"},
        "correlation_id": {"type": "string", "format": "uuid", "description": "id of the request (X-Correlation-ID)"},
        "processing_time_ms": {"type": "number"},
    },
}
_ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"}},
}
_GENERIC = {
    "type": "object",
    "required": ["source"],
    "properties": {
        "source": {"type": "string"},
        "source_type": {"type": "string"},
        "event_type": {"type": "string"},
        "severity": {"enum": list(SEVERITIES)},
        "timestamp": {"type": "string", "format": "date-time"},
        "host": {"type": "string"},
        "service": {"type": "string"},
        "title": {"type": "string"},
        "message": {"type": "string"},
        "description": {"type": "string"},
        "metadata": {"type": "object"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "fingerprint": {"type": "string"},
    },
}


#: A secret as it is written; its value is never read back.
_SECRET_VALUE = {"type": "object", "required": ["value"], "additionalProperties": False,
                 "properties": {"value": {"type": "string", "minLength": 1, "maxLength": 65536}}}  # fmt: skip
_SECRET = {"type": "object", "required": ["name", "value"], "additionalProperties": False,
           "properties": {"name": {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_]{0,99}$"},
                          "value": {"type": "string", "minLength": 1, "maxLength": 65536}}}  # fmt: skip


def _errors(*codes: int) -> dict[str, Any]:
    text = {400: "Bad input", 401: "No valid key", 403: "Wrong role", 404: "Not found", 409: "Conflicts with the current state", 413: "Body over 1 MiB",
            415: "Not JSON", 503: "Broker or database unavailable (Retry-After)"}  # fmt: skip
    return {str(c): {"description": text[c], "content": {"application/json": {"schema": _ERROR}}} for c in codes}


def _ingest(summary: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
            "responses": {
                "202": {"description": "Durable in the broker", "content": {"application/json": {"schema": _ACCEPTED}}},
                **_errors(400, 401, 403, 413, 415, 503),
            },
        }
    }


def _get(summary: str, params: list[str] | None = None) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "parameters": [{"name": p, "in": "query", "schema": {"type": "string"}} for p in params or []],
            "responses": {"200": {"description": "OK"}, **_errors(400, 401, 403)},
        }
    }


def _post(summary: str, status: int = 200) -> dict[str, Any]:
    return {"post": {"summary": summary, "responses": {str(status): {"description": "OK"}, **_errors(400, 401, 403)}}}


def _autonomous() -> dict[str, Any]:
    executions = "/api/v1/autonomous/executions/{execution_id}"
    return {
        "/api/v1/autonomous/analyze": _post("Analyze an event: decision, risk, recommended actions (operator)"),
        "/api/v1/autonomous/decisions": _get("Decisions", ["event_id", "decision_type", "decided_by", "risk_level",
                                                           "rule_id", "since", "limit", "offset"]),
        "/api/v1/autonomous/decisions/{decision_id}": _get("One decision"),
        "/api/v1/autonomous/execute": _post("Execute a decision's actions (operator; approval_token when required)", 202),
        "/api/v1/autonomous/executions": _get("Executions", ["status", "event_id", "decision_id", "start_time",
                                                             "end_time", "limit", "offset"]),
        executions: _get("One execution: progress, actions, logs, approval, rollback plan"),
        f"{executions}/cancel": _post("Cancel: no further step starts (operator)"),
        f"{executions}/rollback": _post("Roll back the completed remediation steps, newest first (operator)", 202),
        f"{executions}/approve": _post("Approve the pending request (operator; not the requester)"),
        f"{executions}/reject": _post("Reject the pending request (operator; not the requester)"),
        "/api/v1/maintenance": {**_get("Maintenance windows", ["active_now", "host"]),
                                **_post("Create a maintenance window (operator)", 201)},
        "/api/v1/maintenance/{window_id}": {**_get("One maintenance window"),
                                            "put": {"summary": "Replace a window (operator)", "responses": {"200": {"description": "Updated"}}},
                                            "delete": {"summary": "Delete a window (operator)", "responses": {"200": {"description": "Deleted"}}}},
        "/api/v1/autonomous/feedback": _post("Feedback on an execution; returns the learning impact applied", 201),
        "/api/v1/autonomous/templates/{template_id}/approval-requirement": {"delete": {
            "summary": "Clear the approval requirement that dangerous feedback set (admin)",
            "responses": {"200": {"description": "Cleared"}, **_errors(401, 403)}}},
    }  # fmt: skip


#: A silence's matcher, as Alertmanager writes it (``is_equal: false`` negates).
_MATCHER = {"type": "object", "required": ["name", "value"], "additionalProperties": False,
            "properties": {"name": {"enum": ["host", "service", "event_type", "severity", "source", "source_type", "tag"]},
                           "value": {"type": "string"}, "is_regex": {"type": "boolean"}, "is_equal": {"type": "boolean"}}}  # fmt: skip
_SILENCE = {"type": "object", "required": ["matchers", "ends_at", "comment"],
            "properties": {"matchers": {"type": "array", "minItems": 1, "items": _MATCHER},
                           "starts_at": {"type": "string", "format": "date-time"},
                           "ends_at": {"type": "string", "format": "date-time"}, "comment": {"type": "string", "minLength": 1}}}  # fmt: skip


def _silences() -> dict[str, Any]:
    body = {"required": True, "content": {"application/json": {"schema": _SILENCE}}}
    return {
        "/api/v1/silences": {**_get("Silences, newest first", ["state", "limit", "offset"]),
                             "post": {"summary": "Create a silence: matching events fire no rule (operator)", "requestBody": body,
                                      "responses": {"201": {"description": "Created"}, **_errors(400, 401, 403)}}},
        "/api/v1/silences/{silence_id}": {**_get("One silence"),
                                          "put": {"summary": "Replace a pending or active silence (operator)", "requestBody": body,
                                                  "responses": {"200": {"description": "Updated"}, **_errors(400, 401, 403, 404)}},
                                          "delete": {"summary": "Expire a silence now; it is kept for history (operator)",
                                                     "responses": {"200": {"description": "Expired"}, **_errors(401, 403, 404)}}},
        "/api/v1/incidents/{incident_id}/silence": _post("Silence an incident's hosts and services "
                                                         "{duration_minutes?: 120, comment?} (operator)", 201),
    }  # fmt: skip


def _notifications() -> dict[str, Any]:
    channel = {"type": "object", "required": ["type"],
               "properties": {"type": {"enum": ["email", "slack", "teams", "pagerduty", "webhook"]},
                              "url": {"type": "string"}, "routing_key": {"type": "string"},
                              "to": {"type": "array", "items": {"type": "string"}},
                              "headers": {"type": "object", "additionalProperties": {"type": "string"}}}}  # fmt: skip
    names = {"type": "array", "items": {"type": "string", "minLength": 1}}
    policy = {"type": "object", "required": ["name", "channels"], "additionalProperties": False,
              "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 200}, "enabled": {"type": "boolean"},
                             "matchers": {"type": "object", "additionalProperties": False,
                                          "properties": {k: names for k in ("triggers", "severities", "services", "tags")}},
                             "channels": {"type": "array", "minItems": 1, "maxItems": 20, "items": channel},
                             "repeat_interval_minutes": {"type": "integer", "minimum": 0, "maximum": 10080},
                             "quiet_hours": {"type": "object", "properties": {
                                 "start": {"type": "string"}, "end": {"type": "string"}, "timezone": {"type": "string"},
                                 "severities": names}}}}  # fmt: skip
    body = {"required": True, "content": {"application/json": {"schema": policy}}}
    one = "/api/v1/notification-policies/{policy_id}"
    return {
        "/api/v1/notification-policies": {
            **_get("Notification policies: which pages go to which channels"),
            "post": {"summary": "Create a notification policy (operator)", "requestBody": body,
                     "responses": {"201": {"description": "Created"}, **_errors(400, 401, 403, 409, 413, 415)}}},
        one: {**_get("One notification policy"),
              "put": {"summary": "Replace a notification policy (operator)", "requestBody": body,
                      "responses": {"200": {"description": "Updated"}, **_errors(400, 401, 403, 404, 409)}},
              "delete": {"summary": "Delete a notification policy; its notifications stay (operator)",
                         "responses": {"200": {"description": "Deleted"}, **_errors(401, 403, 404)}}},
        "/api/v1/notifications": _get("The outbox of notifications, newest first: status, attempts, last_error",
                                      ["status", "trigger", "incident_id", "limit", "offset"]),
        "/api/v1/notifications/{notification_id}/retry": {"post": {
            "summary": "Retry a failed notification now, with a fresh set of attempts (operator)",
            "responses": {"202": {"description": "Queued"}, **_errors(401, 403, 404, 409)}}},
    }  # fmt: skip


def _agents() -> dict[str, Any]:
    config = {"type": "object", "required": ["name"],
              "properties": {"name": {"type": "string", "pattern": "^[a-z][a-z0-9_-]{0,62}$"},
                             "type": {"enum": ["orchestrator", "terraform", "kubernetes", "cost"]},
                             "enabled": {"type": "boolean"}, "approval_required": {"type": "boolean"},
                             "automation_level": {"enum": ["manual", "semi-auto", "full-auto"]},
                             "thresholds": {"type": "object", "additionalProperties": {"type": "number"}},
                             "integrations": {"type": "array", "maxItems": 50, "items": {"type": "object"}},
                             "interval_seconds": {"type": "integer", "minimum": 10, "maximum": 86400},
                             "routes": {"type": "array", "maxItems": 20, "description": "events any route's matchers "
                                        "(as silences') all take in send the agent a run",
                                        "items": {"type": "object", "required": ["matchers"],
                                                  "properties": {"matchers": {"type": "array", "minItems": 1,
                                                                              "items": {"type": "object"}}}}}}}  # fmt: skip
    one = "/api/v1/agents/{name}"
    control = {"responses": {"200": {"description": "The agent's configuration"}, **_errors(401, 403, 404)}}
    return {
        "/api/v1/agents": _get("Every agent's configuration (the design's AgentConfig)"),
        "/api/v1/agents/status": _get("Each agent's state, health, last run and executions in flight; resource leases"),
        "/api/v1/agents/config": {"post": {
            "summary": "Create an agent or change the fields given of one (admin)",
            "requestBody": {"required": True, "content": {"application/json": {"schema": config}}},
            "responses": {"200": {"description": "Changed"}, "201": {"description": "Created"},
                          **_errors(400, 401, 403, 409, 413, 415)}}},
        f"{one}/start": {"post": {"summary": "Resume an agent's schedule and queue (operator)", **control}},
        f"{one}/stop": {"post": {"summary": "Pause an agent's schedule and queue (operator)", **control}},
        f"{one}/run": {"post": {"summary": "Send a started agent a run now (operator)",
                                "responses": {"202": {"description": "Sent"}, **_errors(401, 403, 404, 409, 503)}}},
    }  # fmt: skip


def _body_post(summary: str, schema: dict[str, Any], *, required: bool = True, status: int = 200) -> dict[str, Any]:
    return {"post": {"summary": summary,
                     "requestBody": {"required": required, "content": {"application/json": {"schema": schema}}},
                     "responses": {str(status): {"description": "OK"}, **_errors(400, 401, 403, 404, 409, 413, 415)}}}  # fmt: skip


def _incidents() -> dict[str, Any]:
    one = "/api/v1/incidents/{incident_id}"
    text = {"type": "string", "minLength": 1, "maxLength": 10000}
    comment = {"type": "object", "properties": {"comment": text}}
    ids = {"type": "array", "minItems": 1, "maxItems": 1000, "items": {"type": "string", "format": "uuid"}}
    paths: dict[str, Any] = {
        "/api/v1/incidents": _get("Incidents", ["status", "severity", "host", "assignee", "since", "limit", "offset"]),
        one: _get("One incident with its events and correlations"),
        f"{one}/acknowledge": _body_post("Acknowledge an open or flapping incident (operator)", comment, required=False),
        f"{one}/resolve": _body_post("Resolve: it takes no new event (operator)", comment, required=False),
        f"{one}/close": _body_post("Close a resolved incident (operator)", comment, required=False),
        f"{one}/reopen": _body_post("Reopen an acknowledged, resolved or closed incident (operator)", comment, required=False),
        f"{one}/assign": _body_post("Assign to a person or team (operator)", {"type": "object", "required": ["assignee"],
                                    "properties": {"assignee": {**text, "maxLength": 200}, "comment": text}}),
        f"{one}/notes": {**_get("The incident's notes"),
                         **_body_post("Write a note (operator)", {"type": "object", "required": ["text"],
                                      "properties": {"text": text}}, status=201)},
        f"{one}/merge": _body_post("Move the events of source incidents into this one; the sources close (operator)",
                                   {"type": "object", "required": ["source_ids", "reason"],
                                    "properties": {"source_ids": ids, "reason": text}}),
        f"{one}/split": _body_post("Move some events to a new incident (operator)",
                                   {"type": "object", "required": ["event_ids", "reason"],
                                    "properties": {"event_ids": ids, "reason": text}}, status=201),
        f"{one}/timeline": _get("Events, correlations, rule firings, decisions, approvals, executions, steps, "
                                "notes and status changes, in time order"),
    }  # fmt: skip
    return paths


def document() -> dict[str, Any]:
    any_of = {"oneOf": [_GENERIC, {"type": "array", "items": _GENERIC}]}
    paths = {
        "/api/v1/events/webhook": _ingest("Submit one event or an array of events (generic schema)", any_of),
        "/api/v1/events/webhook/alertmanager": _ingest("Prometheus Alertmanager webhook (version 4)", {"type": "object"}),
        "/api/v1/events/webhook/grafana": _ingest("Grafana alerting webhook", {"type": "object"}),
        "/api/v1/events/webhook/pagerduty": _ingest("PagerDuty Events API v2 (routing_key authenticates)", {"type": "object"}),
        "/v2/enqueue": _ingest("PagerDuty Events API v2 at its own path", {"type": "object"}),
        "/api/v1/events": _get(
            "Query events",
            ["severity", "event_type", "host", "service", "source_type", "silenced", "start_time", "end_time", "hours", "limit",
             "offset"],
        ),
        "/api/v1/events/{event_id}": _get("One event (or the event a duplicate was folded into)"),
        "/api/v1/events/analytics": _get("Counts per group", ["timerange", "groupby"]),
        "/api/v1/raw-events": _get("Raw input, e.g. what could not be parsed", ["has_errors", "source_type", "limit", "offset"]),
        "/api/v1/events/{event_id}/correlations": _get("The event's incident and why its events belong together"),
        **_incidents(),
        "/api/v1/topology": {
            **_get("The dependency map: nodes, edges, resolutions (?version=N an earlier one, ?format=csv as CSV)",
                   ["version", "format"]),
            "put": {"summary": "Replace the dependency map from JSON, text/csv or ?format=netbox (operator)",
                    "parameters": [{"name": "format", "in": "query", "schema": {"type": "string", "enum": ["json", "csv", "netbox"]}}],
                    "responses": {"200": {"description": "The new map, a new version"}, **_errors(400, 401, 403, 409)}},
            "patch": {"summary": "Add or remove nodes and edges (operator)",
                      "responses": {"200": {"description": "The new map, a new version"}, **_errors(400, 401, 403, 409)}}},
        "/api/v1/topology/versions": _get("Versions of the dependency map: who, when, what changed", ["limit", "offset"]),
        "/api/v1/topology/import/netbox": {"post": {"summary": "Replace the dependency map from a NetBox export (operator)",
                                           "responses": {"200": {"description": "The new map, a new version"},
                                                         **_errors(400, 401, 403, 409)}}},
        "/api/v1/rules/triggers": {**_get("Trigger rules", ["active"]), "post": {"summary": "Create a trigger rule (operator)",
                                   "responses": {"201": {"description": "Created, with validation_result"}, **_errors(400, 401, 403)}}},
        "/api/v1/rules/triggers/{rule_id}": {**_get("One trigger rule"),
                                             "put": {"summary": "Replace a rule", "responses": {"200": {"description": "Updated"}}},
                                             "delete": {"summary": "Delete a rule", "responses": {"200": {"description": "Deleted"}}}},
        "/api/v1/rules/triggers/{rule_id}/test": {"post": {"summary": "Replay a rule over a time range, without side effects",
                                                           "responses": {"200": {"description": "What would have fired"}}}},
        "/api/v1/rules/responses": {**_get("Response templates"), "post": {"summary": "Create a response template (operator)",
                                    "responses": {"201": {"description": "Created, version 1"}, **_errors(400, 401, 403)}}},
        "/api/v1/rules/responses/{template_id}": {**_get("One template (?version=N for an earlier one)", ["version"]),
                                                  "put": {"summary": "A new version", "responses": {"200": {"description": "Updated"}}},
                                                  "delete": {"summary": "Deactivate", "responses": {"200": {"description": "Deactivated"}}}},
        **_autonomous(),
        **_silences(),
        **_notifications(),
        **_agents(),
        "/api/v1/cost-optimization/reports": _get("The cost agents' monthly reports: totals by service and account, "
                                                  "month-over-month trends, findings with savings estimates "
                                                  "(?format=csv or Accept: text/csv for CSV)", ["month", "agent", "format"]),
        "/api/v1/audit": _get("The audit log, newest first (operator): a page and next_cursor",
                              ["actor", "person", "action", "object_kind", "object_id", "since", "until", "limit", "cursor"]),
        "/api/v1/audit/export": _get("Every matching audit row as a file, newest first (operator)",
                                     ["format", "actor", "person", "action", "object_kind", "object_id", "since", "until"]),
        "/api/v1/secrets": {"get": {"summary": "Names of the stored secrets, with times; never values (admin)",
                                    "responses": {"200": {"description": "OK"}, **_errors(401, 403)}},
                            "post": {"summary": "Store a secret {name, value}, encrypted; replaces one of that name (admin)",
                                     "requestBody": {"required": True, "content": {"application/json": {"schema": _SECRET}}},
                                     "responses": {"201": {"description": "Created"}, "200": {"description": "Replaced"},
                                                   **_errors(400, 401, 403, 413, 415)}}},
        "/api/v1/secrets/{name}": {"put": {"summary": "Store the secret NAME {value} (admin)",
                                           "requestBody": {"required": True, "content": {"application/json": {"schema": _SECRET_VALUE}}},
                                           "responses": {"201": {"description": "Created"}, "200": {"description": "Replaced"},
                                                         **_errors(400, 401, 403, 413, 415)}},
                                   "delete": {"summary": "Delete the secret NAME (admin)",
                                              "responses": {"200": {"description": "Deleted"}, **_errors(401, 403, 404)}}},
        "/metrics": {"get": {"summary": "Prometheus metrics of the deployment: queue depths, incidents, executions, "
                             "approvals (no key needed)", "security": [], "responses": {"200": {"description": "Text exposition"}}}},
        "/healthz": {"get": {"summary": "The process answers", "security": [], "responses": {"200": {"description": "OK"}}}},
        "/readyz": {"get": {"summary": "Database and broker reachable", "security": [],
                            "responses": {"200": {"description": "Ready"}, "503": {"description": "Not ready"}}}},
    }  # fmt: skip
    return {
        "openapi": "3.1.0",
        "info": {"title": "OpsConductor Event Engine", "version": __version__},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": paths,
    }


class OpenApi:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = document()

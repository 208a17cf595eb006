"""Every route of ``/openapi.json`` against every role, no key and a wrong key, over real gunicorn.

The expected permission of each route is written here, apart from the resources' own declarations,
so that loosening one in the code (or adding a route without deciding who may call it) fails.
"""

from __future__ import annotations

import re
import uuid

import pytest

from app.auth import create_key
from tests.http import request

#: (method, path) -> who may call it: ``public`` (no key), or the permission a role must hold.
EXPECTED: dict[tuple[str, str], str] = {
    ("GET", "/healthz"): "public",
    ("GET", "/readyz"): "public",
    ("GET", "/metrics"): "public",
    ("POST", "/api/v1/events/webhook"): "ingest",
    ("POST", "/api/v1/events/webhook/alertmanager"): "ingest",
    ("POST", "/api/v1/events/webhook/grafana"): "ingest",
    ("POST", "/api/v1/events/webhook/pagerduty"): "ingest",
    ("POST", "/v2/enqueue"): "ingest",
    ("GET", "/api/v1/events"): "read",
    ("GET", "/api/v1/events/analytics"): "read",
    ("GET", "/api/v1/events/{event_id}"): "read",
    ("GET", "/api/v1/events/{event_id}/correlations"): "read",
    ("GET", "/api/v1/raw-events"): "read",
    ("GET", "/api/v1/incidents"): "read",
    ("GET", "/api/v1/incidents/{incident_id}"): "read",
    ("POST", "/api/v1/incidents/{incident_id}/acknowledge"): "operate",
    ("POST", "/api/v1/incidents/{incident_id}/resolve"): "operate",
    ("POST", "/api/v1/incidents/{incident_id}/close"): "operate",
    ("POST", "/api/v1/incidents/{incident_id}/reopen"): "operate",
    ("POST", "/api/v1/incidents/{incident_id}/assign"): "operate",
    ("POST", "/api/v1/incidents/{incident_id}/merge"): "operate",
    ("POST", "/api/v1/incidents/{incident_id}/split"): "operate",
    ("GET", "/api/v1/incidents/{incident_id}/notes"): "read",
    ("POST", "/api/v1/incidents/{incident_id}/notes"): "operate",
    ("GET", "/api/v1/incidents/{incident_id}/timeline"): "read",
    ("GET", "/api/v1/topology"): "read",
    ("PUT", "/api/v1/topology"): "operate",
    ("PATCH", "/api/v1/topology"): "operate",
    ("GET", "/api/v1/topology/versions"): "read",
    ("POST", "/api/v1/topology/import/netbox"): "operate",
    ("GET", "/api/v1/rules/triggers"): "read",
    ("POST", "/api/v1/rules/triggers"): "operate",
    ("GET", "/api/v1/rules/triggers/{rule_id}"): "read",
    ("PUT", "/api/v1/rules/triggers/{rule_id}"): "operate",
    ("DELETE", "/api/v1/rules/triggers/{rule_id}"): "operate",
    ("POST", "/api/v1/rules/triggers/{rule_id}/test"): "read",
    ("GET", "/api/v1/rules/responses"): "read",
    ("POST", "/api/v1/rules/responses"): "operate",
    ("GET", "/api/v1/rules/responses/{template_id}"): "read",
    ("PUT", "/api/v1/rules/responses/{template_id}"): "operate",
    ("DELETE", "/api/v1/rules/responses/{template_id}"): "operate",
    ("POST", "/api/v1/autonomous/analyze"): "operate",
    ("GET", "/api/v1/autonomous/decisions"): "read",
    ("GET", "/api/v1/autonomous/decisions/{decision_id}"): "read",
    ("POST", "/api/v1/autonomous/execute"): "operate",
    ("GET", "/api/v1/autonomous/executions"): "read",
    ("GET", "/api/v1/autonomous/executions/{execution_id}"): "read",
    ("POST", "/api/v1/autonomous/executions/{execution_id}/approve"): "operate",
    ("POST", "/api/v1/autonomous/executions/{execution_id}/reject"): "operate",
    ("POST", "/api/v1/autonomous/executions/{execution_id}/cancel"): "operate",
    ("POST", "/api/v1/autonomous/executions/{execution_id}/rollback"): "operate",
    ("POST", "/api/v1/autonomous/feedback"): "operate",
    ("DELETE", "/api/v1/autonomous/templates/{template_id}/approval-requirement"): "admin",
    ("GET", "/api/v1/maintenance"): "read",
    ("POST", "/api/v1/maintenance"): "operate",
    ("GET", "/api/v1/notification-policies"): "read",
    ("POST", "/api/v1/notification-policies"): "operate",
    ("GET", "/api/v1/notification-policies/{policy_id}"): "read",
    ("PUT", "/api/v1/notification-policies/{policy_id}"): "operate",
    ("DELETE", "/api/v1/notification-policies/{policy_id}"): "operate",
    ("GET", "/api/v1/notifications"): "read",
    ("POST", "/api/v1/notifications/{notification_id}/retry"): "operate",
    ("GET", "/api/v1/maintenance/{window_id}"): "read",
    ("PUT", "/api/v1/maintenance/{window_id}"): "operate",
    ("DELETE", "/api/v1/maintenance/{window_id}"): "operate",
    ("GET", "/api/v1/silences"): "read",
    ("POST", "/api/v1/silences"): "operate",
    ("GET", "/api/v1/silences/{silence_id}"): "read",
    ("PUT", "/api/v1/silences/{silence_id}"): "operate",
    ("DELETE", "/api/v1/silences/{silence_id}"): "operate",
    ("POST", "/api/v1/incidents/{incident_id}/silence"): "operate",
    ("GET", "/api/v1/audit"): "operate",
    ("GET", "/api/v1/audit/export"): "operate",
    ("GET", "/api/v1/agents"): "read",
    ("GET", "/api/v1/agents/status"): "read",
    ("POST", "/api/v1/agents/config"): "admin",
    ("POST", "/api/v1/agents/{name}/start"): "operate",
    ("POST", "/api/v1/agents/{name}/stop"): "operate",
    ("POST", "/api/v1/agents/{name}/run"): "operate",
    ("GET", "/api/v1/cost-optimization/reports"): "read",
    ("GET", "/api/v1/secrets"): "admin",
    ("POST", "/api/v1/secrets"): "admin",
    ("PUT", "/api/v1/secrets/{name}"): "admin",
    ("DELETE", "/api/v1/secrets/{name}"): "admin",
}

#: What each role holds (the product's roles, restated).
HOLDS = {
    "ingest": {"ingest"},
    "viewer": {"read"},
    "operator": {"read", "ingest", "operate"},
    "admin": {"read", "ingest", "operate", "admin"},
}


def _concrete(path: str) -> str:
    """The path with its parameters filled by ids that exist nowhere."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        return str(uuid.UUID(int=1)) if name in ("event_id", "incident_id", "execution_id") else "987654"

    return re.sub(r"\{(\w+)\}", fill, path)


@pytest.fixture(scope="module")
def keys(stack) -> dict[str, str]:
    return {
        "ingest": stack.ingest,
        "viewer": stack.viewer,
        "admin": stack.admin,
        "operator": create_key(role="operator", name="routes-roles operator"),
    }


def _documented(stack) -> set[tuple[str, str]]:
    paths = request("GET", f"{stack.base}/openapi.json").json()["paths"]
    return {(method.upper(), path) for path, ops in paths.items() for method in ops}


def test_every_documented_route_has_a_decided_permission(stack):
    # Given the OpenAPI document the server publishes
    documented = _documented(stack)
    # Then it lists exactly the routes whose permission is decided here: none added unseen, none lost
    assert documented - set(EXPECTED) == set(), "routes with no decided permission"
    assert set(EXPECTED) - documented == set(), "routes no longer documented"


def test_every_route_of_the_app_is_documented(stack):
    # Given the routes the Falcon app really serves
    from dramatiq.brokers.stub import StubBroker

    from app.http.app import Deps, create_app
    from app.publishing import DirectPublisher

    app = create_app(Deps(publisher=DirectPublisher(StubBroker()), broker=StubBroker()))
    served: set[str] = set()

    def walk(nodes) -> None:
        for node in nodes:
            if node.resource is not None:
                served.add(node.uri_template)
            walk(node.children)

    walk(app._router._roots)
    # Then each one is in /openapi.json (typed parameters such as {rule_id:int} read as {rule_id});
    # the adapter route is documented per adapter
    documented = {path for _, path in _documented(stack)}
    plain = {re.sub(r"\{(\w+):\w+\}", r"{\1}", t) for t in served} - {"/api/v1/events/webhook/{adapter}", "/openapi.json"}
    # the console's pages (HTML, session-authenticated) are no API: tests/integration/test_console_access.py
    plain = {p for p in plain if p != "/" and p != "/console" and not p.startswith("/console/")}
    assert plain - documented == set()


@pytest.mark.parametrize(("method", "path"), sorted(EXPECTED))
def test_route_answers_each_caller_by_its_role(stack, keys, method, path):
    # Given a route and what it needs
    needed = EXPECTED[(method, path)]
    url = stack.base + _concrete(path)
    body = {} if method in ("POST", "PUT") else None
    callers: dict[str, str | None] = {"no key": None, "wrong key": "oc_" + "x" * 43, **keys}
    for caller, key in callers.items():
        # When the caller calls it
        reply = request(method, url, json=body, key=key)
        # Then nothing fails inside, and the answer is the role's
        assert reply.status < 500 or path == "/readyz", (caller, reply.status, reply.body[:300])
        if needed == "public":
            assert reply.status not in (401, 403), (caller, reply.status)
            continue
        if key is None or caller == "wrong key":
            assert reply.status == 401, (caller, reply.status, reply.body[:300])
            assert reply.headers.get("WWW-Authenticate", "").startswith("Bearer")
        elif needed in HOLDS[caller]:
            shown = reply.json() if reply.body else {}
            refused_for_role = reply.status == 403 and "may not" in str(shown.get("message"))
            assert reply.status != 401 and not refused_for_role, (caller, reply.status, reply.body[:300])
        else:
            assert reply.status == 403, (caller, reply.status, reply.body[:300])

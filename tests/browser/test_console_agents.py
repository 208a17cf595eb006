"""The agents' pages in a real chromium: status and configuration (audited, admin only), start and stop,
and agents' actions on the topology and the incident timeline."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from app.agents import proposals, registry
from app.agents.base import AgentAction
from app.config import Settings
from app.db import in_transaction
from app.models import AgentConfig
from tests.browser.test_console_admin import open_incident
from tests.http import request
from tests.processes import wait_for


def _agent(name: str, kind: str = "kubernetes") -> None:
    in_transaction(lambda: registry.configure({"name": name, "kind": kind, "enabled": True}, actor="test",
                                              now=datetime.now(UTC)))  # fmt: skip


def test_agents_list_shows_health_last_run_and_error_and_an_admin_configures_one(sign_in, stack, db, shot):
    # Given an enabled agent whose last run failed (the stack's worker heartbeats for its kind)
    name = f"k8s-{uuid.uuid4().hex[:6]}"
    _agent(name)
    in_transaction(lambda: AgentConfig.update(last_run_at=datetime.now(UTC), last_error="ApiException: 403 Forbidden",
                                              last_result={"proposed": 0, "events": 0}).where(
        AgentConfig.name == name).execute())  # fmt: skip
    operator = sign_in("operator")
    # When an operator opens the agents' page
    row = operator.locator(f'#agents tr[data-agent="{name}"]')

    def up():
        operator.goto("/console/agents")
        return row.get_attribute("data-health") == "up"

    wait_for(up, timeout=20, message="the worker's heartbeat")
    # Then its row shows it started and up, its last run's error, and whether it can work here
    assert row.get_attribute("data-state") == "started"
    assert "403 Forbidden" in row.locator(".last-error").inner_text()
    assert "ago" in row.inner_text() and row.locator(".ready").inner_text().strip()
    assert operator.locator("nav").get_by_role("link", name="Agents").get_attribute("aria-current") == "page"
    shot(operator, "list")
    # And on its page the operator may not save the configuration (it is an admin's)
    operator.locator(f'#agents tr[data-agent="{name}"] a').first.click()
    assert operator.get_by_role("heading", level=1).inner_text().startswith(f"Agent {name}")
    assert operator.get_by_role("button", name="Save configuration").count() == 0
    # When the operator stops it, then starts it
    operator.once("dialog", lambda dialog: dialog.accept())
    operator.get_by_role("button", name="Stop").click()
    assert operator.locator("#agent-state").inner_text().startswith("stopped")
    operator.get_by_role("button", name="Start").click()
    assert operator.locator("#agent-state").inner_text().startswith("started")

    # When an admin saves bad thresholds
    admin = sign_in("admin")
    admin.goto(f"/console/agents/{name}")
    admin.get_by_label("Thresholds").fill("cpu_target = high")
    admin.get_by_role("button", name="Save configuration").click()
    # Then the field says why, and nothing changed
    assert "name = number" in admin.locator("#err-thresholds").inner_text()
    assert in_transaction(lambda: AgentConfig.get(AgentConfig.name == name).thresholds) == {}
    shot(admin, "bad-thresholds")
    # When the admin sets the automation level, approval, interval, thresholds and a route
    admin.get_by_label("Automation level").select_option("full-auto")
    admin.get_by_label("Every proposal waits for an approval").uncheck()
    admin.get_by_label("Interval").fill("600")
    admin.get_by_label("Thresholds").fill("cpu_target = 0.7\nmin_replicas = 2")
    admin.get_by_label("Routes").fill("source=prometheus, tag=~k8s-.*")
    admin.get_by_role("button", name="Save configuration").click()
    # Then the page says so and the API shows the same configuration
    assert f"Agent '{name}' configured." in admin.locator(".flash").first.inner_text()
    agents = request("GET", f"{stack.base}/api/v1/agents", key=stack.viewer).json()["agents"]
    shown = next(a for a in agents if a["name"] == name)
    assert (shown["automation_level"], shown["approval_required"], shown["interval_seconds"]) == (
        "full-auto",
        False,
        600,
    )
    assert shown["thresholds"] == {"cpu_target": 0.7, "min_replicas": 2}
    assert shown["routes"] == [{"matchers": [
        {"name": "source", "value": "prometheus", "is_regex": False, "is_equal": True},
        {"name": "tag", "value": "k8s-.*", "is_regex": True, "is_equal": True}]}]  # fmt: skip
    assert admin.get_by_label("Routes").input_value() == "source=prometheus, tag=~k8s-.*"
    shot(admin, "configured")
    # And the audit log has each change, by whom, as the API's are
    audit = request("GET", f"{stack.base}/api/v1/audit?object_kind=agent&object_id={name}", key=stack.admin).json()
    actions = [(row["action"], row["actor"].split(":")[-1]) for row in audit["entries"]]
    assert actions[:3] == [("agent.configured", "test admin"), ("agent.started", "console operator"),
                           ("agent.stopped", "console operator")], audit  # fmt: skip


def test_an_agents_proposal_shows_on_the_incident_timeline_and_its_target_on_the_topology(page, db, shot):
    # Given an incident, and an agent's proposal answering it (waiting for an approval)
    host = f"node-{uuid.uuid4().hex[:6]}"
    incident_id = in_transaction(lambda: open_incident(host, severity="high"))
    name = f"scaler-{uuid.uuid4().hex[:6]}"
    _agent(name)
    step = {
        "id": "scale",
        "type": "http",
        "method": "PATCH",
        "url": "http://127.0.0.1:9/scale",
        "json": {"replicas": 5},
    }
    action = AgentAction(type="scale", description="Scale web for the peak", target_resources=(f"host:{host}",),
                         steps=(step,), risk_level="medium", estimated_impact="replicas 3 -> 5",
                         incident_id=incident_id)  # fmt: skip
    settings = registry.settings_of(in_transaction(lambda: registry.get(name)))
    proposal = proposals.propose(settings, action, settings=Settings(autonomy_mode="auto"))
    assert proposal.execution_id is not None
    # When an operator opens the incident
    page.goto(f"/console/incidents/{incident_id}")
    # Then its agents' actions name the agent, what it proposed, on what, and where it stands
    listed = page.locator(f'#agent-actions li[data-execution="{proposal.execution_id}"]')
    assert f"{name} proposed scale on host:{host}" in listed.inner_text()
    assert "replicas 3 -> 5" in listed.inner_text()
    # And the timeline marks the agent's decision and execution as its own
    marked = page.locator(f'.timeline a.agent[data-agent="{name}"]')
    assert marked.count() >= 2
    shot(page, "incident")
    # When the operator opens the topology
    page.goto("/console/topology")
    # Then the agent's target is listed, in flight, with the agent and its action
    target = page.locator(f'#agent-targets tr[data-resource="host:{host}"]')
    assert target.get_attribute("data-active") == "yes"
    assert f"{name}: scale" in target.inner_text()
    shot(page, "topology")

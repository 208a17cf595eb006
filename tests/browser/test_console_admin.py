"""The console's admin pages in a real chromium: rules, templates, silences, maintenance, topology, dead letters, health."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pika
import pytest
from dramatiq import Message
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from app.models import AuditLog, Incident, MaintenanceWindow, Silence, TriggerRule
from tests.http import request

PAGES = {
    "rules": ("/console/rules", "Trigger rules"),
    "templates": ("/console/templates", "Response templates"),
    "silences": ("/console/silences", "Silences"),
    "maintenance": ("/console/maintenance", "Maintenance windows"),
    "topology": ("/console/topology", "Topology"),
    "dead-letters": ("/console/dead-letters", "Dead letters"),
    "health": ("/console/health", "Health"),
}


def open_incident(host: str, *, severity: str = "critical", service: str | None = None) -> str:
    """An unresolved incident on ``host``, stored as the correlator stores one."""
    now = datetime.now(UTC)
    incident = Incident.create(id=uuid.uuid4(), status="open", title=f"Disk full on {host}", root_event_id=uuid.uuid4(),
                               root_fingerprint=uuid.uuid4().hex, severity=severity, hosts=[host],
                               services=[service] if service else [], opened_at=now, last_event_at=now)  # fmt: skip
    return str(incident.id)


def create_rule(stack, name: str) -> int:
    body = {"name": name, "conditions": {"severity": ["critical"]}, "active": True}
    reply = request("POST", f"{stack.base}/api/v1/rules/triggers", json=body, key=stack.admin)
    assert reply.status == 201, reply.body
    return reply.json()["rule_id"]


@pytest.mark.parametrize("name", list(PAGES))
def test_each_admin_page_renders_for_an_operator_and_its_screenshot_is_written(page, shot, name):
    # Given an operator signed in
    path, heading = PAGES[name]

    # When they open the page
    page.goto(path)

    # Then it shows its heading and a screenshot of it is written
    assert page.get_by_role("heading", level=1).inner_text().startswith(heading)
    assert shot(page, name).stat().st_size > 0


def test_an_operator_disables_a_rule_from_the_list_and_the_change_is_audited(page, stack, db, shot):
    # Given an enabled rule
    rule_id = create_rule(stack, f"disk rule {uuid.uuid4().hex[:6]}")

    # When the operator presses its Disable button
    page.goto("/console/rules")
    page.locator(f'tr[data-rule-id="{rule_id}"]').get_by_role("button", name="Disable").click()

    # Then the rule is disabled in the database, the page says so, and the change is audited
    page.get_by_text(f"Rule {rule_id} disabled.").wait_for()
    shot(page, "disabled")
    assert TriggerRule.get_by_id(rule_id).active is False
    assert AuditLog.select().where((AuditLog.subject == f"trigger_rule:{rule_id}")
                                   & (AuditLog.action == "trigger_rule.updated")).exists()  # fmt: skip


def test_a_rule_with_an_unknown_operator_shows_the_apis_message_next_to_the_conditions(page, shot):
    # Given the new-rule form
    page.goto("/console/rules/new")
    name = f"bad rule {uuid.uuid4().hex[:6]}"
    page.get_by_label("Name").fill(name)

    # When a condition uses an operator the language does not have
    page.get_by_label("Conditions").fill('{"severity": {"bogus": 1}}')
    page.get_by_role("button", name="Create rule").click()

    # Then the form comes back with the validation's message tied to the conditions field, and nothing is stored
    error = page.locator("#err-conditions")
    assert "unknown operator bogus" in error.inner_text()
    assert page.get_by_label("Conditions").get_attribute("aria-invalid") == "true"
    assert page.get_by_label("Name").input_value() == name  # what was typed is kept
    shot(page, "inline-error")
    assert not TriggerRule.select().where(TriggerRule.rule_name == name).exists()


def test_a_backtest_shows_what_the_rule_would_have_fired(page, stack):
    # Given a rule
    rule_id = create_rule(stack, f"backtest rule {uuid.uuid4().hex[:6]}")

    # When the operator runs its backtest
    page.goto(f"/console/rules/{rule_id}")
    page.get_by_role("button", name="Run backtest").click()

    # Then the result lists the events examined and the firings
    result = page.locator("#backtest-result")
    assert "Events examined" in result.inner_text() and "Would have fired" in result.inner_text()


def test_a_silence_is_created_from_an_incident_with_its_hosts_prefilled_and_then_expired(page, db, shot):
    # Given an open incident on one host
    host = f"db-{uuid.uuid4().hex[:6]}"
    incident_id = open_incident(host)

    # When the operator follows "silence" from it and submits the prefilled form
    page.goto(f"/console/silences?incident_id={incident_id}")
    assert page.get_by_label("Matchers", exact=False).input_value() == f"host={host}"
    shot(page, "prefilled")
    page.get_by_role("button", name="Create silence").click()

    # Then an active silence on that host is stored and listed
    page.get_by_text("Silence", exact=False).first.wait_for()
    silence = Silence.select().order_by(Silence.id.desc()).first()
    assert silence.matchers == [{"name": "host", "value": host, "is_regex": False, "is_equal": True}]
    row = page.locator(f'#silences-active tr[data-silence-id="{silence.id}"]')
    assert host in row.inner_text()

    # And expiring it moves it to the expired list
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Expire").click()
    page.locator(f'#silences-expired tr[data-silence-id="{silence.id}"]').wait_for()
    assert Silence.get_by_id(silence.id).expired_at is not None


def test_a_maintenance_window_is_created_from_the_form_and_deleted(page, db):
    # Given the maintenance page
    page.goto("/console/maintenance")
    name = f"patch night {uuid.uuid4().hex[:6]}"
    start = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(hours=1)

    # When the operator fills in a window for two hosts and submits it
    page.get_by_label("Name").fill(name)
    page.get_by_label("Hosts", exact=False).fill("web-1, web-2")
    page.get_by_label("Starts (UTC)").fill(start.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Ends (UTC)").fill((start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Create window").click()

    # Then it is stored with that scope and period, and listed
    page.get_by_text(f"Maintenance window {name!r} created.").wait_for()
    window = MaintenanceWindow.get(MaintenanceWindow.name == name)
    assert window.scope["hosts"] == ["web-1", "web-2"] and window.starts_at == start

    # And deleting it removes it
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(f'tr[data-window-id="{window.id}"]').get_by_role("button", name="Delete").click()
    page.get_by_text(f"Maintenance window {window.id} deleted.").wait_for()
    assert not MaintenanceWindow.select().where(MaintenanceWindow.id == window.id).exists()


def test_a_bad_maintenance_period_is_shown_next_to_the_end_field(page, db):
    page.goto("/console/maintenance")
    page.get_by_label("Name").fill("backwards")
    page.get_by_label("Starts (UTC)").fill("2030-01-02T10:00")
    page.get_by_label("Ends (UTC)").fill("2030-01-02T09:00")
    page.get_by_role("button", name="Create window").click()
    assert "ends_at is after starts_at" in page.locator("#err-ends_at").inner_text()


def test_the_topology_is_drawn_with_an_open_incident_marked_on_its_host(page, stack, db, shot):
    # Given a topology and a critical incident on one of its hosts
    host = f"web-{uuid.uuid4().hex[:6]}"
    topology = {"hosts": {host: "switch-a", "switch-a": "core"}, "services": {"shop": host}}
    assert request("PUT", f"{stack.base}/api/v1/topology", json=topology, key=stack.admin).status == 200
    open_incident(host, severity="critical")

    # When the operator opens the topology page
    page.goto("/console/topology")

    # Then the SVG holds the host, its switch and its service, and the host carries an incident mark
    node = page.locator(f'svg g.node[data-name="{host}"]')
    assert node.get_attribute("data-incidents") == "1"
    assert node.get_attribute("data-severity") == "critical"
    for name in ("switch-a", "core", "shop"):
        assert page.locator(f'svg g.node[data-name="{name}"]').count() == 1
    shot(page, "graph")

    # And the host links to its incidents: a click anywhere in its box, here its middle between the two lines of text
    page.locator(f'svg g.node[data-name="{host}"] > rect').click()
    page.wait_for_url(f"**/console/incidents?host={host}")


def test_a_dead_letter_is_replayed_onto_its_queue_from_the_console(page, stack, db, shot):
    # Given a message dead-lettered on the real RabbitMQ's normalize.XQ
    url = stack.env["RABBITMQ_URL"]
    broker = RabbitmqBroker(url=url)
    broker.declare_queue("normalize", ensure=True)
    broker.close()
    message = Message(queue_name="normalize", actor_name="normalize", args=([{"raw": "x"}],), kwargs={},
                      options={"retries": 20, "traceback": "Traceback ...\nValueError: boom"})  # fmt: skip
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.queue_purge("normalize.XQ")
    channel.basic_publish("", "normalize.XQ", message.encode(), pika.BasicProperties(delivery_mode=2))

    # When the operator opens the queue's dead letters and presses Replay
    page.goto("/console/dead-letters?queue=normalize")
    assert message.message_id in page.locator("#dead-letters").inner_text()
    assert "ValueError: boom" in page.locator("#dead-letters").inner_text()
    shot(page, "listed")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Replay normalize").click()

    # Then the page says one was replayed, the replay is audited with the count, and the dead letter left
    # normalize.XQ (the stack's worker may take it from normalize and dead-letter it anew: with a fresh traceback)
    page.get_by_text("Replayed 1 dead letter(s) onto normalize.").wait_for()
    audit = AuditLog.get((AuditLog.action == "dead_letters.replayed") & (AuditLog.subject == "queue:normalize"))
    assert audit.details == {"replayed": 1}
    left = []
    while (got := channel.basic_get("normalize.XQ", auto_ack=True))[0] is not None:
        left.append(Message.decode(got[2]))
    connection.close()
    assert not [m for m in left if "ValueError: boom" in (m.options.get("traceback") or "")]


def test_health_shows_the_database_and_broker_up_and_every_queue(page):
    page.goto("/console/health")
    for check in ("database", "broker"):
        assert page.locator(f'#checks [data-check="{check}"] b').inner_text() == "up"
    for queue in ("normalize", "correlate", "evaluate", "decide", "execute", "rollback"):
        assert page.locator(f'#queues tr[data-queue="{queue}"]').count() == 1


def test_a_viewer_sees_no_write_buttons_and_a_direct_post_is_refused(sign_in, stack, db):
    # Given a rule and a viewer signed in
    rule_id = create_rule(stack, f"viewer rule {uuid.uuid4().hex[:6]}")
    viewer = sign_in("viewer")

    # When the viewer opens the admin pages
    viewer.goto("/console/rules")
    assert viewer.locator(f'tr[data-rule-id="{rule_id}"]').count() == 1
    # Then there is nothing to press
    assert viewer.get_by_role("button", name="Disable").count() == 0
    viewer.goto("/console/silences")
    assert viewer.get_by_role("button", name="Create silence").count() == 0
    viewer.goto("/console/maintenance")
    assert viewer.get_by_role("button", name="Create window").count() == 0

    # And a toggle posted with the viewer's own session and CSRF token is refused
    token = viewer.locator('input[name="csrf_token"]').first.get_attribute("value")
    reply = viewer.request.post(f"/console/rules/{rule_id}/toggle", form={"csrf_token": token or ""})
    assert reply.status == 403
    assert TriggerRule.get_by_id(rule_id).active is True

"""Notifications delivered to real local servers (an HTTP server per test, an SMTP sink): what each
channel receives, PagerDuty following an incident's lifecycle, approval links, retries; both databases."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import dramatiq
import pytest
from cryptography.fernet import Fernet
from falcon import testing

from app import secrets
from app.auth import create_key
from app.config import Settings, set_settings
from app.db import in_transaction
from app.executions import links
from app.executions.notices import page_approvers
from app.http.app import Deps, create_app
from app.ids import uuid7
from app.incidents import lifecycle
from app.models import Approval, AuditLog, Execution, Incident, Notification, ProcessedEvent
from app.notifications import pages, policies
from app.notifications.delivery import deliver, due
from app.notifications.routing import route
from app.publishing import BrokerDispatcher, DirectPublisher
from tests.targets import http_target, smtp_sink

KEY = Fernet.generate_key().decode()


@pytest.fixture
def target():
    with http_target() as server:
        yield server


@pytest.fixture
def sink():
    with smtp_sink() as server:
        yield server


@pytest.fixture
def settings(sink) -> Settings:
    configured = Settings(smtp_url=sink.url, notify_email_to=("oncall@example.com",), secret_keys=(KEY,),
                          public_url="https://ops.example.com", notify_max_attempts=3, notify_timeout_s=5)  # fmt: skip
    set_settings(configured)
    return configured


@pytest.fixture
def incident(any_db):
    """A high-severity incident on db-01 (postgres), with its root event."""
    now = datetime.now(UTC)
    event = ProcessedEvent.create(
        id=uuid7(), source_type="webhook", event_type="disk", severity="high", source_host="db-01",
        source_service="postgres", title="Disk 95% on db-01", occurred_at=now, fingerprint="f", tags=["prod"],
    )  # fmt: skip
    row = Incident.create(id=uuid.uuid4(), status="open", title="Disk 95% on db-01", root_event_id=event.id,
                          root_fingerprint="f", severity="high", hosts=["db-01"], services=["postgres"],
                          opened_at=now, last_event_at=now)  # fmt: skip
    ProcessedEvent.update(correlation_id=row.id).where(ProcessedEvent.id == event.id).execute()
    return row


def policy(channels: list[dict], **fields) -> dict:
    body = {"name": f"policy {uuid.uuid4().hex[:6]}", "channels": channels, **fields}
    return in_transaction(lambda: policies.create(policies.parse_policy(body), actor="key:1:alice"))


def send_due(settings: Settings, now: datetime | None = None) -> list[str | None]:
    at = now or datetime.now(UTC)
    return [deliver(i, settings=settings, now=lambda: at) for i in in_transaction(lambda: due(now=at))]


def escalate(incident: Incident) -> None:
    in_transaction(lambda: route(pages.escalation(decision_id=1, reasoning="No template: a high event is escalated.",
                                                  event_id=incident.root_event_id, incident_id=incident.id,
                                                  confidence=0.6), now=datetime.now(UTC)))  # fmt: skip


def test_pagerduty_follows_the_incident_from_trigger_to_acknowledge_to_resolve(incident, target, settings):
    # Given a PagerDuty channel whose routing key is a stored secret, at a local Events v2 endpoint
    in_transaction(lambda: secrets.put("PD_DB", "R0UT1NGKEY", keys=settings.secret_keys, actor="cli"))
    policy([{"type": "pagerduty", "routing_key": "{{ secret.PD_DB }}", "url": f"{target.url}/v2/enqueue"}])
    # When the incident escalates, then an operator acknowledges it, then resolves it
    escalate(incident)
    assert send_due(settings) == ["sent"]
    lifecycle.acknowledge(str(incident.id), actor="key:1:alice")
    assert send_due(settings) == ["sent"]
    lifecycle.resolve(str(incident.id), actor="key:1:alice")
    assert send_due(settings) == ["sent"]
    # Then PagerDuty got trigger, acknowledge, resolve with the secret's key and one dedup_key
    bodies = [r["json"] for r in target.requests]
    assert [r["path"] for r in target.requests] == ["/v2/enqueue"] * 3
    assert [b["event_action"] for b in bodies] == ["trigger", "acknowledge", "resolve"]
    assert {b["routing_key"] for b in bodies} == {"R0UT1NGKEY"}
    assert {b["dedup_key"] for b in bodies} == {f"opsconductor-incident-{incident.id}"}
    # And the trigger carries the Events v2 payload, our "high" as PagerDuty's "error"
    payload = bodies[0]["payload"]
    assert payload["summary"].startswith("Escalated: Disk 95% on db-01") and payload["source"] == "db-01"
    assert payload["severity"] == "error" and payload["custom_details"]["incident_id"] == str(incident.id)
    # And the routing key is stored by name only
    assert all("R0UT1NGKEY" not in str(n.payload) for n in Notification.select())


def test_teams_gets_the_adaptive_card_envelope_with_each_approvers_signed_link(incident, target, settings):
    # Given a Teams Workflows channel for approval requests, two operators and the requester's own key
    policy([{"type": "teams", "url": f"{target.url}/workflows/abc"}], matchers={"triggers": ["approval_requested"]})
    for person in ("alice", "bob"):
        create_key(role="operator", name=f"{person}'s key", person=person)
    create_key(role="operator", name="carol", person="carol")
    execution = Execution.create(id=uuid7(), definition={"actions": []}, status="awaiting_approval",
                                 requested_by="key:99:carol", event_id=incident.root_event_id, incident_id=incident.id)  # fmt: skip
    approval = Approval.create(execution_id=execution.id, requested_by="key:99:carol", approvers=["operator", "admin"],
                               reason="restart: high risk", risk_level="high", risk_score=7.5,
                               requested_actions=[{"action_id": "restart", "risk_level": "high"}], timeout_minutes=30,
                               expires_at=datetime.now(UTC) + timedelta(minutes=30))  # fmt: skip
    # When the approvers are paged
    ids = in_transaction(lambda: page_approvers(approval.id, settings=settings))
    assert [deliver(i, settings=settings) for i in ids] == ["sent"]
    # Then the body is the Adaptive Card envelope Workflows accept (not a MessageCard)
    body = target.requests[0]["json"]
    assert body["type"] == "message" and len(body["attachments"]) == 1
    attachment = body["attachments"][0]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive" and attachment["contentUrl"] is None
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4" and card["body"][0]["text"].startswith("Approval needed")
    # And it carries one link per approver (not the requester), each opening the console's confirmation page
    actions = {a["title"]: a["url"] for a in card["actions"]}
    assert set(actions) == {"Answer as alice", "Answer as bob"} and {a["type"] for a in card["actions"]} == {"Action.OpenUrl"}
    for person in ("alice", "bob"):
        url = urlsplit(actions[f"Answer as {person}"])
        assert f"{url.scheme}://{url.netloc}{url.path}" == "https://ops.example.com/console/approvals/confirm"
        claims = links.verify(parse_qs(url.query)["token"][0], person=person)
        assert claims.approval_id == approval.id and claims.person == person
    # And the request is paged once
    assert in_transaction(lambda: page_approvers(approval.id, settings=settings)) == []


def test_slack_webhook_and_email_each_get_their_own_format(incident, target, sink, settings):
    # Given a policy for failed executions with a Slack, a generic webhook and an email channel
    policy([{"type": "slack", "url": f"{target.url}/slack"},
            {"type": "webhook", "url": f"{target.url}/hook", "headers": {"X-Team": "db"}},
            {"type": "email", "to": ["dba@example.com"]}], matchers={"triggers": ["execution_failed"]})  # fmt: skip
    # When an execution about the incident fails
    page = pages.execution_failed(execution_id="exec-1", error="step restart failed: HTTP 500",
                                  event_id=incident.root_event_id, incident_id=incident.id)  # fmt: skip
    in_transaction(lambda: route(page, now=datetime.now(UTC)))
    assert send_due(settings) == ["sent"] * 3
    # Then Slack gets text and blocks with a button to the execution
    slack = next(r for r in target.requests if r["path"] == "/slack")["json"]
    assert slack["text"].startswith("Execution failed: exec-1") and slack["blocks"][0]["type"] == "header"
    assert slack["blocks"][-1]["elements"][0]["url"] == "https://ops.example.com/console/executions/exec-1"
    # And the webhook gets the notification as JSON, with its headers
    hook = next(r for r in target.requests if r["path"] == "/hook")
    assert hook["headers"]["X-Team"] == "db" and hook["json"]["trigger"] == "execution_failed"
    assert hook["json"]["incident_id"] == str(incident.id) and hook["json"]["severity"] == "high"
    # And the email goes to the channel's address
    mail = sink.wait_for(1, timeout_s=5)[-1]
    assert mail["rcpt_tos"] == ["dba@example.com"] and mail["message"]["Subject"] == "Execution failed: exec-1"
    assert "step restart failed: HTTP 500" in mail["message"].get_content()


def test_a_page_no_policy_takes_is_dropped_but_an_approval_falls_back_to_notify_email_to(incident, sink, settings):
    # Given no policy
    now = datetime.now(UTC)
    page = pages.execution_failed(execution_id="e", error="x", event_id=None, incident_id=incident.id)
    # When a failed execution and a failed rollback page
    assert in_transaction(lambda: route(page, now=now)) == []
    rollback = pages.rollback_failed(execution_id="e", error="undo failed", event_id=None, incident_id=incident.id)
    in_transaction(lambda: route(rollback, now=now, fallback=settings))
    assert send_due(settings) == ["sent"]
    # Then only the one with a fallback is emailed, to NOTIFY_EMAIL_TO
    mail = sink.wait_for(1, timeout_s=5)[-1]
    assert mail["rcpt_tos"] == ["oncall@example.com"] and mail["message"]["Subject"] == "Rollback failed: execution e"


@pytest.fixture
def notifier(stub_broker):
    """The notify actor on the in-process broker, with a worker."""
    from app.actors.notifier import notify

    notify.broker = stub_broker
    stub_broker.declare_actor(notify)
    worker = dramatiq.Worker(stub_broker, worker_timeout=100, worker_threads=1)
    worker.start()
    yield stub_broker
    worker.stop()


def test_a_failing_target_is_retried_with_backoff_then_failed_visibly_and_a_retry_sends_it(
    incident, settings, notifier
):
    # Given a webhook whose server answers 503 for now
    answers = {"/down": (503, "busy")}
    with http_target(responses=answers) as server:
        policy([{"type": "webhook", "url": f"{server.url}/down"}])
        escalate(incident)
        start = datetime.now(UTC)
        # When it is attempted: at once, after the 30 s backoff, after 60 s more
        first = send_due(settings, start)
        row = Notification.get()
        assert first == ["pending"] and row.attempts == 1 and row.next_attempt_at == start + timedelta(seconds=30)
        assert "HTTP 503" in row.last_error
        assert send_due(settings, start + timedelta(seconds=10)) == []  # not due yet
        assert send_due(settings, start + timedelta(seconds=30)) == ["pending"]
        assert Notification.get().next_attempt_at == start + timedelta(seconds=90)
        assert send_due(settings, start + timedelta(seconds=90)) == ["failed"]
        # Then after NOTIFY_MAX_ATTEMPTS (3) it is failed, audited, and shown as such by the API
        assert AuditLog.select().where(AuditLog.action == "notification.failed").count() == 1
        api = testing.TestClient(create_app(Deps(publisher=DirectPublisher(notifier),
                                                 dispatch=BrokerDispatcher(notifier), settings=settings)))  # fmt: skip
        operator = {"Authorization": f"Bearer {create_key(role='operator', name='op')}"}
        shown = api.simulate_get("/api/v1/notifications", params={"status": "failed"}, headers=operator).json
        assert shown["total_count"] == 1
        failed = shown["notifications"][0]
        assert failed["attempts"] == 3 and "HTTP 503" in failed["last_error"] and failed["trigger"] == "escalation"
        assert failed["channel"] == {"type": "webhook", "url": server.url}
        # When the target is back and an operator retries it
        del answers["/down"]
        retried = api.simulate_post(f"/api/v1/notifications/{failed['id']}/retry", headers=operator)
        assert retried.status_code == 202 and retried.json["status"] == "pending"
        # Then the notify actor sends it
        deadline = time.monotonic() + 10
        while Notification.get().status != "sent" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert Notification.get().status == "sent" and len(server.requests) == 4
        # And a sent notification is not retried again
        assert api.simulate_post(f"/api/v1/notifications/{failed['id']}/retry", headers=operator).status_code == 409


def test_the_api_refuses_bad_filters_and_policies_naming_the_field(any_db, stub_broker):
    api = testing.TestClient(create_app(Deps(publisher=DirectPublisher(stub_broker))))
    operator = {"Authorization": f"Bearer {create_key(role='operator', name='op')}"}
    bad = api.simulate_get("/api/v1/notifications", params={"status": "lost"}, headers=operator)
    assert bad.status_code == 400 and bad.json["field"] == "status"
    refused = api.simulate_post("/api/v1/notification-policies", json={"name": "x", "channels": [{"type": "fax"}]},
                                headers=operator)  # fmt: skip
    assert refused.status_code == 400 and refused.json["field"] == "channels[0].type"
    created = api.simulate_post("/api/v1/notification-policies", json={"name": "x", "channels": [{"type": "email"}]},
                                headers=operator)  # fmt: skip
    assert created.status_code == 201
    again = api.simulate_post("/api/v1/notification-policies", json={"name": "x", "channels": [{"type": "email"}]},
                              headers=operator)  # fmt: skip
    assert again.status_code == 409

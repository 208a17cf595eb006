"""Notification policies: validation, and which pages they take (trigger, severity, service, tags),
how often (repeat interval), when (quiet hours) and whether at all (maintenance windows)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time

from app.db import in_transaction
from app.errors import InvalidInput
from app.models import AuditLog, MaintenanceWindow, Notification
from app.notifications import policies
from app.notifications.routing import Page, collected, quiet_until, route

WEBHOOK = {"type": "webhook", "url": "https://hooks.example.com/oncall"}


def policy(name: str = "on-call", **fields) -> dict:
    body = {"name": name, "channels": [WEBHOOK], **fields}
    return in_transaction(lambda: policies.create(policies.parse_policy(body), actor="key:1:alice"))


def page(**fields) -> Page:
    defaults = {"trigger": "escalation", "subject": "incident:1", "title": "Disk full", "text": "db-01 is full",
                "severity": "high", "hosts": ("db-01",), "services": ("postgres",), "tags": ("prod",)}  # fmt: skip
    return Page(**{**defaults, **fields})


def routed(p: Page, now: datetime | None = None) -> list[Notification]:
    at = now or datetime.now(UTC)
    in_transaction(lambda: route(p, now=at))
    return list(Notification.select().order_by(Notification.id))


# Validation


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "channels": [WEBHOOK], "severites": ["high"]}, "severites"),
        ({"name": "x", "channels": [WEBHOOK], "matchers": {"severites": ["high"]}}, "matchers.severites"),
        ({"name": "x", "channels": [WEBHOOK], "matchers": {"severities": ["urgent"]}}, "matchers.severities"),
        ({"name": "x", "channels": [WEBHOOK], "matchers": {"triggers": ["paged"]}}, "matchers.triggers"),
        ({"name": "x", "channels": []}, "channels"),
        ({"name": "x", "channels": [{"type": "pager"}]}, "channels[0].type"),
        ({"name": "x", "channels": [{"type": "slack"}]}, "channels[0].url"),
        ({"name": "x", "channels": [{"type": "slack", "url": "ftp://x"}]}, "channels[0].url"),
        ({"name": "x", "channels": [{"type": "teams", "url": "https://{{ secret.HOST }}/x"}]}, "channels[0].url"),
        ({"name": "x", "channels": [{"type": "pagerduty"}]}, "channels[0].routing_key"),
        ({"name": "x", "channels": [{"type": "pagerduty", "routing_key": "{{ secret[event.host] }}"}]},
         "channels[0].routing_key"),
        ({"name": "x", "channels": [{"type": "email", "to": ["not an address"]}]}, "channels[0].to"),
        ({"name": "x", "channels": [{**WEBHOOK, "token": "t"}]}, "channels[0].token"),
        ({"name": "x", "channels": [WEBHOOK], "repeat_interval_minutes": -1}, "repeat_interval_minutes"),
        ({"name": "x", "channels": [WEBHOOK], "quiet_hours": {"start": "22:00", "end": "7"}}, "quiet_hours.end"),
        ({"name": "x", "channels": [WEBHOOK], "quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Mars/Base"}},
         "quiet_hours.timezone"),
        ({"channels": [WEBHOOK]}, "name"),
    ],
)
def test_a_bad_policy_is_refused_naming_the_field(body, field):
    # When a policy with one mistake is parsed
    with pytest.raises(InvalidInput) as refused:
        policies.parse_policy(body)
    # Then the error names the offending field
    assert refused.value.field == field


def test_a_policy_is_stored_and_its_writes_audited(any_db):
    # Given a valid policy with a secret routing key
    body = {"name": "db", "channels": [{"type": "pagerduty", "routing_key": "{{ secret.PD_DB }}"}],
            "matchers": {"services": ["postgres"]}, "quiet_hours": {"start": "22:00", "end": "07:00"}}  # fmt: skip
    # When it is created, replaced and deleted
    shown = in_transaction(lambda: policies.create(policies.parse_policy(body), actor="key:1:alice"))
    changed = in_transaction(lambda: policies.replace(shown["id"], policies.parse_policy({**body, "enabled": False}),
                                                      actor="key:1:alice"))  # fmt: skip
    in_transaction(lambda: policies.delete(shown["id"], actor="key:1:alice"))
    # Then the secret is kept by name, the defaults filled in, and each write audited
    assert shown["channels"][0]["routing_key"] == "{{ secret.PD_DB }}" and shown["repeat_interval_minutes"] == 60
    assert shown["quiet_hours"] == {"start": "22:00", "end": "07:00", "timezone": "UTC", "severities": []}
    assert changed["enabled"] is False
    actions = [r.action for r in AuditLog.select().where(AuditLog.subject == f"notification_policy:{shown['id']}")]
    assert actions == ["notification_policy.created", "notification_policy.updated", "notification_policy.deleted"]


# Routing


def test_a_page_goes_to_the_policies_whose_every_matcher_takes_it(any_db):
    # Given policies on severity, service, tags and trigger, one of each that does not match
    taken = [policy("critical+high", matchers={"severities": ["critical", "high"]}),
             policy("postgres", matchers={"services": ["Postgres"]}), policy("prod", matchers={"tags": ["prod"]}),
             policy("escalations", matchers={"triggers": ["escalation"]}), policy("everything")]  # fmt: skip
    policy("critical only", matchers={"severities": ["critical"]})
    policy("nginx", matchers={"services": ["nginx"]})
    policy("staging", matchers={"tags": ["staging"]})
    policy("approvals", matchers={"triggers": ["approval_requested"]})
    policy("high on nginx", matchers={"severities": ["high"], "services": ["nginx"]})
    policy("disabled", enabled=False)
    # When an escalation of a high postgres incident tagged prod pages
    rows = routed(page())
    # Then exactly the matching policies' channels get a pending notification, due now
    assert sorted(r.policy_id for r in rows) == sorted(p["id"] for p in taken)
    assert {r.status for r in rows} == {"pending"} and {r.trigger for r in rows} == {"escalation"}


def test_the_same_page_is_not_sent_again_within_the_repeat_interval(any_db):
    # Given a policy that repeats at most every 30 minutes
    policy(repeat_interval_minutes=30)
    start = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    # When the incident escalates, again 10 minutes later, then 31 minutes after the first
    routed(page(), start)
    routed(page(), start + timedelta(minutes=10))
    rows = routed(page(), start + timedelta(minutes=31))
    # Then it paged twice: the second escalation fell within the interval
    assert len(rows) == 2
    # And another incident pages at once
    assert len(routed(page(subject="incident:2"), start + timedelta(minutes=32))) == 3


def test_quiet_hours_delay_a_page_to_their_end_unless_its_severity_is_exempt(any_db):
    # Given quiet hours 22:00-07:00 in Paris, critical pages exempt
    policy(quiet_hours={"start": "22:00", "end": "07:00", "timezone": "Europe/Paris", "severities": ["critical"]})
    # When a high and a critical page arrive at 23:30 Paris time (22:30 UTC in winter)
    with freeze_time("2030-01-10T22:30:00Z"), collected() as due_now:
        now = datetime.now(UTC)
        high = routed(page(subject="incident:1"), now)[-1]
        critical = routed(page(subject="incident:2", severity="critical"), now)[-1]
    # Then the high page waits for 07:00 Paris (06:00 UTC) and the critical one is due at once
    assert high.next_attempt_at == datetime(2030, 1, 11, 6, 0, tzinfo=UTC) and "quiet hours" in high.reason
    assert critical.next_attempt_at == datetime(2030, 1, 10, 22, 30, tzinfo=UTC) and critical.reason is None
    assert due_now == [critical.id]


def test_quiet_hours_within_one_day_and_outside_them():
    quiet = {"start": "12:00", "end": "14:00", "timezone": "UTC", "severities": []}
    assert quiet_until(quiet, "low", datetime(2030, 1, 1, 13, 0, tzinfo=UTC)) == datetime(2030, 1, 1, 14, 0, tzinfo=UTC)
    assert quiet_until(quiet, "low", datetime(2030, 1, 1, 14, 0, tzinfo=UTC)) is None
    overnight = {"start": "22:00", "end": "07:00", "timezone": "UTC", "severities": []}
    assert quiet_until(overnight, "low", datetime(2030, 1, 1, 3, 0, tzinfo=UTC)) == datetime(2030, 1, 1, 7, 0, tzinfo=UTC)
    assert quiet_until(overnight, "low", datetime(2030, 1, 1, 12, 0, tzinfo=UTC)) is None


def test_a_maintenance_window_that_says_so_suppresses_pages_visibly(any_db):
    # Given a policy, a window on db-* that suppresses notifications and one on web-* that does not
    policy()
    now = datetime.now(UTC)
    window = MaintenanceWindow.create(name="db patching", scope={"hosts": ["db-*"]}, starts_at=now - timedelta(hours=1),
                                      ends_at=now + timedelta(hours=1), suppress_notifications=True)  # fmt: skip
    MaintenanceWindow.create(name="web patching", scope={"hosts": ["web-*"]}, starts_at=now - timedelta(hours=1),
                             ends_at=now + timedelta(hours=1))  # fmt: skip
    # When db-01 and web-01 escalate
    with collected() as due_now:
        db, web = routed(page(subject="incident:db"), now)[-1], routed(page(subject="incident:web", hosts=("web-01",)), now)[-1]
    # Then db-01's page is kept as suppressed, naming the window, and web-01's goes out
    assert db.status == "suppressed" and db.reason == f"maintenance window {window.id} (db patching)"
    assert db.next_attempt_at is None
    assert web.status == "pending" and due_now == [web.id]

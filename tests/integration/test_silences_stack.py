"""Silences over the real stack (gunicorn, a dramatiq worker, RabbitMQ, PostgreSQL): a silenced event is
stored and correlated but fires no rule, shows its silence, and fires again once the silence expired."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

from app.models import AuditLog, RuleExecution
from tests.http import request
from tests.processes import wait_for

#: Seconds after a change of rules or silences before every evaluator applies it (both refresh every 2 s).
REFRESH_WAIT_S = 2.5


def _rule(stack, source: str) -> int:
    rule = {"name": f"silences {source}", "conditions": {"source": source}, "max_triggers_per_hour": 100}
    created = request("POST", f"{stack.base}/api/v1/rules/triggers", json=rule, key=stack.admin)
    assert created.status == 201, created.body
    return created.json()["rule_id"]


def _post(stack, source: str, host: str, title: str = "Disk full") -> str:
    event = {"source": source, "host": host, "severity": "high", "title": f"{title} on {host}"}
    accepted = request("POST", f"{stack.base}/api/v1/events/webhook", json=event, key=stack.ingest)
    assert accepted.status == 202, accepted.body
    return accepted.json()["event_id"]


def _event(stack, event_id: str) -> dict:
    reply = request("GET", f"{stack.base}/api/v1/events/{event_id}", key=stack.viewer)
    return reply.json() if reply.status == 200 else {}


def _firing(event_id: str) -> RuleExecution | None:
    return RuleExecution.get_or_none(RuleExecution.triggering_event_id == event_id)


def _silenced(stack, event_id: str) -> dict | None:
    """The event once it is correlated and the evaluator recorded its silence."""
    event = _event(stack, event_id)
    return event if event.get("correlation_id") and event.get("silenced_by") else None


def _in_an_hour() -> str:
    return (datetime.now(UTC) + timedelta(hours=1)).isoformat()


def test_a_silenced_event_is_correlated_fires_nothing_and_fires_again_after_expiry(stack, db):
    # Given a rule firing on every event of this source, and a silence of one host (an operator's)
    tag = uuid.uuid4().hex[:6]
    source, quiet_host, loud_host = f"silences-{tag}", f"web-{tag}-01", f"db-{tag}-01"
    rule_id = _rule(stack, source)
    silence = {"matchers": [{"name": "host", "value": f"web-{tag}-.*", "is_regex": True}],
               "ends_at": _in_an_hour(), "comment": "disk replacement"}  # fmt: skip
    assert request("POST", f"{stack.base}/api/v1/silences", json=silence, key=stack.viewer).status == 403
    created = request("POST", f"{stack.base}/api/v1/silences", json=silence, key=stack.admin)
    assert created.status == 201, created.body
    silence_id = created.json()["id"]
    assert created.json()["state"] == "active"
    time.sleep(REFRESH_WAIT_S)
    # When an event of the silenced host and one of another host arrive
    quiet, loud = _post(stack, source, quiet_host), _post(stack, source, loud_host)
    # Then the other host's event fires the rule
    wait_for(lambda: _firing(loud), message="the unsilenced event's firing")
    # and the silenced one is stored, correlated into an incident, shows its silence, and fired nothing
    shown = wait_for(lambda: _silenced(stack, quiet), message="the silenced event correlated and marked")
    assert shown["silenced_by"] == silence_id and shown["host"] == quiet_host
    incident = request("GET", f"{stack.base}/api/v1/incidents/{shown['correlation_id']}", key=stack.viewer)
    assert incident.status == 200 and quiet_host in incident.json()["hosts"]
    assert _firing(quiet) is None
    assert RuleExecution.select().where(RuleExecution.trigger_rule_id == rule_id).count() == 1
    # and the events' listing says which events were silenced
    listed = request("GET", f"{stack.base}/api/v1/events?silenced=true&host={quiet_host}", key=stack.viewer).json()
    assert [e["id"] for e in listed["events"]] == [quiet]
    unsilenced = request("GET", f"{stack.base}/api/v1/events?silenced=false&host={quiet_host}", key=stack.viewer)
    assert unsilenced.json()["events"] == []

    # When the silence is expired
    expired = request("DELETE", f"{stack.base}/api/v1/silences/{silence_id}", key=stack.admin)
    assert expired.status == 200 and expired.json()["state"] == "expired"
    assert request("DELETE", f"{stack.base}/api/v1/silences/{silence_id}", key=stack.admin).status == 409
    time.sleep(REFRESH_WAIT_S)
    again = _post(stack, source, quiet_host, "Disk read errors")
    # Then a matching event fires again, and the expired silence is kept for history
    wait_for(lambda: _firing(again), message="the firing after the silence expired")
    assert _event(stack, again)["silenced_by"] is None
    history = request("GET", f"{stack.base}/api/v1/silences?state=expired", key=stack.viewer).json()
    assert silence_id in [s["id"] for s in history["silences"]]
    audited = AuditLog.select(AuditLog.action).where(AuditLog.subject == f"silence:{silence_id}").order_by(AuditLog.id)
    assert [row.action for row in audited] == ["silence.created", "silence.expired"]


def test_a_silence_from_an_incident_in_one_click_silences_its_next_event(stack, db):
    # Given an incident of one host, from an event that fired a rule
    tag = uuid.uuid4().hex[:6]
    source, host = f"one-click-{tag}", f"app-{tag}-01"
    _rule(stack, source)
    time.sleep(REFRESH_WAIT_S)
    title = "Payment gateway refused connections"  # unlike the other tests' titles: an incident of its own
    first = _post(stack, source, host, title)
    wait_for(lambda: _firing(first), message="the first event's firing")
    incident_id = wait_for(lambda: _event(stack, first).get("correlation_id"), message="the incident")
    # When an operator silences the incident in one click (a viewer may not)
    url = f"{stack.base}/api/v1/incidents/{incident_id}/silence"
    assert request("POST", url, json={}, key=stack.viewer).status == 403
    bad = request("POST", url, json={"duration_minutes": "soon"}, key=stack.admin)
    assert bad.status == 400 and bad.json()["field"] == "duration_minutes"
    created = request("POST", url, json={"duration_minutes": 30, "comment": "known, working on it"}, key=stack.admin)
    assert created.status == 201, created.body
    silence = created.json()
    assert silence["matchers"] == [{"name": "host", "value": host, "is_regex": False, "is_equal": True}]
    assert silence["comment"] == "known, working on it" and silence["created_by"].startswith("key:")
    time.sleep(REFRESH_WAIT_S)
    # Then the incident's next event is silenced and fires nothing
    second = _post(stack, source, host, f"{title} again")
    shown = wait_for(lambda: _silenced(stack, second), message="the next event silenced")
    assert shown["silenced_by"] == silence["id"] and shown["correlation_id"] == incident_id
    assert _firing(second) is None


def test_an_invalid_silence_is_refused_naming_the_field(stack):
    url = f"{stack.base}/api/v1/silences"
    refused = request("POST", url, key=stack.admin, json={
        "matchers": [{"name": "host", "value": "web-01"}, {"name": "host", "value": "(?<=a)b", "is_regex": True}],
        "ends_at": _in_an_hour(), "comment": "x"})  # fmt: skip
    assert refused.status == 400 and refused.json()["field"] == "matchers[1].value"
    nothing = request("POST", url, key=stack.admin, json={"matchers": [{"name": "tag", "value": ".*", "is_regex": True}],
                                                          "ends_at": _in_an_hour(), "comment": "x"})  # fmt: skip
    assert nothing.status == 400 and nothing.json()["field"] == "matchers"
    unknown = request("POST", url, key=stack.admin, json={"matchers": [{"name": "host", "value": "a"}], "ends_at": _in_an_hour(),
                                                          "comment": "x", "createdBy": "me"})  # fmt: skip
    assert unknown.status == 400 and unknown.json()["field"] == "createdBy"
    assert request("GET", f"{url}?state=muted", key=stack.viewer).json()["field"] == "state"
    assert request("GET", f"{url}/987654", key=stack.viewer).status == 404

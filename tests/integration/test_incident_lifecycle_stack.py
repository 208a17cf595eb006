"""An incident worked over the real stack (gunicorn, a worker, RabbitMQ, PostgreSQL): an event posted over
HTTP becomes an incident that an operator acknowledges, assigns, annotates, resolves and closes, with the
roles, bad bodies and illegal moves refused, and the timeline telling it all."""

from __future__ import annotations

import uuid

import pytest

from app.auth import create_key
from tests.http import request
from tests.processes import wait_for


@pytest.fixture(scope="module")
def operator(stack) -> str:
    return create_key(role="operator", name="lifecycle operator", person="alice")


def _incident_of(stack, event_id: str) -> dict:
    def correlated():
        event = request("GET", f"{stack.base}/api/v1/events/{event_id}", key=stack.viewer)
        return event.json().get("correlation_id") if event.status == 200 else None

    incident_id = wait_for(correlated, timeout=30, message="the event correlated into an incident")
    return request("GET", f"{stack.base}/api/v1/incidents/{incident_id}", key=stack.viewer).json()


def _post(stack, key: str, incident_id: str, what: str, body: dict | None = None):
    return request("POST", f"{stack.base}/api/v1/incidents/{incident_id}/{what}", json=body, key=key)


def test_an_operator_works_an_incident_from_open_to_closed_over_http(stack, operator):
    # Given an event posted over the webhook, correlated into an open incident
    host = f"lc-{uuid.uuid4().hex[:6]}"
    posted = request("POST", f"{stack.base}/api/v1/events/webhook", key=stack.ingest,
                     json={"source": "app", "host": host, "severity": "high", "title": f"Disk full on {host}"}).json()  # fmt: skip
    incident = _incident_of(stack, posted["event_id"])
    incident_id = incident["id"]
    assert incident["status"] == "open" and incident["assignee"] is None
    # When the operator acknowledges it (no body), assigns it, writes a note, resolves and closes it
    acked = _post(stack, operator, incident_id, "acknowledge")
    assigned = _post(stack, operator, incident_id, "assign", {"assignee": "team-storage", "comment": "theirs"})
    noted = _post(stack, operator, incident_id, "notes", {"text": "Cleaned /var/log"})
    resolved = _post(stack, operator, incident_id, "resolve", {"comment": "disk at 40%"})
    closed = _post(stack, operator, incident_id, "close")
    # Then each answer is the incident as it now is, naming the person behind the key
    assert acked.status == 200 and acked.json()["status"] == "acknowledged" and acked.json()["acknowledged_by"] == "alice"
    assert assigned.status == 200 and assigned.json()["assignee"] == "team-storage"
    assert noted.status == 201 and noted.json()["author"] == "alice" and noted.json()["text"] == "Cleaned /var/log"
    assert resolved.status == 200 and resolved.json()["resolved_by"] == "alice"
    assert closed.status == 200 and closed.json()["status"] == "closed"
    # And the list finds it by its new status and assignee, and the notes read back
    listed = request("GET", f"{stack.base}/api/v1/incidents?status=closed&assignee=team-storage", key=stack.viewer).json()
    assert incident_id in [i["id"] for i in listed["incidents"]]
    notes = request("GET", f"{stack.base}/api/v1/incidents/{incident_id}/notes", key=stack.viewer).json()["notes"]
    assert [n["text"] for n in notes] == ["Cleaned /var/log"]
    # And the timeline shows the event and every change, in order
    told = request("GET", f"{stack.base}/api/v1/incidents/{incident_id}/timeline", key=stack.viewer).json()
    assert any(e["kind"] == "event" and e["details"]["event_id"] == posted["event_id"] for e in told["entries"])
    moves = [e["details"].get("to") for e in told["entries"] if e["kind"] == "status" and e["details"].get("to")]
    assert moves == ["open", "acknowledged", "resolved", "closed"]
    assert [e["details"]["assignee"] for e in told["entries"] if e["details"].get("activity") == "assignment"] == ["team-storage"]
    assert [e["at"] for e in told["entries"]] == sorted(e["at"] for e in told["entries"])


def test_viewers_bad_bodies_illegal_moves_and_unknown_incidents_are_refused(stack, operator):
    # Given an open incident
    host = f"lc-{uuid.uuid4().hex[:6]}"
    posted = request("POST", f"{stack.base}/api/v1/events/webhook", key=stack.ingest,
                     json={"source": "app", "host": host, "severity": "medium", "title": "Queue stuck"}).json()  # fmt: skip
    incident_id = _incident_of(stack, posted["event_id"])["id"]
    # When a viewer tries to acknowledge it, then 403 and it stays open
    assert _post(stack, stack.viewer, incident_id, "acknowledge").status == 403
    # When the operator sends bad bodies, then 400 naming the field
    for what, body, field in [
        ("assign", {"assignee": ""}, "assignee"),
        ("notes", {"text": "   "}, "text"),
        ("acknowledge", {"comment": 42}, "comment"),
        ("merge", {"source_ids": "not-a-list", "reason": "x"}, "source_ids"),
        ("split", {"event_ids": [posted["event_id"]], "reason": ""}, "reason"),
        ("assign", ["alice"], "body"),
    ]:
        reply = _post(stack, operator, incident_id, what, body)
        assert reply.status == 400 and reply.json()["field"] == field, (what, reply.status, reply.body[:300])
    # When it is closed while open, then 409 saying from where to where
    refused = _post(stack, operator, incident_id, "close")
    assert refused.status == 409 and "from open to closed" in refused.json()["message"]
    # When an incident does not exist, then 404
    assert _post(stack, operator, str(uuid.uuid4()), "acknowledge").status == 404
    assert request("GET", f"{stack.base}/api/v1/incidents/nope/timeline", key=stack.viewer).status == 404
    # And none of it changed the incident
    assert request("GET", f"{stack.base}/api/v1/incidents/{incident_id}", key=stack.viewer).json()["status"] == "open"


def test_two_incidents_are_merged_and_split_again_over_http(stack, operator):
    # Given two incidents on two hosts
    tag = uuid.uuid4().hex[:6]
    first = request("POST", f"{stack.base}/api/v1/events/webhook", key=stack.ingest,
                    json={"source": "app", "host": f"a-{tag}", "severity": "high", "title": "Payment API 500s"}).json()  # fmt: skip
    second = request("POST", f"{stack.base}/api/v1/events/webhook", key=stack.ingest,
                     json={"source": "db", "host": f"b-{tag}", "severity": "critical", "title": "Primary down"}).json()  # fmt: skip
    target, source = _incident_of(stack, first["event_id"]), _incident_of(stack, second["event_id"])
    assert target["id"] != source["id"]
    # When the operator merges the second into the first
    merged = _post(stack, operator, target["id"], "merge", {"source_ids": [source["id"]], "reason": "one outage"})
    # Then the first holds both events, worst severity, and the second is closed into it
    assert merged.status == 200, merged.body[:300]
    assert merged.json()["event_count"] == 2 and merged.json()["severity"] == "critical"
    gone = request("GET", f"{stack.base}/api/v1/incidents/{source['id']}", key=stack.viewer).json()
    assert gone["status"] == "closed" and gone["merged_into"] == target["id"]
    # When the operator splits the database event off again
    split = _post(stack, operator, target["id"], "split", {"event_ids": [second["event_id"]], "reason": "separate cause"})
    # Then a new incident holds it, and the first is back to its own event
    assert split.status == 201 and split.json()["event_count"] == 1 and split.json()["hosts"] == [f"b-{tag}"]
    back = request("GET", f"{stack.base}/api/v1/incidents/{target['id']}", key=stack.viewer).json()
    assert back["event_count"] == 1 and [e["id"] for e in back["events"]] == [first["event_id"]]

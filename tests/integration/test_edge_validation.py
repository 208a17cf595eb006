"""The HTTP edge refuses, with a 400 naming the field, what PostgreSQL or the broker would refuse later;
chunked bodies are read; PagerDuty keys are checked before bodies are parsed; one bad request fails alone.

Over a real gunicorn (gevent), RabbitMQ and PostgreSQL.
"""

from __future__ import annotations

import http.client
import json
import threading
import uuid
from urllib.parse import urlsplit

from app.events.limits import MAX_DEPTH
from tests.http import Reply, request
from tests.processes import wait_for


def nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth):
        value = {"a": value}
    return value


def event(**extra) -> dict:
    return {"source": "edge-test", "severity": "low", "title": "edge", "host": f"h-{uuid.uuid4().hex[:8]}", **extra}


def post(stack, path: str, body, *, key: str | None = None) -> Reply:
    return request("POST", stack.base + path, json=body, key=stack.ingest if key is None else key)


def stored(stack, event_id: str) -> dict:
    def get():
        reply = request("GET", f"{stack.base}/api/v1/events/{event_id}", key=stack.viewer)
        return reply.json() if reply.status == 200 else None

    return wait_for(get, timeout=20, message=f"event {event_id} stored")


def test_metadata_nested_300_deep_gets_a_400_naming_the_field_not_a_503(stack):
    # Given an event whose metadata is nested 300 deep (orjson decodes it, but cannot encode it for the broker)
    body = event(metadata=nested(300))
    # When it is posted
    reply = post(stack, "/api/v1/events/webhook", body)
    # Then it is refused as bad input, naming the path to the first level too deep
    assert reply.status == 400, reply.body
    answer = reply.json()
    assert answer["field"].startswith("metadata.a.a.a")
    assert f"deeper than {MAX_DEPTH} levels" in answer["message"]
    # And the web process still accepts what it should
    assert post(stack, "/api/v1/events/webhook", event(metadata=nested(10))).status == 202


def test_a_nul_anywhere_gets_a_400_naming_the_field(stack):
    cases = [
        (event(title="bad\x00title"), "title"),
        (event(metadata={"a": {"b": "x\x00"}}), "metadata.a.b"),
        (event(metadata={"key\x00": 1}), "metadata.key\x00"),
        ([event(), event(), event(), event(title="t\x00")], "[3].title"),
    ]
    for body, field in cases:
        reply = post(stack, "/api/v1/events/webhook", body)
        assert reply.status == 400, (field, reply.body)
        assert reply.json()["field"] == field
        assert "NUL" in reply.json()["message"]
    # An Alertmanager label with a NUL is named in the adapter's terms
    alerts = {"alerts": [{"status": "firing", "labels": {"alertname": "X", "instance": "i\x00"}}]}
    reply = post(stack, "/api/v1/events/webhook/alertmanager", alerts)
    assert (reply.status, reply.json()["field"]) == (400, "alerts[0].labels.instance")


def test_a_lone_surrogate_gets_a_400_naming_the_field(stack):
    # Given a body with a lone surrogate escape, valid JSON text that orjson (and PostgreSQL) refuse
    data = json.dumps(event(description="half \ud800 pair")).encode()
    assert b"\\ud800" in data
    # When it is posted
    reply = request(
        "POST", stack.base + "/api/v1/events/webhook", data=data, key=stack.ingest,
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    # Then the field is named
    assert reply.status == 400, reply.body
    assert reply.json()["field"] == "description" and "surrogate" in reply.json()["message"]


def deep_and(depth: int) -> dict:
    condition: dict = {"severity": "high"}
    for _ in range(depth):
        condition = {"$and": [condition]}
    return condition


def test_rule_and_template_bodies_nested_300_deep_get_400_not_500(stack):
    # Given a rule and a template, otherwise valid, nested 300 deep (they used to answer 500)
    name = f"deep-{uuid.uuid4().hex[:6]}"
    bodies = [
        ("/api/v1/rules/triggers", {"name": name, "conditions": deep_and(300)}, "conditions.$and[0].$and"),
        ("/api/v1/rules/triggers", {"name": name, "conditions": {"severity": {"$eq": nested(300)}}},
         "conditions.severity.$eq.a"),
        ("/api/v1/rules/responses",
         {"name": name, "actions": [{"id": "x", "type": "notification", "action": "log", "parameters": nested(300)}]},
         "actions[0].parameters.a"),
    ]  # fmt: skip
    for path, body, field in bodies:
        # When each is posted
        reply = post(stack, path, body, key=stack.admin)
        # Then it is refused as bad input, naming where
        assert reply.status == 400, (path, reply.status, reply.body)
        assert reply.json()["field"].startswith(field)


def chunked_post(stack, path: str, chunks, *, key: str) -> tuple[int, dict]:
    parts = urlsplit(stack.base)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=20)
    try:
        connection.request(
            "POST", path, body=iter(chunks), encode_chunked=True,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        )  # fmt: skip
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


def test_a_chunked_body_is_read_and_the_event_stored(stack):
    # Given an event sent with Transfer-Encoding: chunked and no Content-Length
    body = json.dumps(event(title="sent in chunks")).encode()
    chunks = [body[i : i + 7] for i in range(0, len(body), 7)]
    # When it is posted
    status, answer = chunked_post(stack, "/api/v1/events/webhook", chunks, key=stack.ingest)
    # Then it is accepted (it used to be read as "the body is empty") and stored
    assert status == 202, answer
    assert stored(stack, answer["event_id"])["title"] == "sent in chunks"


def test_a_chunked_body_over_the_limit_gets_413(stack):
    # Given 1.5 MiB of JSON, chunked (the limit is 1 MiB)
    filler = "x" * 1024
    chunks = [b'{"source": "s", "title": "t", "metadata": {"f": ['] + [f'"{filler}",'.encode()] * 1536 + [b'"x"]}}']
    # When it is posted
    status, answer = chunked_post(stack, "/api/v1/events/webhook", chunks, key=stack.ingest)
    # Then it is refused as too large
    assert status == 413, answer


def test_pagerduty_without_a_valid_routing_key_gets_401_before_its_body_is_parsed(stack):
    url = stack.base + "/v2/enqueue"
    # Given bodies that are not JSON, or nested too deep, from callers without a valid key
    for data in (b'{"routing_key": "nope", "payload": {', b"not json at all", json.dumps(nested(300)).encode()):
        # When they are posted
        reply = request("POST", url, data=data, headers={"Content-Type": "application/json"})
        # Then they are refused for their key, not for their body
        assert reply.status == 401, (data[:40], reply.status, reply.body)
    # And with a valid key, a bad body is then a 400
    reply = request(
        "POST", url, data=f'{{"routing_key": "{stack.ingest}", "payload": {{'.encode(),
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    assert reply.status == 400
    # And a routing_key hidden in a nested object does not authenticate a body whose own key is wrong
    body = {"routing_key": "nope", "event_action": "trigger",
            "payload": {"summary": "s", "source": "x", "severity": "info",
                        "custom_details": {"routing_key": stack.ingest}}}  # fmt: skip
    assert request("POST", url, json=body).status == 401


def test_one_bad_request_among_concurrent_ones_fails_alone(stack):
    # Given 24 good requests and one nested too deep, sent at once so they share publish groups
    results: dict[int, Reply] = {}
    gate = threading.Barrier(25)

    def send(i: int) -> None:
        body = event(title=f"concurrent {i}", metadata=nested(300) if i == 12 else {"i": i})
        gate.wait()
        results[i] = post(stack, "/api/v1/events/webhook", body)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(25)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    # Then every good one is accepted and the bad one alone gets a 400
    assert results[12].status == 400
    assert [results[i].status for i in range(25) if i != 12] == [202] * 24
    for i in (0, 24):
        assert stored(stack, results[i].json()["event_id"])["title"] == f"concurrent {i}"

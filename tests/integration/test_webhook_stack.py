"""Events in over real HTTP (gunicorn + gevent), through a real RabbitMQ and worker, into PostgreSQL, read back."""

from __future__ import annotations

import uuid

from tests.http import request
from tests.processes import wait_for


def post(stack, path: str, body, *, key: str | None = None, headers=None):
    return request("POST", stack.base + path, json=body, key=key if key is not None else stack.ingest, headers=headers)


def stored(stack, event_id: str, *, timeout: float = 20.0) -> dict:
    def get():
        reply = request("GET", f"{stack.base}/api/v1/events/{event_id}", key=stack.viewer)
        return reply.json() if reply.status == 200 else None

    return wait_for(get, timeout=timeout, message=f"event {event_id} stored")


def test_a_generic_webhook_event_is_accepted_stored_and_read_back(stack):
    # Given an event in the spec's generic schema
    host = f"web-{uuid.uuid4().hex[:8]}"
    body = {
        "source": "nagios",
        "source_type": "nagios",
        "event_type": "threshold_breach",
        "severity": "critical",
        "timestamp": "2026-11-20T10:30:00Z",
        "host": host,
        "service": "nginx",
        "title": "CPU usage exceeded 95%",
        "description": "CPU at 97.5% for 5 minutes",
        "metadata": {"metrics": {"cpu_usage": 97.5}},
        "tags": ["production", "web-server"],
    }
    # When it is posted
    reply = post(stack, "/api/v1/events/webhook", body)
    # Then it is accepted with the spec's answer
    assert reply.status == 202, reply.body
    answer = reply.json()
    assert answer["status"] == "accepted"
    assert uuid.UUID(answer["event_id"]) and uuid.UUID(answer["correlation_id"])
    assert isinstance(answer["processing_time_ms"], float | int)
    # And it is stored normalized, under the id the caller got
    event = stored(stack, answer["event_id"])
    assert event["id"] == answer["event_id"]
    assert (event["severity"], event["host"], event["service"], event["event_type"]) == (
        "critical", host, "nginx", "threshold_breach",
    )  # fmt: skip
    assert event["title"] == "CPU usage exceeded 95%"
    assert event["occurred_at"] == "2026-11-20T10:30:00Z"
    assert event["metadata"]["metrics"]["cpu_usage"] == 97.5
    assert event["tags"] == ["production", "web-server"]
    assert event["occurrences"] == 1
    # And the list endpoint finds it by its filters
    listing = request("GET", f"{stack.base}/api/v1/events?host={host}&severity=critical", key=stack.viewer).json()
    assert [e["id"] for e in listing["events"]] == [answer["event_id"]]
    assert listing["total_count"] == 1 and listing["has_more"] is False


def test_an_array_of_events_gets_one_answer_per_event(stack):
    host = f"db-{uuid.uuid4().hex[:8]}"
    body = [{"source": "zabbix", "severity": "low", "host": host, "title": f"check {i}"} for i in range(25)]
    reply = post(stack, "/api/v1/events/webhook", body)
    assert reply.status == 202
    answers = reply.json()
    assert len(answers) == 25 and len({a["event_id"] for a in answers}) == 25
    # One correlation id for the request, a UUID of its own (made with the events' ids), or the caller's
    [correlation_id] = {a["correlation_id"] for a in answers}
    assert uuid.UUID(correlation_id).version == 7 and correlation_id not in {a["event_id"] for a in answers}
    given = str(uuid.uuid4())
    other = [{"source": "zabbix", "host": f"x-{host}", "title": f"check {i}"} for i in range(2)]
    echoed = post(stack, "/api/v1/events/webhook", other, headers={"X-Request-ID": given}).json()
    assert [a["correlation_id"] for a in echoed] == [given, given]

    def all_stored():
        page = request("GET", f"{stack.base}/api/v1/events?host={host}&limit=100", key=stack.viewer).json()
        return page if page["total_count"] == 25 else None

    page = wait_for(all_stored, message="25 events stored")
    assert {e["id"] for e in page["events"]} == {a["event_id"] for a in answers}


def test_the_same_event_twice_is_one_event_with_two_occurrences(stack):
    host = f"dup-{uuid.uuid4().hex[:8]}"
    body = {"source": "script", "severity": "medium", "host": host, "title": "Backup failed"}
    first = post(stack, "/api/v1/events/webhook", body).json()
    stored(stack, first["event_id"])
    second = post(stack, "/api/v1/events/webhook", body).json()

    def folded():
        event = request("GET", f"{stack.base}/api/v1/events/{first['event_id']}", key=stack.viewer).json()
        return event if event["occurrences"] == 2 else None

    event = wait_for(folded, message="the duplicate folded")
    # The duplicate's own id leads to the event it was folded into
    assert stored(stack, second["event_id"])["id"] == event["id"]
    page = request("GET", f"{stack.base}/api/v1/events?host={host}", key=stack.viewer).json()
    assert page["total_count"] == 1


def test_bad_input_is_refused_with_the_field_named_and_nothing_stored(stack):
    host = f"bad-{uuid.uuid4().hex[:8]}"
    body = [
        {"source": "x", "severity": "high", "host": host, "title": "ok"},
        {"source": "x", "severity": "loud", "host": host, "title": "no"},
    ]
    reply = post(stack, "/api/v1/events/webhook", body)
    assert reply.status == 400
    assert reply.json()["field"] == "[1].severity"
    not_json = request("POST", stack.base + "/api/v1/events/webhook", data=b"{nope", key=stack.ingest,
                       headers={"Content-Type": "application/json"})  # fmt: skip
    assert not_json.status == 400 and "JSON" in not_json.json()["message"]
    text = request("POST", stack.base + "/api/v1/events/webhook", data=b"hello", key=stack.ingest,
                   headers={"Content-Type": "text/plain"})  # fmt: skip
    assert text.status == 415
    big = request("POST", stack.base + "/api/v1/events/webhook", data=b"[" + b" " * (1024 * 1024) + b"]",
                  key=stack.ingest, headers={"Content-Type": "application/json"})  # fmt: skip
    assert big.status == 413
    page = request("GET", f"{stack.base}/api/v1/events?host={host}", key=stack.viewer).json()
    assert page["total_count"] == 0


def test_keys_and_roles_are_enforced(stack):
    body = {"source": "x", "severity": "info", "title": "auth"}
    assert post(stack, "/api/v1/events/webhook", body, key="").status == 401
    assert post(stack, "/api/v1/events/webhook", body, key="oc_not-a-key").status == 401
    assert post(stack, "/api/v1/events/webhook", body, key=stack.viewer).status == 403
    assert request("GET", f"{stack.base}/api/v1/events", key=stack.ingest).status == 403
    assert request("GET", f"{stack.base}/api/v1/events", key=stack.admin).status == 200
    assert request("GET", f"{stack.base}/healthz").status == 200


def test_readiness_reports_database_and_broker(stack):
    reply = request("GET", f"{stack.base}/readyz")
    assert reply.status == 200
    assert reply.json()["checks"] == {"database": {"ok": True}, "broker": {"ok": True}}


def test_analytics_groups_events(stack):
    host = f"an-{uuid.uuid4().hex[:8]}"
    body = [
        {"source": "x", "severity": sev, "host": host, "title": f"t{i}"}
        for i, sev in enumerate(["high", "high", "low"])
    ]
    answers = post(stack, "/api/v1/events/webhook", body).json()
    for a in answers:
        stored(stack, a["event_id"])
    result = request("GET", f"{stack.base}/api/v1/events/analytics?timerange=1h&groupby=host", key=stack.viewer).json()
    assert {"key": host, "count": 3, "occurrences": 3} in result["groups"]
    assert request("GET", f"{stack.base}/api/v1/events/analytics?groupby=color", key=stack.viewer).status == 400


def test_openapi_document_lists_the_ingestion_paths(stack):
    doc = request("GET", f"{stack.base}/openapi.json").json()
    assert "/api/v1/events/webhook" in doc["paths"] and "/v2/enqueue" in doc["paths"]


def test_without_the_broker_the_webhook_answers_503_with_retry_after(stack):
    # Given a web process whose RabbitMQ is unreachable
    from tests.processes import free_port, start_web

    env = dict(stack.env, RABBITMQ_URL=f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F")
    web, base = start_web(env)
    try:
        # When an event is posted
        reply = request("POST", base + "/api/v1/events/webhook", json={"source": "x", "severity": "info", "title": "t"},
                        key=stack.ingest)  # fmt: skip
        ready = request("GET", base + "/readyz")
    finally:
        web.stop()
    # Then it is refused for now, with a hint when to retry, and readiness says why
    assert reply.status == 503, (reply.headers, reply.body)
    assert reply.headers["Retry-After"].isdigit()
    assert reply.json()["error"] == "broker_unavailable"
    assert ready.status == 503 and ready.json()["checks"]["broker"]["ok"] is False


def test_alertmanager_grafana_and_pagerduty_payloads_arrive_as_events(stack):
    import copy

    from tests.unit.test_webhook_adapters import ALERTMANAGER, GRAFANA, PAGERDUTY

    tag = uuid.uuid4().hex[:8]
    am = copy.deepcopy(ALERTMANAGER)
    for alert in am["alerts"]:
        alert["fingerprint"] += tag
    gf = copy.deepcopy(GRAFANA)
    gf["alerts"][0]["fingerprint"] += tag
    # Alertmanager sends its bearer token; one event per alert
    am_answers = post(stack, "/api/v1/events/webhook/alertmanager", am).json()
    assert len(am_answers) == 2
    gf_answers = post(stack, "/api/v1/events/webhook/grafana", gf).json()
    # A PagerDuty client pointed at /v2/enqueue sends no header: its routing_key is the key
    pd = dict(copy.deepcopy(PAGERDUTY), routing_key=stack.ingest, dedup_key=f"srv01/{tag}")
    reply = request("POST", stack.base + "/v2/enqueue", json=pd)
    assert reply.status == 202
    assert reply.json() == {"status": "success", "message": "Event processed", "dedup_key": f"srv01/{tag}"}
    bad_key = request("POST", stack.base + "/v2/enqueue", json=dict(pd, routing_key="nope"))
    assert bad_key.status == 401
    # Then each is stored with its tool's meaning
    firing = stored(stack, am_answers[0]["event_id"])
    assert (firing["source_type"], firing["event_type"], firing["host"], firing["severity"]) == (
        "alertmanager", "HighCPU", "web-01", "critical",
    )  # fmt: skip
    resolved = stored(stack, am_answers[1]["event_id"])
    assert resolved["metadata"]["resolution"] is True
    grafana = stored(stack, gf_answers[0]["event_id"])
    assert (grafana["source_type"], grafana["service"]) == ("grafana", "checkout")
    page = wait_for(
        lambda: (
            (
                p := request(
                    "GET", f"{stack.base}/api/v1/events?source_type=pagerduty&limit=1000", key=stack.viewer
                ).json()
            )
            and [e for e in p["events"] if e["metadata"].get("dedup_key") == f"srv01/{tag}"]
        ),
        message="the PagerDuty event",
    )
    assert page[0]["host"] == "prod-datapipe03.example.com"
    assert "routing_key" not in str(page[0])


def test_input_the_normalizer_cannot_parse_is_listed_with_its_error(stack, rabbitmq_url):
    # Given an item that passed the edge but that the normalizer cannot parse (a new sender, a bug)
    import time

    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    from app.events.envelope import make_item
    from app.ids import new_id
    from app.publishing import publish_items

    item = make_item(id=new_id(), source_type="syslog", received_at=time.time(), payload={"not": "a frame"})
    broker = RabbitmqBroker(url=rabbitmq_url, confirm_delivery=True)
    publish_items(broker, [item])
    broker.close()

    # Then the raw input is kept and shown with its processing error
    def listed():
        page = request("GET", f"{stack.base}/api/v1/raw-events?has_errors=true&limit=1000", key=stack.viewer).json()
        return [r for r in page["raw_events"] if r["id"] == item["id"]]

    [raw] = wait_for(listed, message="the raw event listed")
    assert raw["processed"] is False and "payload" in raw["processing_errors"][0]
    assert raw["raw_data"] == {"not": "a frame"}
    # And its id answers with the raw input rather than a 404
    assert (
        request("GET", f"{stack.base}/api/v1/events/{item['id']}", key=stack.viewer).json()["raw_event"]["id"]
        == item["id"]
    )


def test_the_cli_creates_keys_that_the_api_accepts(stack):
    import subprocess

    from tests.processes import BIN

    out = subprocess.run([str(BIN / "opsconductor"), "keys", "create", "--role", "viewer", "--name", "cli test"],
                         env=dict(stack.env, PATH="/usr/bin:/bin"), capture_output=True, text=True, check=True)  # fmt: skip
    key = out.stdout.strip()
    assert key.startswith("oc_")
    assert request("GET", f"{stack.base}/api/v1/events?limit=1", key=key).status == 200
    assert post(stack, "/api/v1/events/webhook", {"source": "x", "title": "t"}, key=key).status == 403

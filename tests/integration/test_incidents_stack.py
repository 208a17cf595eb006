"""Incidents over the real stack: topology declared through the API, events in over HTTP, incidents and
correlations read back in the spec's shapes."""

from __future__ import annotations

import time
import uuid

from dramatiq import Message
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from app.events.envelope import make_item
from app.events.store import store_batch
from app.ids import new_id
from app.models import Incident, ProcessedEvent
from tests import services
from tests.http import request
from tests.processes import start_worker, wait_for


def test_events_behind_a_failed_switch_become_one_incident(stack):
    tag = uuid.uuid4().hex[:6]
    switch, hosts = f"sw-{tag}", [f"app-{tag}-{i}" for i in range(5)]
    topology = {"hosts": {h: switch for h in hosts}, "criticality": {switch: "critical"}}
    put = request("PUT", f"{stack.base}/api/v1/topology", json=topology, key=stack.admin)
    assert put.status == 200  # the older shape, answered as nodes and edges
    assert {"from": hosts[0], "to": switch, "kind": "connected_to"} in put.json()["edges"]
    assert request("PUT", f"{stack.base}/api/v1/topology", json=topology, key=stack.viewer).status == 403
    time.sleep(10.5)  # correlators refresh the topology every 10 s
    # When the switch reports a link down, then its hosts time out, and an unrelated host fails
    post = lambda body: request("POST", f"{stack.base}/api/v1/events/webhook", json=body, key=stack.ingest).json()  # noqa: E731
    root = post({"source": "nms", "host": switch, "severity": "high", "title": f"Uplink Gi0/1 down on {switch}"})
    for h in hosts:
        post({"source": "app", "host": h, "severity": "high", "title": f"Database connection timeout on {h}"})
    lone = post({"source": "app", "host": f"other-{tag}", "severity": "medium", "title": "Certificate renewal failed"})

    # Then one incident holds the switch and its hosts, rooted at the switch
    def correlated():
        event = request("GET", f"{stack.base}/api/v1/events/{root['event_id']}", key=stack.viewer).json()
        incident_id = event.get("correlation_id")
        if not incident_id:
            return None
        incident = request("GET", f"{stack.base}/api/v1/incidents/{incident_id}", key=stack.viewer).json()
        return incident if incident["event_count"] == 6 else None

    incident = wait_for(correlated, timeout=30, message="the incident with six events")
    assert incident["root_event_id"] == root["event_id"] and set(incident["hosts"]) == {switch, *hosts}
    assert {c["correlation_type"] for c in incident["correlations"]} == {"causal"}
    listed = request("GET", f"{stack.base}/api/v1/incidents?status=open&host={switch}", key=stack.viewer).json()
    assert [i["id"] for i in listed["incidents"]] == [incident["id"]]
    # And the spec's correlation view of one host's event names the cause
    some_host = next(e for e in incident["events"] if e["host"] == hosts[2])
    view = request("GET", f"{stack.base}/api/v1/events/{some_host['id']}/correlations", key=stack.viewer).json()
    assert view["primary_event"]["id"] == some_host["id"]
    assert (
        view["correlations"][0]["correlation_type"] == "causal"
        and switch in view["correlations"][0]["correlation_reason"]
    )
    assert view["correlation_summary"]["total_related_events"] == 5
    # And the unrelated event is elsewhere
    lone_event = wait_for(lambda: request("GET", f"{stack.base}/api/v1/events/{lone['event_id']}", key=stack.viewer).json()
                          .get("correlation_id"), message="the unrelated event correlated")  # fmt: skip
    assert lone_event != incident["id"]


def test_two_correlator_processes_give_the_incidents_one_gives(stack_env, rabbitmq_url, pg_db):
    # Given eight unrelated problems (one host each, unlike messages), stored, in batches that each
    # span two problems, every batch sent twice (a redelivery racing its first delivery)
    services.purge_queues(rabbitmq_url)
    tag, now = uuid.uuid4().hex[:6], time.time()
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
    problems = [
        [make_item(id=new_id(), source_type="webhook", received_at=now + k + 8 * n,
                   payload={"source": "t", "host": f"{tag}-{w}", "severity": "high", "title": f"{w} subsystem failure {n}"})
         for n in range(12)]
        for k, w in enumerate(words)
    ]  # fmt: skip
    store_batch([e for p in problems for e in p], window_s=300)
    batches = [[e["id"] for e in problems[k][n::3] + problems[(k + 1) % 8][n::3]] for k in range(8) for n in range(3)]
    broker = RabbitmqBroker(url=rabbitmq_url, confirm_delivery=True)
    for batch in batches + batches[::-1]:
        broker.enqueue(Message(queue_name="correlate", actor_name="correlate", args=(batch,), kwargs={}, options={}))
    broker.close()
    # When two correlator processes race over them
    workers = [start_worker(stack_env, queues=("correlate",), threads=4) for _ in range(2)]
    try:
        everything = [e["id"] for p in problems for e in p]
        wait_for(
            lambda: ProcessedEvent.select().where(ProcessedEvent.id.in_(everything) & ProcessedEvent.correlation_id.is_null()).count() == 0,
            timeout=30,
            message="every event correlated",
        )  # fmt: skip
        time.sleep(1)  # the redeliveries still in flight
    finally:
        for w in workers:
            w.stop()
    # Then each problem is one incident holding each of its events once, as with one correlator
    incidents = list(Incident.select())
    assert len(incidents) == 8 and sum(i.event_count for i in incidents) == 96
    for problem in problems:
        stamped = {ProcessedEvent.get_by_id(e["id"]).correlation_id for e in problem}
        assert len(stamped) == 1 and None not in stamped

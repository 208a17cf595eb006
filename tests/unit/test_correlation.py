"""Correlation into incidents, on both databases: topology causes, resolutions, same host, patterns, flapping."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.correlation import store as correlation_store
from app.correlation.grouping import GroupingSettings
from app.correlation.store import correlate_batch
from app.correlation.templates import WILDCARD, Positions, alike, similarity, template
from app.db import in_transaction
from app.events.envelope import make_item
from app.events.store import store_batch
from app.ids import new_id
from app.models import EventCorrelation, Incident, ProcessedEvent, TopologyLink
from tests.correlation_items import LINK_DOWN, LINK_UP, at, webhook
from tests.correlation_items import trap as switch_trap

SWITCH = "10.0.0.1"


@pytest.fixture(autouse=True)
def fresh_topology():
    correlation_store._topology = None
    yield
    correlation_store._topology = None


def trap(name_oid: str, t: float, if_index: int = 2) -> dict:
    return switch_trap(SWITCH, name_oid, t, if_index)


def run(items: list[dict]) -> dict[str, str]:
    store_batch(items, window_s=300)
    return correlate_batch([i["id"] for i in items])


def declare_switch_topology(n: int = 30) -> list[str]:
    hosts = [f"app-{i:02d}" for i in range(1, n + 1)]
    for h in hosts:
        TopologyLink.create(kind="host", node=h, upstream=SWITCH, criticality="high")
    return hosts


@pytest.mark.parametrize("switch_first", [True, False])
def test_a_switch_outage_is_one_incident_rooted_at_the_switch_and_link_up_closes_it(any_db, switch_first):
    # Given 30 hosts behind a switch, and two unrelated hosts
    hosts = declare_switch_topology()
    down = trap(LINK_DOWN, 0 if switch_first else 110)
    errors = [webhook(h, f"Connection to database timed out after {3 + i} s", 5 + i * 3) for i, h in enumerate(hosts)]
    unrelated = [
        webhook("db-99", "Backup job failed", 30),
        webhook("mail-7", "Mail queue is stuck", 60, service="postfix"),
    ]
    # When they arrive within two minutes, in batches
    items = sorted([down, *errors, *unrelated], key=lambda i: i["received_at"])
    for k in range(0, len(items), 7):
        run(items[k : k + 7])
    # Then the switch and its 30 hosts are one incident, rooted at the switch
    switch_event = ProcessedEvent.get_by_id(down["id"])
    incident = Incident.get_by_id(switch_event.correlation_id)
    members = ProcessedEvent.select().where(ProcessedEvent.correlation_id == incident.id)
    assert {e.source_host for e in members} == {SWITCH, *hosts}
    assert str(incident.root_event_id) == down["id"] and incident.status == "open"
    assert EventCorrelation.select().where(EventCorrelation.correlation_type == "causal").count() >= 1
    # And the unrelated events stay separate, each its own incident
    others = {ProcessedEvent.get_by_id(u["id"]).correlation_id for u in unrelated}
    assert incident.id not in others and len(others) == 2
    # When the link comes back up
    up = trap(LINK_UP, 200)
    run([up])
    # Then it closes the incident, and a closed incident absorbs nothing new
    incident = Incident.get_by_id(incident.id)
    assert incident.status == "closed" and str(incident.closed_by_event_id) == up["id"]
    late = webhook("app-01", "Connection to database timed out after 9 s", 300)
    run([late])
    assert ProcessedEvent.get_by_id(late["id"]).correlation_id != incident.id


def test_same_host_within_the_window_is_time_based_with_a_readable_reason(any_db):
    a, b = webhook("web-01", "CPU high", 0), webhook("web-01", "Disk slow", 240)
    run([a])
    run([b])
    assert ProcessedEvent.get_by_id(a["id"]).correlation_id == ProcessedEvent.get_by_id(b["id"]).correlation_id
    link = EventCorrelation.get(EventCorrelation.correlation_type == "time_based")
    assert link.correlation_reason.startswith("Events occurred within 5 minutes on same host. Evidence: host +0.50")


def test_similar_messages_on_different_hosts_join_by_pattern(any_db):
    a = webhook("edge-1", "Certificate for api.example.com expires in 3 days", 0)
    b = webhook("edge-2", "Certificate for api.example.com expires in 5 days", 60)
    run([a, b])
    assert ProcessedEvent.get_by_id(a["id"]).correlation_id == ProcessedEvent.get_by_id(b["id"]).correlation_id
    assert EventCorrelation.get().correlation_type == "pattern_based"


def test_an_alertmanager_resolution_closes_its_incident(any_db):
    def alert(status: str, t: float) -> dict:
        payload = {"alert": {"status": status, "labels": {"alertname": "HighCPU", "instance": "web-3:9100"}, "fingerprint": "f00d",
                             "annotations": {"summary": "CPU high on web-3"}, "startsAt": "2026-11-23T10:00:00Z"}, "group": {}}  # fmt: skip
        return make_item(id=new_id(), source_type="alertmanager", received_at=at(t), payload=payload)

    firing, resolved = alert("firing", 0), alert("resolved", 120)
    run([firing])
    run([resolved])
    incident = Incident.get_by_id(ProcessedEvent.get_by_id(firing["id"]).correlation_id)
    assert incident.status == "closed" and str(incident.closed_by_event_id) == resolved["id"]


def test_a_problem_that_keeps_coming_back_is_flapping_and_stops_triggering_rules(any_db):
    from app.models import RuleExecution, TriggerRule
    from app.rules.evaluation import RuleCache, columns_of, evaluate
    from app.rules.triggers import parse_trigger

    rule_id = TriggerRule.create(**columns_of(parse_trigger({"name": "link", "conditions": {"event_type": "connectivity_issue"},
                                                              "max_triggers_per_hour": 100}))).id  # fmt: skip
    cfg = GroupingSettings(flap_changes=3)
    # Given a link that went down and up three times in a few minutes
    for k in range(3):
        down, up = trap(LINK_DOWN, k * 120), trap(LINK_UP, k * 120 + 60)
        store_batch([down, up], window_s=0)
        correlate_batch([down["id"], up["id"]], cfg=cfg)
        evaluate([down["id"]], cache=RuleCache())
    assert RuleExecution.select().where(RuleExecution.trigger_rule_id == rule_id).count() == 3
    # When it goes down once more
    down = trap(LINK_DOWN, 400)
    store_batch([down], window_s=0)
    correlate_batch([down["id"]], cfg=cfg)
    # Then its incident is flapping, and the rule does not fire again
    assert Incident.get_by_id(ProcessedEvent.get_by_id(down["id"]).correlation_id).status == "flapping"
    evaluate([down["id"]], cache=RuleCache())
    assert RuleExecution.select().where(RuleExecution.trigger_rule_id == rule_id).count() == 3


def test_a_redelivered_batch_changes_nothing(any_db):
    items = [webhook("web-01", "CPU high", 0), webhook("web-01", "Disk slow", 10), webhook("db-01", "Replica lag", 20)]
    first = run(items)
    correlations = EventCorrelation.select().count()
    again = correlate_batch([i["id"] for i in items])
    assert again == first and EventCorrelation.select().count() == correlations
    assert Incident.select().count() == 2 and sum(i.event_count for i in Incident.select()) == 3


def test_templates_mask_variables_like_drain():
    a = template("Connection from 10.1.2.3:5544 refused after 30 s on eth0")
    b = template("Connection from 192.168.0.9:22 refused after 5 s on eth1")
    assert a == b and similarity(a, b) == 1.0
    assert similarity(template("Disk /var is full"), template("User alice logged in")) < 0.5


_TOKENS = st.lists(st.sampled_from(["a", "b", "c", WILDCARD]), max_size=9).map(tuple)


@settings(max_examples=500, deadline=None)
@given(_TOKENS, _TOKENS, st.sampled_from([0.0, 0.5, 0.6, 0.75, 0.8, 0.9, 1.0]))
def test_alike_stops_early_and_says_what_the_similarity_says(a, b, floor):
    assert alike(a, b, floor) == (similarity(a, b) >= floor)


@settings(max_examples=200, deadline=None)
@given(st.lists(_TOKENS, max_size=40), _TOKENS.filter(bool), st.sampled_from([0.5, 0.6, 0.75, 0.8, 0.9, 1.0]))
def test_the_templates_found_alike_by_position_are_those_compared_one_by_one(held, tpl, floor):
    # Given templates of one length indexed by position, and one more of that length
    length = len(tpl)
    positions = Positions(length)
    for other in held:
        positions.add((other + (WILDCARD,) * length)[:length])
    # Then the index finds exactly those the similarity says are alike
    assert sorted(positions.alike(tpl, floor)) == sorted(t for t in positions.templates if similarity(tpl, t) >= floor)


def test_the_labelled_scenario_set_is_grouped_with_f1_of_at_least_0_95():
    # Given the committed scenario set (a switch outage, a full disk, a bad deploy, expiring certificates,
    # an alert that fires and resolves, and 150 unrelated one-off events)
    import json
    from pathlib import Path

    from bench.correlation_quality import SCENARIOS, evaluate

    # When it is stored and correlated in arrival order
    report = evaluate(json.loads(Path(SCENARIOS).read_text()))
    # Then the grouping matches the labels and every true incident is found
    assert report["f1"] >= 0.95, report
    assert report["true_incidents_found"], report


def test_an_operator_declared_resolution_closes_the_problem_on_its_host(any_db):
    from app.correlation.query import replace_topology

    # Given "backup_failed" is resolved by "backup_succeeded"
    topology = replace_topology({"resolutions": {"backup_failed": "backup_succeeded"}}, actor="test")
    assert topology["resolutions"] == {"backup_failed": "backup_succeeded"}

    def event(event_type: str, host: str, t: float) -> dict:
        payload = {
            "source": "x",
            "host": host,
            "title": event_type.replace("_", " "),
            "event_type": event_type,
            "severity": "high",
        }
        return make_item(id=new_id(), source_type="webhook", received_at=at(t), payload=payload)

    problem, elsewhere, fixed = (
        event("backup_failed", "nas-1", 0),
        event("backup_succeeded", "nas-2", 60),
        event("backup_succeeded", "nas-1", 120),
    )
    run([problem])
    run([elsewhere])
    incident = Incident.get_by_id(ProcessedEvent.get_by_id(problem["id"]).correlation_id)
    assert incident.status == "open"  # a success on another host resolves nothing here
    run([fixed])
    incident = Incident.get_by_id(incident.id)
    assert incident.status == "closed" and str(incident.closed_by_event_id) == fixed["id"]


def test_a_batch_correlated_by_another_delivery_after_it_was_read_is_decided_again(any_db, monkeypatch):
    # Given a batch a correlator has read, two of whose events another delivery correlates meanwhile
    items = [webhook("web-01", "CPU high", 0), webhook("web-01", "Disk slow", 10), webhook("db-01", "Replica lag", 20)]
    store_batch(items, window_s=300)
    ids = [i["id"] for i in items]
    stale = in_transaction(lambda: correlation_store._load(ids))
    first = correlate_batch(ids[:2])
    # When the first correlator goes on with what it read
    monkeypatch.setattr(correlation_store, "_load", lambda event_ids: [dict(e) for e in stale])
    result = correlate_batch(ids)
    # Then the two keep their incident, the third gets its own, and nothing is counted twice
    assert {i: result[i] for i in ids[:2]} == first
    assert Incident.select().count() == 2 and sum(i.event_count for i in Incident.select()) == 3
    assert EventCorrelation.select().count() == 1  # the second web-01 event joined the first, once


def eight_problems_delivered_twice() -> tuple[list[list[dict]], list[list[str]]]:
    """Eight unrelated problems (one host each, unlike messages), stored, and their deliveries.

    The deliveries are batches that each span two problems, every batch delivered twice.
    """
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
    problems = [
        [webhook(f"host-{w}", f"{w} subsystem failure {n}", k + 8 * n) for n in range(12)] for k, w in enumerate(words)
    ]
    store_batch([e for p in problems for e in p], window_s=300)
    batches = [[e["id"] for e in problems[k][n::3] + problems[(k + 1) % 8][n::3]] for k in range(8) for n in range(3)]
    return problems, batches + batches[::-1]


def three_correlators(db, deliveries: list[list[str]], correlate: Callable[[list[str]], object]) -> list[Exception]:
    """Three threads taking ``deliveries`` at the same time, each calling ``correlate``; the errors they met."""
    start, errors = threading.Barrier(3), []

    def correlator(mine: list[list[str]]) -> None:
        try:
            start.wait()
            for batch in mine:
                correlate(batch)
        except Exception as e:  # noqa: BLE001 - reported by the caller's assertion
            errors.append(e)
        finally:
            db.close()

    threads = [threading.Thread(target=correlator, args=(deliveries[t::3],)) for t in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return errors


def incident_of_each(problems: list[list[dict]]) -> list[str]:
    """The one incident of each problem, asserting each holds its events once and no event is left out."""
    incidents = list(Incident.select())
    assert len(incidents) == 8 and sum(i.event_count for i in incidents) == 96
    found = []
    for problem in problems:
        stamped = {ProcessedEvent.get_by_id(e["id"]).correlation_id for e in problem}
        assert len(stamped) == 1 and None not in stamped
        found.append(str(stamped.pop()))
    return found


def test_correlators_in_parallel_give_the_incidents_one_gives(pg_db):
    # Given eight unrelated problems, in batches that each span two problems, every batch delivered twice
    problems, deliveries = eight_problems_delivered_twice()
    # When three correlator threads take the deliveries at the same time
    errors = three_correlators(pg_db, deliveries, correlate_batch)
    # Then each problem is one incident holding each of its events once, as with one correlator
    assert not errors
    incident_of_each(problems)


def test_a_late_batch_correlates_the_backlog_behind_it_once_and_those_messages_find_theirs_done(pg_db):
    # Given a backlog: ten stored batches of five events on one host, received long ago, none correlated
    batches = [[webhook("db-01", f"Replication lag of {5 * b + i} s", 5 * b + i) for i in range(5)] for b in range(10)]
    store_batch([e for b in batches for e in b], window_s=300)
    # When the first batch is correlated, claiming
    first = correlate_batch([e["id"] for e in batches[0]], claim=correlation_store.CLAIM)
    # Then every event of the backlog is in the one incident, each counted once
    (incident,) = Incident.select()
    assert set(first.values()) == {str(incident.id)} and len(first) == 5
    assert ProcessedEvent.select().where(ProcessedEvent.correlation_id == incident.id).count() == 50
    assert incident.event_count == 50 and EventCorrelation.select().count() == 49
    # And the other batches' messages find their events correlated and change nothing
    for batch in batches[1:]:
        answered = correlate_batch([e["id"] for e in batch], claim=correlation_store.CLAIM)
        assert set(answered.values()) == {str(incident.id)}
    assert Incident.get_by_id(incident.id).event_count == 50 and EventCorrelation.select().count() == 49


def test_a_batch_on_time_claims_nothing(pg_db):
    # Given two batches received just now, stored
    now = datetime.now(UTC).timestamp()
    items = [make_item(id=new_id(), source_type="webhook", received_at=now + i / 10,
                       payload={"source": "x", "host": "web-01", "title": f"HTTP 5xx rate {i}%", "severity": "high"})
             for i in range(10)]  # fmt: skip
    store_batch(items, window_s=300)
    # When the first is correlated with a claim allowed
    correlate_batch([i["id"] for i in items[:5]], claim=correlation_store.CLAIM)
    # Then the second batch's events wait for their own message
    uncorrelated = ProcessedEvent.select().where(ProcessedEvent.correlation_id.is_null()).count()
    assert uncorrelated == 5


def test_a_claim_stops_before_a_resolution_it_would_leave_uncorrelated(pg_db):
    # Given a backlog, in this order: a problem on a host, a linkUp with no linkDown open, then the linkDown
    problem = webhook("db-01", "Replication lag of 30 s", 0)
    up, down = trap(LINK_UP, 10), trap(LINK_DOWN, 20)
    store_batch([problem, up, down], window_s=300)
    # When the problem's batch is correlated first, claiming, and then the others' in turn
    correlate_batch([problem["id"]], claim=correlation_store.CLAIM)
    assert ProcessedEvent.get_by_id(down["id"]).correlation_id is None  # the claim stopped at the linkUp
    correlate_batch([up["id"]], claim=correlation_store.CLAIM)
    correlate_batch([down["id"]], claim=correlation_store.CLAIM)
    # Then, as without a claim, the linkUp closed nothing and the link is down: its incident is open
    assert ProcessedEvent.get_by_id(up["id"]).correlation_id is None
    link = Incident.get_by_id(ProcessedEvent.get_by_id(down["id"]).correlation_id)
    assert link.status == "open" and link.event_count == 1


def test_correlators_claiming_in_parallel_give_the_incidents_one_gives(pg_db):
    # Given eight unrelated problems received long ago (a backlog), in batches that each span two
    # problems, every batch delivered twice
    problems, deliveries = eight_problems_delivered_twice()
    # When three correlator threads take the deliveries at the same time, each claiming up to 10 events
    returned: dict[str, str] = {}
    errors = three_correlators(pg_db, deliveries, lambda batch: returned.update(correlate_batch(batch, claim=10)))
    # Then each problem is one incident holding each of its events once, as with one correlator
    assert not errors
    for problem, incident_id in zip(problems, incident_of_each(problems), strict=True):
        # And every delivery answered its events' incident, whichever batch correlated them
        assert {returned[e["id"]] for e in problem} == {incident_id}

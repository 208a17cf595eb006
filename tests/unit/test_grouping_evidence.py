"""Each kind of evidence, and each separation rule, of the grouping: plain logic, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.config import ConfigError, load_settings
from app.correlation.candidates import Candidates
from app.correlation.evidence import facts_of, key_kind, weigh
from app.correlation.grouping import GroupingSettings, OpenIncident, Weights, choose
from app.correlation.templates import similarity, template
from app.topology.graph import Edge, Graph, Node

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
CFG = GroupingSettings()

#: router <- switch <- web-1, web-2 ; switch-b <- db-1 ; checkout runs on web-1, web-2 and depends on orders-db on db-1
GRAPH = Graph(
    [Node("core", "router"), Node("sw-a", "switch"), Node("sw-b", "switch"), Node("web-1", "host"),
     Node("web-2", "host"), Node("db-1", "host"), Node("checkout", "service"), Node("orders-db", "database")],
    [Edge("sw-a", "core", "connected_to"), Edge("sw-b", "core", "connected_to"), Edge("web-1", "sw-a", "connected_to"),
     Edge("web-2", "sw-a", "connected_to"), Edge("db-1", "sw-b", "connected_to"), Edge("checkout", "web-1", "runs_on"),
     Edge("checkout", "web-2", "runs_on"), Edge("checkout", "orders-db", "depends_on"), Edge("orders-db", "db-1", "runs_on")],
)  # fmt: skip
EMPTY = Graph()


def event(host: str | None, title: str, *, service: str | None = None, severity: str = "high", fp: str | None = None,
          **meta) -> dict:  # fmt: skip
    return {"id": f"e-{title}-{host}", "host": host, "service": service, "title": title, "severity": severity,
            "event_type": "event", "fingerprint": fp or f"fp-{host}-{title}", "metadata": meta}  # fmt: skip


def incident(
    *events: dict, at: datetime = T0, graph: Graph = GRAPH, link_keys: tuple[str, ...] = (), **kw
) -> OpenIncident:
    """An incident holding ``events``, all seen ``at``: its nodes, and the keys its events leave (as placing keeps them)."""
    inc = OpenIncident(
        id="inc", hosts={e["host"] for e in events if e["host"]}, services={e["service"] for e in events if e["service"]},
        templates=[template(e["title"]) for e in events], fingerprints={e["fingerprint"] for e in events},
        last_event_at=at, link_keys=set(link_keys), **kw,
    )  # fmt: skip
    for e in events:
        for key in facts_of(e, graph).keys:
            inc.keep(key, at.timestamp(), CFG.window_of(key_kind(key)))
    for key in link_keys:
        inc.keep(f"l:{key}", at.timestamp(), CFG.window_of("link"))
    return inc


def kinds(
    evt: dict, inc: OpenIncident, at: datetime = T0 + timedelta(minutes=1), graph: Graph = GRAPH
) -> dict[str, float]:
    return {e.kind: round(e.weight, 2) for e in weigh(facts_of(evt, graph), at, inc, graph, CFG)}


def test_the_same_fingerprint_is_evidence_even_late_in_the_look_back():
    # Given an incident holding a problem, and the same problem 40 minutes later
    inc = incident(event("web-1", "Disk full", fp="disk"))
    # Then the fingerprint counts in full
    assert kinds(event("web-1", "Disk full", fp="disk"), inc, T0 + timedelta(minutes=40))["fingerprint"] == 1.0


def test_a_dependent_at_any_depth_of_a_failing_node_has_topology_evidence_and_so_has_its_cause():
    # Given the core router failing
    inc = incident(event("core", "Router unreachable"))
    # Then an effect on a host two hops below it is evidence, as is (the other way) the router for its dependents
    assert kinds(event("web-1", "Upstream timeout"), inc)["topology"] == CFG.weights.topology
    effects = incident(event("web-1", "Upstream timeout"))
    assert kinds(event("core", "Router unreachable"), effects)["topology"] == CFG.weights.topology


def test_a_service_error_depends_on_its_database_host_but_not_on_the_service_s_other_hosts():
    # Given a failing database host, and (separately) a failing web host of the same service
    db_down = incident(event("db-1", "PostgreSQL is down"))
    web_2 = incident(event("web-2", "Kernel panic"))
    # When checkout errors on web-1
    err = event("web-1", "Query to orders-db timed out", service="checkout")
    # Then it depends on the database's host, not on web-2 (another host the service runs on)
    assert "topology" in kinds(err, db_down)
    assert "topology" not in kinds(err, web_2)


def test_same_service_and_template_are_evidence():
    inc = incident(event("web-1", "HTTP 500 from checkout after 30 ms", service="checkout"))
    found = kinds(event("web-9", "HTTP 500 from checkout after 90 ms", service="checkout"), inc, graph=EMPTY)
    assert found["service"] == CFG.weights.service and found["template"] == CFG.weights.template


def test_being_next_to_a_problem_is_no_evidence():
    # Given a problem on web-1, and an unrelated one on web-2 behind the same switch
    inc = incident(event("web-1", "Disk full on /var"))
    # Then being next to it is no evidence: nearby is not dependent
    assert kinds(event("web-2", "Certificate expires in 3 days"), inc) == {}
    assert choose(event("web-2", "Certificate expires in 3 days"), T0, [inc], GRAPH, CFG).kind == "new"


def test_two_problems_of_different_services_on_one_host_20_minutes_apart_are_two_incidents():
    # Given a ledger problem on app-1
    inc = incident(event("app-1", "ledger p99 latency is 7 s", service="ledger"), graph=EMPTY)
    # When a gateway problem starts on app-1 20 minutes later
    later = event("app-1", "gateway batch jobs failing", service="gateway")
    placement = choose(later, T0 + timedelta(minutes=20), [inc], EMPTY, CFG)
    # Then it opens its own incident: the same host, so late, is no evidence; within minutes the other service says no
    assert placement.kind == "new"
    assert kinds(later, inc, T0 + timedelta(minutes=20), EMPTY) == {}
    assert kinds(later, inc, T0 + timedelta(minutes=2), EMPTY) == {"host": 0.5, "other_service": -0.4}


def test_another_service_on_the_same_host_within_the_window_stays_apart_but_a_serviceless_problem_joins():
    inc = incident(event("app-1", "ledger p99 latency is 7 s", service="ledger"), graph=EMPTY)
    assert choose(event("app-1", "gateway jobs failing", service="gateway"), T0, [inc], EMPTY, CFG).kind == "new"
    # a message naming no service, on the same host within minutes, has no contrary evidence: it joins
    assert choose(event("app-1", "Out of memory: killed process 4242"), T0, [inc], EMPTY, CFG).kind == "time_based"


def test_a_syslog_program_name_is_not_a_service_that_ties_hosts():
    # Given sshd chatter on web-1 (the syslog program is the event's service)
    sshd = {"facility": 10, "appname": "sshd"}
    inc = incident(event("web-1", "Connection closed by 10.0.0.9", service="sshd", **sshd), graph=EMPTY)
    # When sshd on another host logs something else
    other = event("db-7", "Received disconnect from 10.0.0.7", service="sshd", **sshd)
    # Then the shared program name is no evidence; a service a webhook names is
    assert "service" not in kinds(other, inc, graph=EMPTY)
    named = incident(event("web-1", "HTTP 500", service="checkout"), graph=EMPTY)
    assert kinds(event("web-2", "Timeouts", service="checkout"), named, graph=EMPTY)["service"] == CFG.weights.service


def test_a_message_naming_a_failing_host_is_tied_to_it():
    # Given the database host 10.1.2.3 is down
    inc = incident(event("10.1.2.3", "PostgreSQL is down"), graph=EMPTY)
    # When a client on another host cannot connect to it
    client = event(
        "app-4", 'could not connect to server: Connection refused. Is the server running on host "10.1.2.3"?'
    )
    # Then the address it names is evidence
    assert kinds(client, inc, graph=EMPTY) == {"entity": CFG.weights.entity}


def test_the_same_alert_on_hosts_behind_different_switches_is_two_problems():
    # Given web-1 (behind sw-a) down
    inc = incident(event("web-1", "web-1 has been down for more than 1 minute"))
    # Then the same alert on db-1 (behind sw-b) is no evidence, on web-2 (behind sw-a too) it is
    assert "template" not in kinds(event("db-1", "db-1 has been down for more than 1 minute"), inc)
    assert kinds(event("web-2", "web-2 has been down for more than 1 minute"), inc)["template"] == CFG.weights.template


def test_the_index_finds_every_incident_the_evidence_ties_an_event_to():
    # Given incidents of several kinds
    incs = [incident(event("web-1", "Disk full", fp="disk"), graph=GRAPH),
            incident(event("sw-a", "Switch unreachable")), incident(event("db-1", "HTTP 500", service="checkout")),
            incident(event("mail-1", "Queue stuck"), graph=GRAPH)]  # fmt: skip
    for k, inc in enumerate(incs):
        inc.id = f"inc-{k}"
    index = Candidates(incs)
    # When events of each kind of evidence are matched through the index
    for evt in (event("web-1", "Disk full", fp="disk"), event("web-2", "Timeout"), event(None, "Slow", service="checkout"),
                event("mail-1", "Other", severity="info"), event("elsewhere", "Nothing")):  # fmt: skip
        facts = facts_of(evt, GRAPH)
        # Then it finds exactly the incidents weighing every one finds evidence for
        weighed = {i.id for i in incs if weigh(facts, T0, i, GRAPH, CFG)}
        assert {i.id for i in index.near(facts)} >= weighed


def test_an_index_over_the_process_index_finds_what_an_index_built_anew_finds():
    # Given the process's index of incidents a batch held: one the batch will hold as it was, one it will hold in a
    # newer state (another event since), and one that is no longer a candidate
    kept = incident(event("web-1", "Disk full", fp="disk"), graph=GRAPH)
    older = incident(event("db-1", "HTTP 500", service="checkout"))
    gone = incident(event("mail-1", "Queue stuck"), graph=GRAPH)
    newer = incident(event("db-1", "HTTP 500", service="checkout"), event("db-2", "Replica lag 30 s", fp="lag"))
    for inc, name in ((kept, "kept"), (older, "changed"), (newer, "changed"), (gone, "gone")):
        inc.id = name
    base = Candidates([kept, older, gone])
    # When the next batch's index overlays it, holding the kept one, the newer state and a new incident, and
    # the batch adds a key to the kept one
    fresh = incident(event("sw-a", "Switch unreachable"))
    fresh.id = "new"
    overlay = Candidates([kept, newer, fresh], base=base)
    kept.keep("f:late", 0.0, 60.0)
    overlay.index_key("kept", "f:late")
    anew = Candidates([kept, newer, fresh])
    answered = 0
    # Then every event finds the incidents an index built anew finds, and never one the batch does not hold
    for evt in (event("web-1", "Disk full", fp="disk"), event("db-2", "Replica lag 30 s", fp="lag"),
                event(None, "Slow", service="checkout"), event("mail-1", "Queue stuck"), event("web-2", "Timeout"),
                event("x-1", "late", fp="late")):  # fmt: skip
        facts = facts_of(evt, GRAPH)
        assert [i.id for i in overlay.near(facts)] == [i.id for i in anew.near(facts)]
        assert all(i is not older and i is not gone for i in overlay.near(facts))
        answered += bool(anew.near(facts))
    assert answered >= 4
    assert [i.id for i in overlay.linked(["f:lag", "f:late"])] == [i.id for i in anew.linked(["f:lag", "f:late"])]
    assert {i.id for i in overlay.linked(["f:lag", "f:late", "f:disk"])} == {"kept", "changed"}
    assert "kept" not in {i.id for i in base.linked(["f:late"])}  # what a batch adds stays in its own index


def test_indexes_find_the_same_alike_templates_when_the_process_forgets_what_it_learned(monkeypatch):
    # Given incidents on hosts nothing relates, whose messages are alike when four of their five words are the same,
    # held by two indexes of one process (as two batches hold them), and events with such messages on other hosts
    from app.correlation import candidates

    words = ["queue", "cache", "index", "mirror"]
    titles = [f"{a} {b} {c} check failed" for a in words for b in words for c in words[:2]]
    incs = [incident(event(f"h-{k}", t, severity="high"), graph=EMPTY) for k, t in enumerate(titles)]
    for k, inc in enumerate(incs):
        inc.id = f"inc-{k}"
    halves = (incs[::2], incs[1::2])
    probes = [facts_of(event(f"p-{k}", t, severity="high"), EMPTY) for k, t in enumerate(titles[::3])]

    def found() -> list[set[str]]:
        indexes = [Candidates(half) for half in halves]
        return [{i.id for i in index.near(facts)} for facts in probes for index in indexes]

    # When the process remembers every template, and when it can hold only three and forgets them again and again
    candidates._likeness.cache_clear()
    remembering = found()
    candidates._likeness.cache_clear()
    monkeypatch.setattr(candidates, "_ALIKE_CACHE", 3)
    forgetting = found()
    forgot = candidates._likeness(CFG.similarity).generation
    candidates._likeness.cache_clear()
    # Then each index finds the same incidents, exactly those whose message is alike the event's
    assert forgetting == remembering
    for facts, (first, second) in zip(probes, zip(remembering[::2], remembering[1::2], strict=True), strict=True):
        alike = {i.id for i in incs if similarity(facts.template, i.templates[0]) >= CFG.similarity}
        assert first | second == alike and len(alike) > 1
    assert forgot > 1


def test_routine_messages_join_on_nothing_but_the_same_service_or_problem():
    # Given an incident of errors on web-1, and routine chatter from web-1 and from a host below the failing switch
    inc = incident(event("sw-a", "Switch unreachable"), event("web-1", "Upstream timeout", service="checkout"))
    chatter = event("web-1", "Accepted publickey for deploy", service="sshd", severity="info")
    below = event("web-2", "cron job finished", severity="info")
    # Then neither joins (routine messages get no topology nor template evidence)
    assert choose(chatter, T0, [inc], GRAPH, CFG).kind == "new"
    assert choose(below, T0, [inc], GRAPH, CFG).kind == "new"
    # But a routine message of the incident's service does
    assert (
        choose(event(None, "Deployed checkout v2", service="checkout", severity="info"), T0, [inc], GRAPH, CFG).incident
        is inc
    )


def test_an_event_related_to_two_incidents_merges_them_into_the_older_and_the_cause_roots_it():
    # Given effects of a switch outage that arrived before its trap, in two incidents
    first = incident(event("web-1", "Connection reset by peer"), root_host="web-1")
    second = incident(event("web-2", "Health check failed"), at=T0 + timedelta(seconds=20), root_host="web-2")
    second.id = "inc-2"
    # When the switch's own trap arrives
    placement = choose(event("sw-a", "linkDown on sw-a"), T0 + timedelta(seconds=40), [second, first], GRAPH, CFG)
    # Then it joins the older one, takes the other along, and is the root
    assert placement.incident is first and placement.also == [second]
    assert placement.kind == "causal" and placement.roots
    assert "Evidence: topology +0.90" in placement.reason and "merged" in placement.reason


def test_incidents_an_event_relates_to_that_started_apart_are_two_problems_and_it_joins_the_one_under_way():
    # Given web-1 down since 10:00 (its ping alert's fingerprint last seen at 10:30), and an outage that started
    # at 10:39 on web-2 and web-3
    def ping(host: str) -> dict:
        return event(host, f"PING CRITICAL - {host} unreachable", fp=f"ping-{host}")

    def minutes(m: float) -> datetime:
        return T0 + timedelta(minutes=m)

    down = event("web-1", "Host check DOWN: web-1 (CRITICAL - Host Unreachable)", fp="ping-web-1")
    older = incident(down, graph=EMPTY, at=minutes(30), first_event_at=minutes(0))
    outage = incident(ping("web-2"), ping("web-3"), graph=EMPTY, at=minutes(39))
    older.id, outage.id = "older", "outage"
    # When web-1's ping alert fires at 10:40: the same problem as the older incident's, the outage's message
    placement = choose(ping("web-1"), minutes(40), [outage, older], EMPTY, CFG)
    # Then the two incidents, 39 minutes apart, stay two: the alert joins the one under way (its evidence is
    # nearly as good there) and says it relates to the other
    assert kinds(ping("web-1"), older, minutes(40), EMPTY) == {"fingerprint": 1.0}
    assert placement.incident is outage and placement.also == []
    assert placement.reason.endswith("It also relates to 1 other incident, not merged: it started more than "
                                     "10 minutes apart from this one")  # fmt: skip
    # But with evidence far better for the older incident (web-1 down there 4 minutes ago), it joins that one, still apart
    recent = incident(down, graph=EMPTY, at=minutes(36), first_event_at=minutes(0))
    placement = choose(ping("web-1"), minutes(40), [outage, recent], EMPTY, CFG)
    assert placement.incident is recent and placement.also == [] and "not merged" in placement.reason
    # While incidents that started within the merge window of each other are one problem seen in parts: merged
    older.first_event_at = minutes(31)
    placement = choose(ping("web-1"), minutes(40), [outage, older], EMPTY, CFG)
    assert placement.incident is older and placement.also == [outage] and "merged into this one" in placement.reason


def test_the_reason_lists_the_evidence_and_the_score_that_decided():
    inc = incident(event("web-1", "HTTP 500 from checkout", service="checkout"))
    placement = choose(event("web-1", "HTTP 500 from checkout", service="checkout"), T0, [inc], GRAPH, CFG)
    assert placement.reason.startswith("The same problem was seen in it. Evidence: fingerprint +1.00, service +0.60")
    assert placement.reason.endswith(f"= {placement.score:.2f} ≥ 0.50")


def test_a_resolution_of_an_effect_does_not_close_the_incident_of_its_cause():
    # Given a switch's outage rooted at the switch, with a dependent's alert
    up = {"trap_name": "linkUp", "ifIndex": 3}
    inc = incident(event("sw-a", "linkDown", fp="sw-down"), event("web-1", "HighLatency", fp="am:lat"),
                   root_host="sw-a", root_fingerprint="sw-down", link_keys=("sw-a#3", "web-1#1"))  # fmt: skip
    # When the dependent's alert resolves, it joins without closing; when the switch's link comes up, it closes
    resolved = event("web-1", "HighLatency", fp="am:lat:resolved", severity="info", resolution=True)
    assert not choose(resolved, T0, [inc], GRAPH, CFG).closes
    assert choose(event("sw-a", "linkUp", severity="info", **up), T0, [inc], GRAPH, CFG).closes


def test_weights_and_windows_come_from_the_environment():
    settings = load_settings({"CORRELATION_WINDOW_MINUTES": "5", "CORRELATION_JOIN_SCORE": "0.8",
                              "CORRELATION_WEIGHT_HOST": "0.9", "CORRELATION_FLAP_CHANGES": "5",
                              "CORRELATION_HOST_WINDOW_MINUTES": "1.5", "CORRELATION_CAUSAL_WINDOW_MINUTES": "4",
                              "CORRELATION_ENTITY_WINDOW_MINUTES": "2", "CORRELATION_MERGE_WINDOW_MINUTES": "20"})  # fmt: skip
    cfg = GroupingSettings.from_settings(settings)
    assert cfg.window == timedelta(minutes=5) and cfg.join_score == 0.8 and cfg.flap_changes == 5
    assert cfg.merge_window == timedelta(minutes=20) and GroupingSettings().merge_window == timedelta(minutes=10)
    assert cfg.window_of("host") == 90 and cfg.window_of("topology") == 240 and cfg.window_of("entity") == 120
    assert cfg.weights == Weights(host=0.9)
    with pytest.raises(ConfigError, match="CORRELATION_WEIGHT_TOPOLOGY"):
        load_settings({"CORRELATION_WEIGHT_TOPOLOGY": "much"})

"""Each kind of evidence, and each separation rule, of the grouping: plain logic, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.config import ConfigError, load_settings
from app.correlation.candidates import Candidates
from app.correlation.evidence import facts_of, key_kind, weigh
from app.correlation.grouping import GroupingSettings, OpenIncident, Weights, choose
from app.correlation.templates import template
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
    err = event("web-1", "HTTP 500 from checkout", service="checkout")
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
                              "CORRELATION_ENTITY_WINDOW_MINUTES": "2"})  # fmt: skip
    cfg = GroupingSettings.from_settings(settings)
    assert cfg.window == timedelta(minutes=5) and cfg.join_score == 0.8 and cfg.flap_changes == 5
    assert cfg.window_of("host") == 90 and cfg.window_of("topology") == 240 and cfg.window_of("entity") == 120
    assert cfg.weights == Weights(host=0.9)
    with pytest.raises(ConfigError, match="CORRELATION_WEIGHT_TOPOLOGY"):
        load_settings({"CORRELATION_WEIGHT_TOPOLOGY": "much"})

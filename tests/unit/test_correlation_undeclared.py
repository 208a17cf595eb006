"""Rules for what no topology declares, found on the tuning seeds (issue #13): a network device's link going down
and hosts nobody placed going down with it are one cut (plain logic, no database)."""

from __future__ import annotations

from datetime import timedelta

from app.correlation.grouping import choose
from tests.unit.test_correlation_separation import link_down
from tests.unit.test_grouping_evidence import CFG, EMPTY, GRAPH, T0, event, incident, kinds


def test_a_link_going_down_and_hosts_no_topology_places_going_down_with_it_are_one_cut():
    # Given (no topology) sw-a's uplink going down
    uplink = incident(link_down("sw-a", "TenGigabitEthernet1/1/1"), graph=EMPTY)
    # When a host goes unreachable a minute later (its ping check), with no words nor host in common
    down = event("web-7", "PING CRITICAL - web-7 unreachable")
    # Then the link going down is its cause, either way round (the trap often arrives after the first effects)
    assert kinds(down, uplink, graph=EMPTY) == {"topology": CFG.weights.topology}
    hosts = incident(down, graph=EMPTY)
    assert kinds(link_down("sw-a", "TenGigabitEthernet1/1/1"), hosts, graph=EMPTY) == {"topology": CFG.weights.topology}
    assert choose(down, T0 + timedelta(minutes=1), [uplink], EMPTY, CFG).incident is uplink
    # But not once the causal window is past: a host going down minutes later has a cause of its own
    assert "topology" not in kinds(down, uplink, T0 + timedelta(minutes=4), EMPTY)


def test_only_a_host_s_own_connectivity_is_tied_to_an_undeclared_link_going_down():
    # Given (no topology) sw-a's uplink going down
    uplink = incident(link_down("sw-a", "TenGigabitEthernet1/1/1"), graph=EMPTY)
    # Then a host's own problem, a refused connection (what it named answered), a database's probe saying the
    # database is down (the probe reached its monitor from the host) and a link coming up are no cut of it
    for other in (
        event("web-7", "Disk /var 97% full on web-7"),
        event("web-7", 'could not connect to server: Connection refused. Is the server running on host "db-7"?'),
        event("db-7", "PostgreSQL is down on db-7", service="pg-main", labels={"job": "pg-main"}),
        event("sw-b", "linkUp on sw-b ifIndex 3 (TenGigabitEthernet1/1/2)", severity="info", trap_name="linkUp",
              ifDescr="TenGigabitEthernet1/1/2"),
    ):  # fmt: skip
        assert "topology" not in kinds(other, uplink, graph=EMPTY), other["title"]


def test_a_declared_host_is_tied_to_a_link_going_down_by_the_topology_only():
    # Given sw-b's uplink going down (web-1 is declared behind sw-a, not sw-b)
    uplink = incident(link_down("sw-b", "TenGigabitEthernet1/1/1"))
    # Then web-1 going unreachable is no effect of it: the topology says where web-1 hangs
    assert "topology" not in kinds(event("web-1", "PING CRITICAL - web-1 unreachable"), uplink, graph=GRAPH)

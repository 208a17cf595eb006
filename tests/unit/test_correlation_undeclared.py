"""Rules found on the tuning seeds (issue #13) for what the topology does not say: a network device's link going
down and hosts nobody placed going down with it are one cut; a host that refused a connection answered, so its
being cut off is another problem (plain logic, no database)."""

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


REFUSED = 'could not connect to server: Connection refused. Is the server running on host "db-1"?'
UNREACHABLE = "Host check DOWN: db-1 (CRITICAL - Host Unreachable)"


def test_a_refused_connection_says_its_database_host_answered_so_the_host_cut_off_is_another_problem():
    # Given checkout's client on web-1 refused by the database on db-1 (the host answered: the database is down)
    clients = incident(event("web-1", REFUSED, service="checkout"))
    # When db-1 itself goes unreachable (its switch failing, say)
    down = event("db-1", UNREACHABLE)
    # Then neither the dependency nor the name ties them, either way round: the host answered, then was cut off
    assert kinds(down, clients) == {}
    assert kinds(event("web-2", REFUSED, service="checkout"), incident(down)) == {}
    # While a client timing out towards db-1 is its effect, and the refused clients are still tied by the name
    timeout = event("web-2", REFUSED.replace("refused", "timed out"), service="checkout")
    assert kinds(timeout, incident(down))["topology"] == CFG.weights.topology
    assert kinds(event("web-2", REFUSED, service="checkout"), clients)["entity"] == CFG.weights.entity
    # And the database's own alert on db-1 is tied to the refused clients by the name it has
    assert kinds(event("db-1", "PostgreSQL is down on db-1"), clients)["entity"] == CFG.weights.entity


def test_a_declared_database_said_to_be_down_and_its_host_unreachable_are_not_tied_by_the_host():
    # Given the database on db-1 said to be down (its exporter on db-1 says so: the host was up)
    database = incident(event("db-1", "PostgreSQL is down on db-1", service="orders-db"))
    # When db-1 itself goes unreachable
    down = event("db-1", UNREACHABLE)
    # Then the host is no evidence: the database's problem and the host's are two
    assert "host" not in kinds(down, database)
    # While two monitors of db-1 unreachable are one problem of it
    assert kinds(down, incident(event("db-1", "PING CRITICAL - db-1 unreachable")))["host"] == CFG.weights.host


def test_a_host_found_down_after_it_announced_its_reboot_is_the_reboot_s_not_an_outage_s():
    # Given (no topology) a maintenance: web-3 announced its reboot; and an outage under way: web-9 found down
    reboot = incident(event("web-3", "System is rebooting.", severity="low"), graph=EMPTY)
    outage = incident(event("web-9", "web-9 has been down for more than 1 minute"), graph=EMPTY,
                      at=T0 - timedelta(minutes=2))  # fmt: skip
    reboot.id, outage.id = "reboot", "outage"
    # When web-3 is found down a minute after its announcement (the outage's alert, in the same words)
    down = event("web-3", "web-3 has been down for more than 1 minute")
    at = T0 + timedelta(minutes=1)
    # Then it joins the reboot's incident and merges the outage into nothing (the reboot explains it)
    placed = choose(down, at, [reboot, outage], EMPTY, CFG)
    assert placed.incident is reboot and placed.also == []
    assert "announced its reboot" in placed.reason


def test_a_reboot_announced_after_the_host_was_found_down_is_not_tied_to_that_by_the_host():
    # Given (no topology) web-3 found unreachable in an outage
    outage = incident(event("web-3", "PING CRITICAL - web-3 unreachable"), graph=EMPTY)
    # When web-3 announces its reboot a minute later (a maintenance of its own)
    reboot = event("web-3", "System is rebooting.", severity="low")
    # Then the host ties them not: the reboot explains what comes after it, not what came before
    assert "host" not in kinds(reboot, outage, graph=EMPTY)
    # While web-3 found down after the reboot is tied to it
    announced = incident(reboot, graph=EMPTY)
    found_down = event("web-3", "PING CRITICAL - web-3 unreachable")
    assert kinds(found_down, announced, graph=EMPTY)["host"] == CFG.weights.host


def test_a_resolution_nothing_was_open_for_joins_the_incident_that_holds_its_host_s_problem():
    # Given (no topology) an outage that cut web-2 off 20 minutes ago (envoy's timeouts; no down alert was seen), and
    # a maintenance under way whose hosts' down alerts resolve in the same words
    outage = incident(event("web-2", "Upstream connect timeout to 10.9.8.7:6379"), graph=EMPTY)
    maintenance = incident(event("web-5", "web-5 has been down for more than 1 minute", severity="info",
                                 resolution=True), graph=EMPTY, at=T0 + timedelta(minutes=19))  # fmt: skip
    outage.id, maintenance.id = "outage", "maintenance"
    # When web-2's down alert resolves (its firing was never seen)
    resolved = event("web-2", "web-2 has been down for more than 1 minute", severity="info", resolution=True)
    at = T0 + timedelta(minutes=20)
    # Then the host ties it to the outage that held web-2's problem, as far back as the look-back
    assert kinds(resolved, outage, at, EMPTY)["host"] == CFG.weights.host
    assert choose(resolved, at, [maintenance, outage], EMPTY, CFG).incident is outage
    # While a routine notice on web-2 is tied by the host within the routine window only
    assert "host" not in kinds(event("web-2", "Config reloaded on web-2", severity="info"), outage, at, EMPTY)


def test_a_port_going_down_after_its_device_s_uplink_did_is_not_the_cause_of_what_failed_below_the_device():
    # Given sw-a's uplink down, and web-1 behind sw-a cut off
    outage = incident(link_down("sw-a", "TenGigabitEthernet1/1/1"), event("web-1", "PING CRITICAL - web-1 unreachable"))
    # When an access port of sw-a goes down (a port flapping), within the causal window of web-1's failure
    port = link_down("sw-a", "GigabitEthernet1/0/44")
    # Then the topology ties it not: the uplink explains web-1; the port is another link
    assert "topology" not in kinds(port, outage)
    # While sw-a's uplink going down is the cause of web-1's failure, as is its port when nothing else of sw-a is down
    web_1 = incident(event("web-1", "PING CRITICAL - web-1 unreachable"))
    assert kinds(link_down("sw-a", "TenGigabitEthernet1/1/1"), web_1)["topology"] == CFG.weights.topology
    assert kinds(port, web_1)["topology"] == CFG.weights.topology


def test_the_same_words_about_other_things_are_other_problems():
    # Given (no topology) an attacker guessing passwords on web-1
    first = incident(event("web-1", "Failed password for root from 198.51.100.5 port 4242 ssh2"), graph=EMPTY)
    # When another address guesses on web-2 in the same words
    other = event("web-2", "Failed password for admin from 198.51.100.77 port 5151 ssh2")
    # Then the words tie them not: two attackers, two problems
    assert kinds(other, first, graph=EMPTY) == {}
    # While the same attacker on web-2 is tied by its words and its address
    same = kinds(event("web-2", "Failed password for admin from 198.51.100.5 port 5151 ssh2"), first, graph=EMPTY)
    assert same["template"] > 0 and same["entity"] == CFG.weights.entity
    # And hosts cut off, whatever they cannot reach, are still tied by their words
    timeouts = incident(event("web-1", "Upstream connect timeout to 10.9.8.7:6379"), graph=EMPTY)
    assert kinds(event("web-2", "Upstream connect timeout to 10.1.2.3:443"), timeouts, graph=EMPTY)["template"] > 0


def test_a_failing_database_explains_what_its_dependents_say_about_reaching_it_not_a_deploy_s_exceptions():
    # Given the database orders-db said to be down (checkout, on web-1 and web-2, depends on it)
    database = incident(event("db-1", "PostgreSQL is down on db-1", service="orders-db"))
    # Then checkout's exceptions are not its effect (a release's bug, which began on its own)
    exception = event(
        "web-1", "Unhandled exception on /api/orders: KeyError in handler after 31 ms", service="checkout"
    )
    assert "topology" not in kinds(exception, database)
    # While checkout timing out or refused towards it is
    for title in (
        "could not connect to server: Connection timed out",
        "could not connect to server: Connection refused",
    ):
        assert kinds(event("web-2", title, service="checkout"), database)["topology"] == CFG.weights.topology, title

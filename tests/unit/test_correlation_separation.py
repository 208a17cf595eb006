"""Separation rules found on the tuning seeds (issue #13): the same words from two programs, a service's message
naming a thing, and one interface of a device, are each their own problem (plain logic, no database)."""

from __future__ import annotations

from datetime import timedelta

from app.correlation.evidence import facts_of
from app.correlation.grouping import choose
from tests.unit.test_grouping_evidence import CFG, EMPTY, GRAPH, T0, event, incident, kinds

#: A syslog line's metadata (its program is the event's service, not a named one).
SYSLOG = {"facility": 1}


def exception(host: str, program: str, path: str = "/api/orders") -> dict:
    return event(host, f"Unhandled exception on {path}: KeyError in handler after 31 ms", service=program,
                 appname=program, **SYSLOG)  # fmt: skip


def test_the_same_words_from_two_programs_are_two_problems():
    # Given a release of cart failing with exceptions on web-1
    cart = incident(exception("web-1", "cart"), graph=EMPTY)
    # When tax logs the same words on web-9 (another release of another service)
    tax = exception("web-9", "tax", "/v2/items")
    # Then the template is no evidence, and tax's exception opens its own incident
    assert kinds(tax, cart, graph=EMPTY) == {}
    assert choose(tax, T0 + timedelta(minutes=1), [cart], EMPTY, CFG).kind == "new"
    # While cart's exception on another host is tied by the template, as is one whose program is unknown
    assert kinds(exception("web-9", "cart", "/v2/items"), cart, graph=EMPTY)["template"] > 0
    unknown = event("web-9", "Unhandled exception on /health: KeyError in handler after 9 ms")
    assert kinds(unknown, cart, graph=EMPTY)["template"] > 0


def test_a_service_message_naming_a_thing_is_not_tied_by_the_service_to_the_service_s_other_problems():
    # Given a client of the database that failed over: profile cannot connect to db-7
    refused = 'could not connect to server: Connection refused. Is the server running on host "db-7"?'
    clients = incident(event("app-1", refused, service="profile"), graph=EMPTY)
    # When profile's batch jobs fail on app-2 (a problem of its own)
    jobs = event("app-2", "profile batch jobs failing", service="profile")
    # Then the service is no evidence (either way round), though another client naming db-7 is tied by it
    assert "service" not in kinds(jobs, clients, graph=EMPTY)
    assert "service" not in kinds(event("app-3", refused, service="profile"), incident(jobs, graph=EMPTY), graph=EMPTY)
    assert kinds(event("app-3", refused, service="profile"), clients, graph=EMPTY)["service"] == CFG.weights.service
    # And two of the service's problems naming nothing are tied by it, as before
    latency = incident(event("app-1", "profile p99 latency is 7 s", service="profile"), graph=EMPTY)
    assert kinds(jobs, latency, graph=EMPTY)["service"] == CFG.weights.service


def link_down(device: str, interface: str, *, syslog: bool = False) -> dict:
    if syslog:
        evt = event(device, f"%LINK-3-UPDOWN: Interface {interface}, changed state to down", interface=interface)
        evt["event_type"] = "connectivity_issue"
        return evt
    return event(device, f"linkDown on {device} ifIndex 11 ({interface})", trap_name="linkDown", ifDescr=interface)


def test_one_interface_of_a_device_is_not_tied_by_the_host_to_another_of_its_interfaces():
    # Given sw-a's uplink down
    uplink = incident(link_down("sw-a", "TenGigabitEthernet1/1/1"), graph=EMPTY)
    # When an access port of sw-a goes down (a flapping port)
    port = link_down("sw-a", "GigabitEthernet1/0/11")
    # Then the device is no evidence: the port is the subject, not the device (their words are alike)
    assert "host" not in kinds(port, uplink, graph=EMPTY)
    noted = event("sw-a", "sw-a unreachable")  # the device itself down: a subject of its own too
    assert "host" not in kinds(port, incident(noted, graph=EMPTY), graph=EMPTY)
    # While the device's own syslog line about the uplink is tied to its trap by the host
    assert kinds(link_down("sw-a", "TenGigabitEthernet1/1/1", syslog=True), uplink, graph=EMPTY)["host"] > 0


def test_an_interface_going_down_is_still_a_connectivity_symptom_of_what_the_device_depends_on():
    # Given the core router failing
    core = incident(event("core", "Router unreachable"))
    # Then sw-a's uplink going down below it is its effect
    down = link_down("sw-a", "TenGigabitEthernet1/1/1")
    assert facts_of(down, GRAPH).unexplained == set()
    assert kinds(down, core)["topology"] == CFG.weights.topology


def test_a_host_announcing_its_own_reboot_is_not_an_effect_of_a_failure_above_it():
    # Given sw-a failing
    switch = incident(link_down("sw-a", "TenGigabitEthernet1/1/1"))
    # When web-1 (behind it) says it is rebooting: a planned reboot, its own doing
    reboot = event("web-1", "System is rebooting.", severity="low")
    # Then the switch is no cause of it, though web-1's down alert is its effect
    assert "topology" not in kinds(reboot, switch)
    assert kinds(event("web-1", "web-1 has been down for more than 1 minute"), switch)["topology"] > 0
    # And the reboot and its down alert are still one problem of web-1 (the host, about it going down)
    assert kinds(event("web-1", "web-1 has been down for more than 1 minute"), incident(reboot))["host"] > 0


def test_a_declared_database_said_to_be_down_is_not_an_effect_of_its_host_s_switch():
    # Given sw-b (db-1's switch) failing
    switch = incident(link_down("sw-b", "TenGigabitEthernet1/1/2"))
    # When the database on db-1 is said to be down (its exporter says so): the database's own problem
    db_down = event("db-1", "PostgreSQL is down on db-1", service="orders-db")
    # Then the switch is no cause of it (nor it an effect the switch's trap is tied to), though db-1's host check is
    assert "topology" not in kinds(db_down, switch)
    assert "topology" not in kinds(link_down("sw-b", "TenGigabitEthernet1/1/2"), incident(db_down))
    assert kinds(event("db-1", "Host check DOWN: db-1 (CRITICAL - Host Unreachable)"), switch)["topology"] > 0


def test_a_resolution_nothing_was_open_for_joins_where_its_alert_fires_on_the_problem_s_other_hosts():
    # Given web-1 reported down (without a topology), and web-2 reported down by another monitor only
    down = incident(event("web-1", "web-1 has been down for more than 1 minute", service="node"), graph=EMPTY)
    # When the alert on web-2 resolves 20 minutes later (its firing was never seen)
    resolved = event("web-2", "web-2 has been down for more than 1 minute", service="node", severity="info",
                     resolution=True)  # fmt: skip
    later = T0 + timedelta(minutes=20)
    # Then the alert's template ties it to the problem, as routine chatter's does not
    assert kinds(resolved, down, later, EMPTY)["template"] == CFG.weights.template
    assert choose(resolved, later, [down], EMPTY, CFG).incident is down
    chatter = event("web-2", "web-2 has been up for more than 1 minute", service="node", severity="info")
    assert "template" not in kinds(chatter, down, later, EMPTY)


def test_a_routine_message_joins_the_incident_its_evidence_is_strongest_for_and_merges_none():
    # Given two open outages reported by the same alert (no topology), and a closed one that held web-2 itself
    older = incident(event("web-1", "web-1 has been down for more than 1 minute", service="node"), graph=EMPTY)
    newer = incident(event("web-3", "web-3 has been down for more than 1 minute", service="node"), graph=EMPTY,
                     at=T0 + timedelta(minutes=1))  # fmt: skip
    older.id, newer.id = "older", "newer"
    resolved = event("web-2", "web-2 has been down for more than 1 minute", service="node", severity="info",
                     resolution=True)  # fmt: skip
    # Then its resolution joins the older and merges nothing (it is tied to both by the alert's template)
    placed = choose(resolved, T0 + timedelta(minutes=2), [older, newer], EMPTY, CFG)
    assert placed.incident is older and placed.also == []
    # And an incident closed already that held web-2 going down (another alert) takes it: its evidence is strongest there
    other = event("web-2", "web-2 has been down for more than 1 minute", service="node", fp="another-alert")
    closed = incident(other, graph=EMPTY, closed_at=T0)
    placed = choose(resolved, T0 + timedelta(minutes=2), [older, newer, closed], EMPTY, CFG)
    assert placed.incident is closed and placed.also == []


def test_a_host_that_cannot_reach_what_it_names_and_the_same_host_down_are_its_connectivity_problem():
    # Given (no topology) envoy on web-1 timing out towards an upstream
    timeouts = incident(event("web-1", "Upstream connect timeout to 10.9.8.7:6379"), graph=EMPTY)
    # When web-1's ping check finds it unreachable (another monitor, other words)
    down = event("web-1", "PING CRITICAL - web-1 unreachable")
    # Then the host ties them (either way round): whatever cut web-1 off caused both
    assert kinds(down, timeouts, graph=EMPTY) == {"host": CFG.weights.host}
    assert kinds(event("web-1", "Upstream connect timeout to 10.9.8.7:6379"), incident(down, graph=EMPTY),
                 graph=EMPTY) == {"host": CFG.weights.host}  # fmt: skip
    assert "cut off" in choose(down, T0 + timedelta(minutes=1), [timeouts], EMPTY, CFG).reason


def test_a_refused_connection_is_no_sign_its_host_is_cut_off():
    # Given a client on web-1 refused by the database it names (the path works: the database is down)
    refused = 'could not connect to server: Connection refused. Is the server running on host "db-7"?'
    clients = incident(event("web-1", refused), graph=EMPTY)
    # When web-1 is found down at the time (another problem, say a switch of its own)
    down = event("web-1", "web-1 has been down for more than 1 minute")
    # Then the host does not tie them, nor a certificate's expiry naming a name to the host down
    assert "host" not in kinds(down, clients, graph=EMPTY)
    expiry = incident(event("web-1", "SSL certificate for api.example.com expires in 9 days"), graph=EMPTY)
    assert "host" not in kinds(down, expiry, graph=EMPTY)


def test_a_failing_switch_explains_its_dependents_timeouts_but_not_their_refused_connections():
    # Given sw-a's uplink down (web-1 and web-2 hang off it)
    switch = incident(link_down("sw-a", "TenGigabitEthernet1/1/1"))
    # Then a client on web-1 timing out is its effect, while one refused by the database it names is not:
    # the database answered, so the path through sw-a works (a failover under way, not the switch)
    timeout = 'could not connect to server: Connection timed out. Is the server running on host "db-1"?'
    assert kinds(event("web-1", timeout), switch)["topology"] == CFG.weights.topology
    refused = 'could not connect to server: Connection refused. Is the server running on host "db-1"?'
    assert "topology" not in kinds(event("web-1", refused), switch)
    assert "topology" not in kinds(link_down("sw-a", "TenGigabitEthernet1/1/1"), incident(event("web-1", refused)))


def test_a_service_named_by_one_source_ties_the_alerts_whose_job_it_is_but_a_job_ties_no_alerts_together():
    # Given (no topology) the PostgresqlDown alert of the scrape job pg-main on db-1
    job = {"alertname": "PostgresqlDown", "job": "pg-main"}
    down = event("db-1", "PostgreSQL is down on db-1", service="pg-main", labels=job)
    alert = incident(down, graph=EMPTY)
    # When PagerDuty reports the failover of the cluster it names as the component pg-main, on the new leader db-2
    failover = event("db-2", "Failover on cluster pg-main: new leader db-2", service="pg-main")
    # Then the service ties them (either way round)
    assert kinds(failover, alert, graph=EMPTY) == {"service": CFG.weights.service}
    assert kinds(down, incident(failover, graph=EMPTY), graph=EMPTY)["service"] == CFG.weights.service
    assert "Same service pg-main" in choose(failover, T0 + timedelta(minutes=1), [alert], EMPTY, CFG).reason
    # While two alerts of one job (node, on two hosts) are not tied by it
    node = {"alertname": "InstanceDown", "job": "node"}
    web_1 = incident(event("web-1", "web-1 has been down", service="node", labels=node), graph=EMPTY)
    assert "service" not in kinds(event("web-9", "Disk almost full", service="node", labels=node), web_1, graph=EMPTY)


def test_interfaces_of_two_devices_going_down_are_one_cut_only_when_they_go_down_together():
    # Given (no topology) a port of sw-1 going down
    port = incident(link_down("sw-1", "GigabitEthernet1/0/11"), graph=EMPTY)
    # When an interface of sw-2 goes down in the same words: within the causal window, and minutes later
    other = link_down("sw-2", "GigabitEthernet1/0/12")
    # Then the words tie them when they went down together, not five minutes apart (two links)
    assert kinds(other, port, T0 + timedelta(minutes=1), EMPTY)["template"] > 0
    assert "template" not in kinds(other, port, T0 + timedelta(minutes=5), EMPTY)
    # While other alike messages are still tied within the template window
    disk = incident(event("web-1", "Filesystem /var on web-1 is 97% full"), graph=EMPTY)
    alike = event("web-2", "Filesystem /var on web-2 is 95% full")
    assert kinds(alike, disk, T0 + timedelta(minutes=5), EMPTY)["template"] > 0


def test_a_routine_message_repeating_is_tied_by_its_fingerprint_within_the_routine_window_only():
    # Given a replica's promotion logged (routine) when its cluster failed over
    log = event("db-2", "LOG:  received promotion request", severity="info", fp="promotion")
    failover = incident(log, graph=EMPTY)
    # Then the same line is tied to it a minute later, not twenty minutes later (the next failover)
    assert kinds(log, failover, T0 + timedelta(minutes=1), EMPTY)["fingerprint"] == CFG.weights.fingerprint
    assert "fingerprint" not in kinds(log, failover, T0 + timedelta(minutes=20), EMPTY)
    # While a resolution still finds its problem over the look-back
    down = incident(event("web-1", "web-1 has been down for more than 1 minute", fp="down-web-1"), graph=EMPTY)
    resolved = event("web-1", "web-1 has been down for more than 1 minute", severity="info", fp="down-web-1:resolved",
                     resolution=True)  # fmt: skip
    assert kinds(resolved, down, T0 + timedelta(minutes=20), EMPTY)["fingerprint"] == CFG.weights.fingerprint

"""Separation rules of the grouping for chance overlaps: the subject of a host's events, and what a network
device's failure explains below it (plain logic, no database)."""

from __future__ import annotations

from datetime import timedelta

from app.correlation.evidence import facts_of
from app.correlation.grouping import choose
from app.correlation.subjects import CUT_OFF, is_effect, one_problem, subject_of
from tests.unit.test_grouping_evidence import CFG, GRAPH, T0, event, incident, kinds


def test_a_host_that_cannot_be_reached_is_not_tied_by_the_host_to_another_problem_on_it():
    # Given password guesses from one address on web-1, and (apart) a host check saying web-1 is down
    guesses = incident(event("web-1", "Failed password for root from 203.0.113.7 port 4242 ssh2"))
    down = incident(event("web-1", "Host check DOWN: web-1 (CRITICAL - Host Unreachable)"))
    # Then neither ties the other by the host, but two reports of web-1 being down are tied by it
    assert "host" not in kinds(event("web-1", "Host check DOWN: web-1 (CRITICAL - Host Unreachable)"), guesses)
    assert "host" not in kinds(event("web-1", "Failed password for admin from 203.0.113.7 port 5151 ssh2"), down)
    assert kinds(event("web-1", "PING CRITICAL - web-1 unreachable"), down)["host"] == CFG.weights.host


def test_an_event_naming_something_else_is_about_it_not_about_its_host():
    # Given an alert storming on web-1
    storm = incident(event("web-1", "nf_conntrack: table full, dropping packet"))
    # When a certificate sweep reports web-1 a minute later
    cert = event("web-1", "SSL certificate for *.shop.example.com expires in 5 days")
    # Then the host is no evidence (the certificate is the subject), nor is anything else
    assert kinds(cert, storm) == {}
    assert choose(cert, T0 + timedelta(minutes=1), [storm], GRAPH, CFG).kind == "new"
    # Nor is it tied by the host to another thing named there (another attacker's guesses)
    guesses = incident(event("web-1", "Failed password for root from 203.0.113.7 port 4242 ssh2"))
    assert kinds(cert, guesses) == {}
    # While a plain problem of the host is still tied to the storm by the host
    assert kinds(event("web-1", "Out of memory: Killed process 4242 (java)"), storm)["host"] == CFG.weights.host


def test_subjects_of_messages():
    assert subject_of("web-1 has been down for more than 1 minute", set()) == "down"
    assert subject_of("System is rebooting.", set()) == "reboot"  # its own doing: see one_problem
    assert subject_of("Packet loss 100% to web-1", set()) == "down"
    assert subject_of("Failed password for root from 203.0.113.7 port 1 ssh2", {"203.0.113.7"}) == "names 203.0.113.7"
    assert subject_of("Load average is 44.1 on web-1", set()) == ""


def test_a_security_record_s_source_address_is_what_it_names():
    # Given a CEF record of an intrusion detector (its title names no address; src does)
    cef = event("web-1", "sshd: authentication failed", cef={"extension": {"src": "203.0.113.7", "duser": "root"}})
    facts = facts_of(cef, GRAPH)
    assert facts.mentions == {"203.0.113.7"} and facts.subject == "names 203.0.113.7"
    # Then it is tied to sshd's lines naming the same attacker, by the entity and the host
    lines = incident(event("web-1", "Failed password for root from 203.0.113.7 port 4242 ssh2"))
    found = kinds(cef, lines)
    assert found["entity"] == CFG.weights.entity and found["host"] == CFG.weights.host


def test_a_failing_switch_explains_connectivity_symptoms_below_it_not_a_deploy_s_errors():
    # Given a deploy's exceptions on web-1 (behind sw-a), and timeouts on web-2 (behind sw-a too)
    deploy = incident(event("web-1", "Unhandled exception on /api/cart: KeyError in handler after 12 ms"))
    timeouts = incident(event("web-2", "Upstream connect timeout to 10.1.2.3:443"))
    # When an interface of sw-a goes down
    link_down = event("sw-a", "linkDown on sw-a ifIndex 19 (GigabitEthernet1/0/19)")
    # Then it is the timeouts' cause, not the exceptions'
    assert "topology" not in kinds(link_down, deploy)
    assert kinds(link_down, timeouts)["topology"] == CFG.weights.topology
    # And the other way round: the exceptions after the switch failed are not its effects, timeouts are
    switch = incident(link_down)
    assert "topology" not in kinds(event("web-2", "Unhandled exception on /checkout: TypeError"), switch)
    assert kinds(event("web-2", "Health check failed"), switch)["topology"] == CFG.weights.topology


def test_a_failing_host_or_database_still_explains_any_failure_of_what_runs_on_it():
    # Given the database host failing (not a network device)
    db_down = incident(event("db-1", "PostgreSQL is down"))
    # Then orders-db's failures (orders-db runs on db-1) are its effects, and so are checkout's timeouts towards it
    # (checkout depends on orders-db; checkout's other failures, such as its HTTP 500s, are not: see
    # test_correlation_unseen.py)
    assert kinds(event(None, "orders-db: replication broken", service="orders-db"), db_down)["topology"] == (
        CFG.weights.topology
    )
    timeout = event("web-1", "Query to orders-db timed out", service="checkout")
    assert kinds(timeout, db_down)["topology"] == CFG.weights.topology


def test_naming_the_same_address_ties_events_within_the_entity_window_only():
    # Given clients failing to reach the database host 10.0.0.5
    clients = incident(event("web-1", "could not connect to server on host 10.0.0.5: Connection timed out"))
    # Then 10.0.0.5's own alert is tied to them within the entity window, not 13 minutes later
    alert = event("10.0.0.5", "PING CRITICAL - 10.0.0.5 unreachable")
    assert kinds(alert, clients, T0 + timedelta(minutes=4))["entity"] == CFG.weights.entity
    assert kinds(alert, clients, T0 + timedelta(minutes=13)) == {}


def test_connectivity_symptoms():
    for title in ("Upstream connect timeout to 10.0.0.1:5432", "could not connect to server: Connection timed out",
                  "Connection reset by peer", "Health check failed", "No route to host", "request timed out"):  # fmt: skip
        assert is_effect(title, subject_of(title, set())), title
    for title in ("Unhandled exception on /v2/items", "nf_conntrack: table full", "HTTP 5xx from api on web-1",
                  "could not connect to server: Connection refused"):  # fmt: skip
        # A refused connection was answered by what it tried to reach: no network device failing above explains it.
        assert not is_effect(title, subject_of(title, set())), title


def test_an_incident_kept_before_host_subjects_still_ties_by_the_host():
    # Given an incident whose host key has the older form (host|service), as stored before this rule
    inc = incident(event("web-1", "Disk almost full on /var"))
    inc.keys = {(k.rsplit("|", 1)[0] if k[0] in "hr" else k): v for k, v in inc.keys.items()}
    assert "h:web-1|" in inc.keys
    # Then a problem of the host is still tied to it by the host
    assert kinds(event("web-1", "write error on /var/tmp/x: No space left on device"), inc)["host"] == CFG.weights.host


def _link(title: str, *, up: bool, trap: bool, severity: str | None = None) -> dict:
    """A trap or the device's own syslog line about sw-a's interface Gi1/0/19 (ifIndex 19)."""
    if trap:
        meta = {"trap_name": "linkUp" if up else "linkDown", "ifIndex": 19, "ifDescr": "Gi1/0/19"}
    else:
        meta = {"interface": "Gi1/0/19", "mnemonic": "LINK-3-UPDOWN"}
    evt = event("sw-a", title, severity=severity or ("info" if up else "high"), fp=f"fp-{title}", **meta)
    evt["event_type"] = "connectivity_restored" if up else "connectivity_issue"
    return evt


def test_a_device_s_syslog_line_of_an_interface_is_the_same_link_as_its_trap():
    # Given a flapping link's incident, opened by the trap and closed by the trap's linkUp two minutes ago
    down = _link("linkDown on sw-a ifIndex 19 (Gi1/0/19)", up=False, trap=True)
    inc = incident(down, root_host="sw-a", root_fingerprint=down["fingerprint"], link_keys=("sw-a#Gi1/0/19",),
                   closed_at=T0 + timedelta(minutes=1))  # fmt: skip
    at = T0 + timedelta(minutes=3)
    # When the device logs the interface coming up, then going down again
    came_up = choose(_link("%LINK-3-UPDOWN: Interface Gi1/0/19, changed state to up", up=True, trap=False), at,
                     [inc], GRAPH, CFG)  # fmt: skip
    went_down = choose(_link("%LINK-3-UPDOWN: Interface Gi1/0/19, changed state to down", up=False, trap=False), at,
                       [inc], GRAPH, CFG)  # fmt: skip
    # Then the line coming up joins the closed incident, and the one going down reopens it (a flap)
    assert came_up.incident is inc and came_up.kind == "resolution" and not came_up.reopens
    assert went_down.incident is inc and went_down.kind == "recurrence" and went_down.reopens


def test_a_router_s_bgp_session_going_down_and_up_is_a_link_its_trap_and_its_syslog_lines_share():
    # Given the router's bgpBackwardTransition trap for neighbor 198.51.100.1, which opened an incident
    trap = event("sw-a", "bgpBackwardTransition on 10.2.0.1 neighbor 198.51.100.1", fp="fp-bgp-trap",
                 trap_name="bgpBackwardTransition", neighbor="198.51.100.1")  # fmt: skip
    trap["event_type"] = "connectivity_issue"
    inc = incident(trap, root_host="sw-a", root_fingerprint="fp-bgp-trap", link_keys=("sw-a#198.51.100.1",))
    # When the router logs the session coming up (IOS's ADJCHANGE line)
    up = event("sw-a", "%BGP-5-ADJCHANGE: neighbor 198.51.100.1 Up", severity="info", fp="fp-bgp-up",
               neighbor="198.51.100.1", mnemonic="BGP-5-ADJCHANGE")  # fmt: skip
    up["event_type"] = "connectivity_restored"
    # Then it is that session's return: it closes the incident
    assert choose(up, T0 + timedelta(minutes=1), [inc], GRAPH, CFG).closes
    # While another neighbor's session coming up does not
    other = dict(up, title="%BGP-5-ADJCHANGE: neighbor 198.51.100.7 Up", metadata={"neighbor": "198.51.100.7"})
    assert not choose(other, T0 + timedelta(minutes=1), [inc], GRAPH, CFG).closes


def test_a_trap_finds_an_incident_that_kept_the_interface_by_its_index():
    # Given an incident kept before interfaces were named (its key is sw-a#19)
    down = _link("linkDown on sw-a ifIndex 19 (Gi1/0/19)", up=False, trap=True)
    inc = incident(down, root_host="sw-a", root_fingerprint="older", link_keys=("sw-a#19",))
    # Then the trap's linkUp still closes it
    assert choose(_link("linkUp on sw-a ifIndex 19 (Gi1/0/19)", up=True, trap=True), T0, [inc], GRAPH, CFG).closes


def test_a_client_naming_its_database_host_in_quotes_is_tied_to_that_host_s_alert_whichever_comes_first():
    # Given a client's libpq error naming the primary by its (undotted) host name, and the primary's own alert
    client = event("web-1", 'could not connect to server: Connection refused. Is the server running on host "db-1"')
    alert = event("db-1", "PostgreSQL is down on db-1")
    assert facts_of(client, GRAPH).mentions == {"db-1"}
    # Then each is tied to the other by the entity, in either order
    assert kinds(alert, incident(client))["entity"] == CFG.weights.entity
    assert kinds(client, incident(alert))["entity"] == CFG.weights.entity


def test_a_message_saying_its_host_cannot_reach_what_it_names_is_marked_cut_off():
    assert subject_of("Upstream connect timeout to 10.9.8.7:6379", {"10.9.8.7"}) == "names 10.9.8.7" + CUT_OFF
    assert subject_of('Connection refused. Is the server running on host "db-7"?', {"db-7"}) == "names db-7"
    assert one_problem("down", "names 10.9.8.7" + CUT_OFF) and one_problem("names 10.9.8.7" + CUT_OFF, "down")
    assert not one_problem("down", "names db-7") and not one_problem("", "names 10.9.8.7" + CUT_OFF)

"""Rules found on the tuning seeds 41-100 (issue #13), for incidents the correlator was never tuned on: what an alert
says about its host, and what keeps two problems apart (plain logic, no database)."""

from __future__ import annotations

from datetime import datetime, timedelta

from app.correlation.evidence import facts_of, key_kind
from app.correlation.grouping import OpenIncident, choose
from tests.unit.test_correlation_separation import link_down
from tests.unit.test_grouping_evidence import CFG, EMPTY, T0, event, incident, kinds


def instance_down(host: str, *, job: str = "node", port: int = 9100) -> dict:
    """Alertmanager's ``InstanceDown`` as the webhook adapter makes it (its service is the scrape job)."""
    labels = {"alertname": "InstanceDown", "instance": f"{host}:{port}", "job": job, "severity": "critical"}
    return event(host, f"{host} has been down for more than 1 minute", service=job, labels=labels)


def test_a_host_s_node_exporter_going_down_is_the_host_cut_off_by_an_undeclared_link_going_down():
    # Given (no topology) sw-a's uplink going down
    uplink = incident(link_down("sw-a", "TenGigabitEthernet1/1/1"), graph=EMPTY)
    # When Alertmanager says a host's node_exporter target is down (job "node": the adapter's service is the job)
    down = instance_down("10.0.3.7")
    # Then it is the host cut off, tied to the link either way round, as a ping check of the host would be
    assert kinds(down, uplink, graph=EMPTY) == {"topology": CFG.weights.topology}
    assert kinds(link_down("sw-a", "TenGigabitEthernet1/1/1"), incident(down, graph=EMPTY), graph=EMPTY) == {
        "topology": CFG.weights.topology
    }
    assert choose(down, T0, [uplink], EMPTY, CFG).incident is uplink
    # And so is a Windows host's exporter, known by its port whatever its job is called
    assert kinds(instance_down("10.0.3.8", job="win-hosts", port=9182), uplink, graph=EMPTY) == {
        "topology": CFG.weights.topology
    }


def test_a_maintenance_s_hosts_going_down_after_announcing_their_reboots_are_not_cut_off_by_a_link_going_down():
    # Given (no topology) a maintenance: web-3 announced its reboot, and its node_exporter was found down after it
    maintenance = incident(event("web-3", "System is rebooting.", severity="low"), graph=EMPTY)
    for key in facts_of(instance_down("web-3"), EMPTY).keys:
        maintenance.keep(key, (T0 + timedelta(minutes=1)).timestamp(), CFG.window_of(key_kind(key)))
    # When a port of sw-a goes down (a link flapping) a minute later
    port = link_down("sw-a", "GigabitEthernet1/0/4")
    # Then no cut ties them: the reboot explains the host going down
    assert kinds(port, maintenance, T0 + timedelta(minutes=2), EMPTY) == {}
    # While a host found down with no reboot announced is the link's to explain
    outage = incident(instance_down("web-4"), graph=EMPTY, at=T0 + timedelta(minutes=1))
    assert kinds(port, outage, T0 + timedelta(minutes=2), EMPTY) == {"topology": CFG.weights.topology}


def test_a_service_s_exporter_going_down_is_the_service_s_problem_not_its_host_cut_off():
    # Given (no topology) sw-a's uplink going down
    uplink = incident(link_down("sw-a", "TenGigabitEthernet1/1/1"), graph=EMPTY)
    # Then a database's exporter saying it is down (the exporter reached its monitor from the host) is no cut
    assert "topology" not in kinds(instance_down("db-7", job="pg-main", port=9187), uplink, graph=EMPTY)


def test_a_database_s_host_cut_off_explains_what_its_dependents_say_about_reaching_it_not_their_deploy_s_errors():
    # Given db-1, which orders-db runs on, cut off (checkout, on web-1 and web-2, depends on orders-db)
    db_host = incident(event("db-1", "PING CRITICAL - db-1 unreachable"))
    # Then checkout's exceptions and HTTP 500s are not its effects (a release's bug, which began on its own), either
    # way round, as they are not the database's when orders-db itself fails
    for title in ("Unhandled exception on /api/orders: KeyError in handler after 31 ms", "HTTP 500 from checkout"):
        assert "topology" not in kinds(event("web-1", title, service="checkout"), db_host), title
        errors = incident(event("web-1", title, service="checkout"))
        assert "topology" not in kinds(event("db-1", "PING CRITICAL - db-1 unreachable"), errors), title
    # While checkout timing out towards it is
    timeout = event("web-2", "Query to orders-db timed out", service="checkout")
    assert kinds(timeout, db_host)["topology"] == CFG.weights.topology


def test_a_resolution_tied_to_two_incidents_alike_joins_the_one_holding_its_host_s_latest_problem():
    # Given (no topology) sw-a's hosts cut off twice within the hour: web-2 went down in both outages
    first = incident(instance_down("web-2"), instance_down("web-3"), graph=EMPTY)
    down_again = event("web-2", "Host check DOWN: web-2 (CRITICAL - Host Unreachable)")
    second = incident(down_again, instance_down("web-4"), graph=EMPTY, at=T0 + timedelta(minutes=35))
    first.id, second.id = "first", "second"
    # When web-2's down alert resolves (its firing, in the second outage, was never seen: another monitor reported it)
    resolved = instance_down("web-2")
    resolved.update(severity="info", fingerprint="fp-resolved-web-2")
    resolved["metadata"]["resolution"] = True
    at = T0 + timedelta(minutes=36)
    # Then, tied alike to both (the same words, its host's problem), it joins the outage under way, not the older one
    assert kinds(resolved, first, at, EMPTY) == kinds(resolved, second, at, EMPTY)
    assert choose(resolved, at, [first, second], EMPTY, CFG).incident is second


def keep(inc: OpenIncident, evt: dict, at: datetime) -> None:
    """Keep the keys ``evt`` leaves in ``inc`` at ``at``, as placing does."""
    for key in facts_of(evt, EMPTY).keys:
        inc.keep(key, at.timestamp(), CFG.window_of(key_kind(key)))


def test_a_host_that_came_back_after_its_reboot_and_goes_down_again_is_not_tied_to_the_reboot_by_the_host():
    # Given (no topology) a maintenance: web-3 announced its reboot, was found down, and its down alert resolved
    maintenance = incident(event("web-3", "System is rebooting.", severity="low"), graph=EMPTY)
    keep(maintenance, instance_down("web-3"), T0 + timedelta(minutes=1))
    back = instance_down("web-3")
    back.update(severity="info", fingerprint="fp-resolved-web-3")
    back["metadata"]["resolution"] = True
    keep(maintenance, back, T0 + timedelta(minutes=3))
    # When web-3 is found unreachable a minute after it came back (an outage of its switch, say)
    again = event("web-3", "Host check DOWN: web-3 (CRITICAL - Host Unreachable)")
    # Then the host ties it neither to the reboot nor to the problem that ended: it is news
    assert kinds(again, maintenance, T0 + timedelta(minutes=4), EMPTY) == {}
    # While found down before it came back, the reboot explains it
    rebooting = incident(event("web-3", "System is rebooting.", severity="low"), graph=EMPTY)
    keep(rebooting, instance_down("web-3"), T0 + timedelta(minutes=1))
    assert kinds(again, rebooting, T0 + timedelta(minutes=2), EMPTY) == {"host": CFG.weights.host}


def test_a_message_naming_no_service_is_not_tied_by_its_host_to_a_service_failing_on_its_other_hosts_too():
    # Given (no topology) a release of checkout failing on web-1 and web-2
    release = incident(
        event("web-1", "checkout on web-1: 30% of requests fail", service="checkout"),
        event("web-2", "checkout on web-2: 41% of requests fail", service="checkout"),
        graph=EMPTY,
    )
    # When web-1's kernel says its conntrack table is full, and a routine notice comes from web-1
    conntrack = event("web-1", "[8871.2] nf_conntrack: table full, dropping packet", severity="medium")
    notice = event("web-1", "Config reloaded on web-1", severity="info")
    # Then the host ties neither to the release: the service fails as a whole, not web-1
    assert kinds(conntrack, release, graph=EMPTY) == {}
    assert kinds(notice, release, graph=EMPTY) == {}
    # While a service's problem on web-1 alone (its load there) is tied to web-1's other problems by the host
    load = incident(event("web-1", "Load average is 61.0 on web-1", service="checkout"), graph=EMPTY)
    assert kinds(conntrack, load, graph=EMPTY) == {"host": CFG.weights.host}

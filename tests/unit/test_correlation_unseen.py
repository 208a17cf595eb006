"""Rules found on the tuning seeds 41-100 (issue #13), for incidents the correlator was never tuned on: what an alert
says about its host, and what keeps two problems apart (plain logic, no database)."""

from __future__ import annotations

from datetime import datetime, timedelta

from app.correlation.evidence import facts_of, key_kind
from app.correlation.grouping import OpenIncident, choose
from app.topology.graph import Edge, Graph, Node
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


# A database failover as real senders report it (bench/failover_by_hand.sh: not the generator's words): the engine's
# syslog program and its exporter's job name the software (postgres), the topology names the deployment (pg-main).

#: tor-7 <- db-1, db-2 ; pg-main runs on db-1 and db-2 ; orders (on app-21, app-22) and billing (on app-31) use it
FAILOVER = Graph(
    [Node("tor-7", "switch"), Node("db-1", "host"), Node("db-2", "host"), Node("pg-main", "database"),
     Node("app-21", "host"), Node("app-22", "host"), Node("app-31", "host"), Node("orders", "service"),
     Node("billing", "service")],
    [Edge("db-1", "tor-7", "connected_to"), Edge("db-2", "tor-7", "connected_to"), Edge("pg-main", "db-1", "runs_on"),
     Edge("pg-main", "db-2", "runs_on"), Edge("orders", "pg-main", "depends_on"), Edge("billing", "pg-main", "depends_on"),
     Edge("orders", "app-21", "runs_on"), Edge("orders", "app-22", "runs_on"), Edge("billing", "app-31", "runs_on")],
)  # fmt: skip
SYSLOG = {"facility": 16, "appname": "postgres"}


def panic() -> dict:
    title = 'PANIC:  could not write to file "pg_wal/xlogtemp.812": No space left on device'
    return event("db-1", title, service="postgres", severity="critical", **SYSLOG)


def test_a_database_engine_s_messages_on_the_database_s_host_are_the_database_s():
    # Given the primary's postgres panicking on db-1 (which runs pg-main, and nothing else declared)
    failing = incident(panic(), graph=FAILOVER)
    assert facts_of(panic(), FAILOVER).named_service == "pg-main"
    # Then billing's refused connections are its effect: its host answered, the database did not
    refused = event("app-31", 'could not connect to server: Connection refused. Is the server running on host "pg-main" '
                    "(10.1.0.10) and accepting TCP/IP connections on port 5432?", service="billing", facility=16, appname="billing")  # fmt: skip
    assert kinds(refused, failing, graph=FAILOVER)["topology"] == CFG.weights.topology
    # And so are orders' lost connections (libpq's words), whose exception class names name no host
    lost = event("app-21", "ERROR sqlalchemy.exc.OperationalError: (psycopg2.OperationalError) server closed the "
                 "connection unexpectedly", service="orders", facility=16, appname="orders")  # fmt: skip
    assert facts_of(lost, FAILOVER).mentions == set()
    assert kinds(lost, failing, graph=FAILOVER)["topology"] == CFG.weights.topology
    # And its exporter's PostgresqlDown (job "postgres") is the database down, not db-1 cut off: the same service
    labels = {"alertname": "PostgresqlDown", "instance": "10.1.0.11:9187", "job": "postgres", "severity": "critical"}
    down = event("db-1", "Postgresql down (instance 10.1.0.11:9187)", service="postgres", labels=labels)
    assert facts_of(down, FAILOVER).subject == "service down"
    assert kinds(down, failing, graph=FAILOVER)["service"] == CFG.weights.service
    # While a host running no database, or an engine nobody declared there, stays the host's
    assert (
        facts_of(event("app-31", "redis-server crashed", service="redis-server", **SYSLOG), FAILOVER).named_service
        is None
    )


def test_a_service_alert_as_a_whole_is_explained_by_its_database_and_a_sender_naming_the_service_as_its_host():
    failing = incident(panic(), graph=FAILOVER)
    # Grafana's alert on billing as a whole (no host): its database is a single point of failure of it
    jobs = event(None, "billing: 14 invoice jobs failed in 5 min", service="billing")
    assert kinds(jobs, failing, graph=FAILOVER)["topology"] == CFG.weights.topology
    # PagerDuty's source naming the declared service orders (its component: a part of it): the service as a whole
    latency = event("orders", "orders API p95 latency 4.2 s (threshold 1 s)", service="orders-api")
    facts = facts_of(latency, FAILOVER)
    assert (facts.host, facts.named_service) == (None, "orders")
    assert kinds(latency, failing, graph=FAILOVER)["topology"] == CFG.weights.topology


def test_a_client_losing_its_database_is_not_tied_by_its_host_to_the_host_s_own_disk_warning():
    # Given (no topology) app-21's /var/log filling
    disk = incident(
        event("app-21", "Free disk space is less than 15% on volume /var/log", severity="medium"), graph=EMPTY
    )
    # Then orders losing its database connection on app-21 is another matter (a path it cannot reach)
    for title in ("server closed the connection unexpectedly", "Lost connection to MySQL server during query"):
        assert kinds(event("app-21", title, service="orders"), disk, graph=EMPTY) == {}, title
    # While the host's own problem still is (its memory), as before
    assert kinds(event("app-21", "Out of memory: killed process 4242"), disk, graph=EMPTY) == {"host": CFG.weights.host}


def test_the_database_s_later_lines_on_its_other_host_do_not_take_the_root_from_its_panic():
    # Given the incident the primary's panic roots, which orders' lost connections joined
    lost = event("app-21", "server closed the connection unexpectedly", service="orders", facility=16, appname="orders")
    failing = incident(panic(), lost, graph=FAILOVER, root_host="db-1")
    # When the replica, promoted, says it accepts connections (the same database, on db-2)
    ready = event("db-2", "LOG:  database system is ready to accept connections", service="postgres", severity="low",
                  **SYSLOG)  # fmt: skip
    placement = choose(ready, T0 + timedelta(minutes=1), [failing], FAILOVER, CFG)
    # Then it joins without taking the root (the incident stays named after the panic)
    assert placement.incident is failing and not placement.roots
    # While the database's failure joining an incident its clients opened does root it
    clients = incident(lost, graph=FAILOVER, root_host="app-21")
    assert choose(panic(), T0 + timedelta(minutes=1), [clients], FAILOVER, CFG).roots


def test_a_go_program_s_source_file_in_its_log_line_names_no_host():
    # Given (no topology) worker-3's kubelet failing to update its node's status (klog's format: file.go:line)
    kubelet = {"facility": 3, "appname": "kubelet"}
    status = event("worker-3", 'E1208 04:01:14.002 1123 kubelet_node_status.go:540] "Error updating node status, will '
                   'retry" err="error getting node \\"worker-3\\": context deadline exceeded"', service="kubelet", **kubelet)  # fmt: skip
    failing = incident(status, graph=EMPTY)
    # Then its PLEG error, naming kubelet.go, is about no other thing: the same host's problem
    pleg = event("worker-3", 'E1208 04:01:12.381 1123 kubelet.go:2373] "Skipping pod synchronization" err="PLEG is not '
                 'healthy: pleg was last seen active 3m5.2s ago; threshold is 3m0s"', service="kubelet", **kubelet)  # fmt: skip
    assert facts_of(pleg, EMPTY).mentions == set()
    assert kinds(pleg, failing, graph=EMPTY) == {"host": CFG.weights.host}


#: lb-1 in front of shop, which runs on app-21 (10.1.1.21) and app-22 (bench/webtier_by_hand.sh)
WEB = Graph(
    [Node("lb-1", "load_balancer", addresses=("10.1.0.5",)), Node("web-1", "host"),
     Node("app-21", "host", addresses=("10.1.1.21",)), Node("app-22", "host", addresses=("10.1.1.22",)),
     Node("shop", "service")],
    [Edge("shop", "app-21", "runs_on"), Edge("shop", "app-22", "runs_on"), Edge("shop", "lb-1", "depends_on")],
)  # fmt: skip


def test_what_a_proxy_says_about_a_backend_meets_the_backend_s_own_events():
    # Given app-21's JVM killed for memory
    oom = incident(event("app-21", "Out of memory: Killed process 2211 (java) total-vm:8123456kB"), graph=WEB)
    # Then nginx failing to reach its upstream by app-21's declared address names app-21
    nginx = event("web-1", '2026/12/08 04:20:01 [error] 1234#1234: *561 connect() failed (111: Connection refused) '
                  'while connecting to upstream, client: 203.0.113.9, server: shop.example.com, request: "GET /cart '
                  'HTTP/1.1", upstream: "http://10.1.1.21:8080/cart", host: "shop.example.com"', service="nginx")  # fmt: skip
    assert "app-21" in facts_of(nginx, WEB).mentions
    assert kinds(nginx, oom, graph=WEB)["entity"] == CFG.weights.entity
    # And HAProxy taking app-21 out is about app-21 (which it cannot reach), not lb-1 itself going down
    haproxy = event("lb-1", 'Server shop_backend/app-21 is DOWN, reason: Layer4 connection problem, info: "Connection '
                    'refused", check duration: 0ms. 1 active and 0 backup servers left.', service="haproxy")  # fmt: skip
    facts = facts_of(haproxy, WEB)
    assert "app-21" in facts.mentions and facts.subject != "down"
    assert kinds(haproxy, oom, graph=WEB)["entity"] == CFG.weights.entity


def test_a_service_s_problem_on_a_host_does_not_merge_that_host_s_own_problem_into_the_service_failing_as_a_whole():
    # Given (no topology) a release of checkout failing on web-2 and web-3, and web-1's conntrack table full meanwhile
    release = incident(
        event("web-2", "checkout on web-2: 30% of requests fail", service="checkout"),
        event("web-3", "checkout on web-3: 41% of requests fail", service="checkout"),
        graph=EMPTY,
    )
    storm = incident(
        event("web-1", "[8871.2] nf_conntrack: table full, dropping packet", severity="medium"), graph=EMPTY
    )
    release.id, storm.id = "release", "storm"
    # When checkout fails on web-1 too
    failing = event("web-1", "checkout on web-1: 35% of requests fail", service="checkout")
    assert kinds(failing, storm, graph=EMPTY) == {"host": CFG.weights.host}
    placed = choose(failing, T0 + timedelta(minutes=1), [release, storm], EMPTY, CFG)
    # Then it joins the release, and web-1's own problem stays apart: its host alone ties it to that
    assert placed.incident is release
    assert placed.also == []
    # While with no release failing elsewhere, the host still ties it to web-1's problem
    assert choose(failing, T0 + timedelta(minutes=1), [storm], EMPTY, CFG).incident is storm

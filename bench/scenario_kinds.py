"""The incident kinds of :mod:`bench.scenarios`: each writes one incident's events (or two, or noise).

A kind takes the scenario's :class:`~bench.scenarios.Builder` and a start time (seconds) and emits
raw events under a new incident label. The same problem is reported through several sources, as
in production: a switch outage is a trap and a Cisco syslog line on the device, Alertmanager,
Grafana, PagerDuty and application webhooks from the hosts behind it.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from bench import scenario_sources as src

if TYPE_CHECKING:
    from bench.scenarios import Builder

_USERS = ("admin", "root", "oracle", "test", "ubuntu", "pi", "git", "postgres", "deploy", "guest", "ftpuser", "user1")
_PROCESSES = ("java", "python3", "node", "postgres", "ruby", "gunicorn", "php-fpm", "dotnet", "elasticsearch")


def _fp(rng: random.Random) -> str:
    return f"{rng.getrandbits(64):016x}"


def _attacker(rng: random.Random) -> str:
    return rng.choice((f"203.0.113.{rng.randint(1, 254)}", f"198.51.100.{rng.randint(1, 254)}",
                       f"185.{rng.randint(1, 254)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"))  # fmt: skip


def _host_down(b: Builder, label: str, host: str, t: float, fp: str) -> None:
    """How the hosts behind a failed device report it: one or two of several monitors."""
    rng = b.rng
    for choice in rng.sample(range(5), rng.choice((1, 1, 2))):
        if choice == 0:
            b.emit(label, src.alertmanager(t, [{"labels": {"alertname": "InstanceDown", "instance": f"{host}:9100", "job": "node",
                   "severity": "critical"}, "summary": f"{host} has been down for more than 1 minute", "starts": t, "fingerprint": fp}]))  # fmt: skip
        elif choice == 1:
            b.emit(label, src.grafana(t, rule="Ping loss", labels={"host": host}, summary=f"Packet loss 100% to {host}",
                                      value=100.0, fingerprint=fp))  # fmt: skip
        elif choice == 2:
            target = f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}:{rng.choice((5432, 6379, 443, 8080))}"
            b.emit(label, src.generic(t, host=host, title=f"Upstream connect timeout to {target}", severity="high",
                                      sender="envoy", event_type="upstream_timeout"))  # fmt: skip
        elif choice == 3:
            b.emit(label, src.pagerduty(t, action="trigger", dedup_key=f"ping-{host}", summary=f"PING CRITICAL - {host} unreachable",
                                        source=host, severity="critical", klass="ping"))  # fmt: skip
        else:
            b.emit(label, src.generic(t, host=host, title=f"Host check DOWN: {host} (CRITICAL - Host Unreachable)",
                                      severity="critical", sender="nagios", event_type="host_down"))  # fmt: skip


def network_outage(b: Builder, t0: float) -> None:
    """An access switch (or a core router) fails: its dependents time out, its trap may come later, linkUp ends it."""
    rng, estate = b.rng, b.estate
    if rng.random() < 0.35 and len(estate.routers) > 0:
        device = rng.choice(estate.routers)
        downstream = [sw for sw, r in estate.switches.items() if r == device]
        hosts = [h for h in estate.hosts_behind(device) if rng.random() < 0.5]
    else:
        device = rng.choice(list(estate.switches))
        downstream = []
        hosts = [h for h in estate.hosts_behind(device) if rng.random() < 0.9]
    label = b.incident("network_outage", t0, root=device, hosts=len(hosts))
    outage_s = rng.uniform(240, 1500)
    port = rng.randint(1, 48)
    cause_at = t0 + rng.uniform(5, 75)  # the trap often arrives after the first effects
    uplink = f"TenGigabitEthernet1/1/{rng.randint(1, 4)}"
    reporters = downstream or [device]
    for k, reporter in enumerate(reporters):
        at = cause_at + k * rng.uniform(0, 3)
        b.emit(label, src.trap(at, device=reporter, oid=src.LINK_DOWN, if_index=port, if_descr=uplink,
                               version=rng.choice(("v2c", "v2c", "v1"))))  # fmt: skip
        if rng.random() < 0.7:
            b.emit(label, src.cisco(at + 0.3, device=reporter, seq=rng.randint(100, 90000), mnemonic="LINK-3-UPDOWN",
                                    message=f"Interface {uplink}, changed state to down"))  # fmt: skip
    fingerprints = {h: _fp(rng) for h in hosts}
    for host in hosts:
        _host_down(b, label, host, t0 + rng.uniform(0, 150), fingerprints[host])
    for service, on in estate.services.items():
        if on and all(h in hosts for h in on) and rng.random() < 0.7:
            b.emit(label, src.grafana(t0 + rng.uniform(30, 180), rule="Error ratio", labels={"service": service},
                                      summary=f"{service} 5xx ratio above 20%", value=round(rng.uniform(20, 100), 1),
                                      fingerprint=_fp(rng)))  # fmt: skip
    end = t0 + outage_s
    if downstream and rng.random() < 0.6:
        b.emit(label, src.trap(end, device=device, oid=src.COLD_START))
    for reporter in reporters:
        b.emit(
            label, src.trap(end + rng.uniform(0, 20), device=reporter, oid=src.LINK_UP, if_index=port, if_descr=uplink)
        )
    for host in hosts:
        if rng.random() < 0.4:
            b.emit(label, src.alertmanager(end + rng.uniform(30, 120), [{"labels": {"alertname": "InstanceDown",
                   "instance": f"{host}:9100", "job": "node", "severity": "critical"}, "summary": f"{host} has been down for more than 1 minute",
                   "starts": t0, "ends": end, "fingerprint": fingerprints[host]}], status="resolved"))  # fmt: skip


def host_resource(b: Builder, t0: float, host: str | None = None) -> None:
    """One host runs out of disk, memory or CPU: a handful of alerts and log lines over minutes."""
    rng = b.rng
    host = host or rng.choice(list(b.estate.hosts))
    resource = rng.choice(("disk", "memory", "cpu"))
    label = b.incident("host_resource", t0, host=host, resource=resource)
    span = rng.uniform(300, 1800)
    fp = _fp(rng)
    service = rng.choice(b.estate.services_on(host) or [None])
    for k in range(rng.randint(4, 14)):
        t = t0 + span * k / 14 + rng.uniform(0, 30)
        pick = rng.randrange(4)
        if resource == "disk":
            mount = rng.choice(("/var", "/var/lib/postgresql", "/data", "/"))
            if pick == 0:
                b.emit(label, src.alertmanager(t, [{"labels": {"alertname": "NodeFilesystemAlmostFull", "instance": f"{host}:9100",
                       "mountpoint": mount, "severity": "warning"}, "summary": f"Filesystem {mount} on {host} is {rng.randint(91, 99)}% full",
                       "starts": t, "fingerprint": fp}]))  # fmt: skip
            elif pick == 1:
                b.emit(label, src.generic(t, host=host, title=f"Free disk space is less than {rng.randint(2, 9)}% on volume {mount}",
                                          severity="high", sender="zabbix", event_type="disk_space_low"))  # fmt: skip
            else:
                proc = rng.choice(_PROCESSES)
                b.emit(label, src.rfc3164(t, host=host, tag=proc, pid=rng.randint(300, 60000),
                                          message=f"write error on {mount}/tmp/{rng.getrandbits(24):06x}: No space left on device"))  # fmt: skip
        elif resource == "memory":
            proc = rng.choice(_PROCESSES)
            if pick < 2:
                b.emit(label, src.rfc3164(t, host=host, tag="kernel", facility=src.KERN, message=f"Out of memory: Killed process "
                       f"{rng.randint(300, 60000)} ({proc}) total-vm:{rng.randint(10**6, 9 * 10**6)}kB, anon-rss:{rng.randint(10**5, 10**6)}kB"))  # fmt: skip
            elif pick == 2:
                b.emit(label, src.grafana(t, rule="Memory usage high", labels={"instance": host}, summary=f"Memory usage on {host} above 95%",
                                          value=round(rng.uniform(95, 100), 1), fingerprint=fp))  # fmt: skip
            else:
                b.emit(
                    label,
                    src.rfc5424(
                        t,
                        host=host,
                        app="systemd",
                        message=f"{service or proc}.service: Failed with result 'oom-kill'.",
                    ),
                )
        else:
            if pick < 2:
                b.emit(label, src.alertmanager(t, [{"labels": {"alertname": "NodeHighCPU", "instance": f"{host}:9100", "severity": "warning"},
                       "summary": f"CPU usage on {host} is {rng.randint(92, 100)}%", "starts": t, "fingerprint": fp}]))  # fmt: skip
            else:
                b.emit(label, src.generic(t, host=host, title=f"Load average is {rng.uniform(20, 90):.1f} on {host}", severity="medium",
                                          sender="zabbix", event_type="cpu_load", service=service))  # fmt: skip


def bad_deploy(b: Builder, t0: float) -> None:
    """A release of one service breaks it on every host it runs on; the rollback ends it."""
    rng = b.rng
    service = max(
        rng.sample(list(b.estate.services), min(3, len(b.estate.services))), key=lambda s: len(b.estate.services[s])
    )
    hosts = b.estate.services[service]
    label = b.incident("bad_deploy", t0, service=service, hosts=len(hosts))
    version = f"v{rng.randint(1, 9)}.{rng.randint(0, 40)}.{rng.randint(0, 9)}"
    b.emit(label, src.generic(t0, host=None, service=service, title=f"Deployed {service} {version}", severity="info",
                              sender="argocd", event_type="deployment"))  # fmt: skip
    span = rng.uniform(300, 1200)
    for host in hosts:
        for _ in range(rng.randint(1, 4)):
            t = t0 + rng.uniform(20, span)
            pick = rng.randrange(4)
            if pick < 2:
                path = rng.choice(("/api/cart", "/api/orders", "/checkout", "/v2/items", "/health"))
                b.emit(label, src.rfc5424(t, host=host, app=service, procid=str(rng.randint(100, 9999)), msgid="ERR", message=(
                       f"Unhandled exception on {path}: {rng.choice(('NullPointerException', 'KeyError', 'TypeError'))} "
                       f"in handler after {rng.randint(2, 900)} ms")))  # fmt: skip
            elif pick == 2:
                b.emit(label, src.alertmanager(t, [{"labels": {"alertname": "HighErrorRate", "service": service, "instance": f"{host}:8080",
                       "severity": "critical"}, "summary": f"{service} on {host}: {rng.randint(5, 60)}% of requests fail",
                       "starts": t, "fingerprint": _fp(rng)}]))  # fmt: skip
            else:
                b.emit(label, src.pagerduty(t, action="trigger", dedup_key=f"{service}-{host}-5xx", summary=f"HTTP 5xx from {service} on {host}",
                                            source=host, component=service, severity="error"))  # fmt: skip
    if rng.random() < 0.7:
        b.emit(label, src.grafana(t0 + rng.uniform(60, 240), rule="Service error budget burn", labels={"service": service},
                                  summary=f"{service} is burning its error budget 14x", value=14.0, fingerprint=_fp(rng)))  # fmt: skip
    b.emit(label, src.generic(t0 + span + rng.uniform(10, 120), host=None, service=service, title=f"Rolled back {service} to the previous release",
                              severity="info", sender="argocd", event_type="deployment"))  # fmt: skip


def cert_expiry(b: Builder, t0: float) -> None:
    """One certificate, deployed on many hosts, is about to expire: a checker sweep reports each."""
    rng = b.rng
    hosts = rng.sample(list(b.estate.hosts), min(len(b.estate.hosts), rng.randint(5, 30)))
    cn = rng.choice(("*.shop.example.com", "api.example.com", "*.internal.example.net", "login.example.org"))
    days = rng.randint(3, 14)
    label = b.incident("cert_expiry", t0, hosts=len(hosts), cn=cn)
    sweep = rng.uniform(30, 600)
    via_prometheus = rng.random() < 0.5
    for host in hosts:
        t = t0 + rng.uniform(0, sweep)
        if via_prometheus:
            b.emit(label, src.alertmanager(t, [{"labels": {"alertname": "SSLCertExpiringSoon", "instance": f"{host}:443", "job": "blackbox",
                   "severity": "warning"}, "summary": f"TLS certificate {cn} on {host} expires in {days} days", "starts": t,
                   "fingerprint": _fp(rng)}]))  # fmt: skip
        else:
            b.emit(label, src.generic(t, host=host, service=rng.choice(("nginx", "haproxy", None)), severity="medium",
                                      title=f"SSL certificate for {cn} expires in {days} days", sender="certwatch",
                                      event_type="certificate_expiry"))  # fmt: skip


def brute_force(b: Builder, t0: float) -> None:
    """One address guesses SSH passwords on one to three hosts: sshd lines and the host IDS's CEF records."""
    rng = b.rng
    hosts = rng.sample(list(b.estate.hosts), rng.randint(1, 3))
    attacker = _attacker(rng)
    label = b.incident("brute_force", t0, hosts=len(hosts), source_ip=attacker)
    span = rng.uniform(120, 900)
    for host in hosts:
        for _ in range(rng.randint(6, 30)):
            t = t0 + rng.uniform(0, span)
            user = rng.choice(_USERS)
            if rng.random() < 0.75:
                invalid = "invalid user " if rng.random() < 0.6 else ""
                b.emit(label, src.rfc3164(t, host=host, tag="sshd", pid=rng.randint(1000, 60000), facility=src.AUTHPRIV, severity=6,
                                          message=f"Failed password for {invalid}{user} from {attacker} port {rng.randint(1024, 65535)} ssh2"))  # fmt: skip
            else:
                b.emit(label, src.cef(t, host=host, vendor="Wazuh", product="Wazuh", signature="5716", name="sshd: authentication failed",
                                      severity=5, extension={"src": attacker, "duser": user, "rt": f"{int((src.T0 + t) * 1000)}"}))  # fmt: skip


def db_failover(b: Builder, t0: float) -> None:
    """A database primary dies, the replica is promoted; its clients see refused connections meanwhile."""
    rng, estate = b.rng, b.estate
    db = rng.choice(list(estate.databases))
    primary, replica = estate.databases[db]
    label = b.incident("db_failover", t0, database=db)
    b.emit(label, src.alertmanager(t0 + rng.uniform(0, 30), [{"labels": {"alertname": "PostgresqlDown", "instance": f"{primary}:9187",
           "job": db, "severity": "critical"}, "summary": f"PostgreSQL is down on {primary}", "starts": t0, "fingerprint": _fp(rng)}]))  # fmt: skip
    promoted = t0 + rng.uniform(20, 60)
    for k, line in enumerate(("received promotion request", "redo done at 0/5A0001C8", "selected new timeline ID: 7",
                              "database system is ready to accept connections")):  # fmt: skip
        b.emit(label, src.rfc5424(promoted + k * 0.4, host=replica, app="postgres", procid=str(rng.randint(100, 9999)), severity=6,
                                  message=f"LOG:  {line}"))  # fmt: skip
    b.emit(label, src.pagerduty(promoted + 2, action="trigger", dedup_key=f"patroni-{db}", summary=f"Failover on cluster {db}: new leader {replica}",
                                source=replica, component=db, severity="critical", klass="failover"))  # fmt: skip
    clients = [s for s, d in estate.uses.items() if d == db]
    for service in clients:
        for host in estate.services[service][:4]:
            for _ in range(rng.randint(1, 2)):
                b.emit(label, src.rfc5424(t0 + rng.uniform(0, promoted - t0 + 20), host=host, app=service, msgid="DB", message=(
                       f"could not connect to server: Connection refused. Is the server running on host \"{primary}\" "
                       f"and accepting TCP/IP connections on port 5432? (pool {rng.randint(1, 16)})")))  # fmt: skip


def flapping_link(b: Builder, t0: float) -> None:
    """One interface goes down and up again and again."""
    rng = b.rng
    device = rng.choice(list(b.estate.switches) + b.estate.routers)
    port = rng.randint(1, 48)
    descr = f"GigabitEthernet1/0/{port}"
    label = b.incident("flapping_link", t0, device=device)
    t = t0
    for _ in range(rng.randint(4, 10)):
        for oid, state in ((src.LINK_DOWN, "down"), (src.LINK_UP, "up")):
            b.emit(label, src.trap(t, device=device, oid=oid, if_index=port, if_descr=descr))
            if rng.random() < 0.5:
                b.emit(label, src.cisco(t + 0.2, device=device, seq=rng.randint(100, 90000), mnemonic="LINK-3-UPDOWN",
                                        message=f"Interface {descr}, changed state to {state}", severity=3 if state == "down" else 5))  # fmt: skip
            t += rng.uniform(8, 90) if state == "down" else rng.uniform(20, 240)


def alert_storm(b: Builder, t0: float) -> None:
    """One noisy alert fires over and over for a while, with a changing value."""
    rng = b.rng
    host = rng.choice(list(b.estate.hosts))
    label = b.incident("alert_storm", t0, host=host)
    variant = rng.randrange(3)
    queue = rng.choice(("orders.created", "mail.outbound", "events.ingest", "thumbnails"))
    t, end = t0, t0 + rng.uniform(600, 2400)
    while t < end:
        if variant == 0:
            b.emit(label, src.generic(t, host=host, title=f"Replication lag {rng.randint(30, 900)} s on {host}", severity="medium",
                                      sender="pgwatch", event_type="replication_lag"))  # fmt: skip
        elif variant == 1:
            b.emit(label, src.rfc3164(t, host=host, tag="kernel", facility=src.KERN, severity=4,
                                      message=f"[{rng.uniform(1e5, 9e5):.6f}] nf_conntrack: table full, dropping packet"))  # fmt: skip
        else:
            b.emit(label, src.grafana(t, rule="Queue depth", labels={"instance": host, "queue": queue},
                                      summary=f"Queue {queue} depth is {rng.randint(5000, 90000)}", value=float(rng.randint(5000, 90000)),
                                      fingerprint=_fp(rng)))  # fmt: skip
        t += rng.uniform(8, 40)


def two_on_one_host(b: Builder, t0: float) -> None:
    """Two unrelated problems on one host, for two different services, about twenty minutes apart."""
    rng, estate = b.rng, b.estate
    host = rng.choice(list(estate.hosts))
    first, second = rng.sample(
        [s for s in estate.services if host not in estate.services[s]] or list(estate.services), 2
    )
    for service in (first, second):
        estate.services[service].append(host)
    label = b.incident("two_on_one_host", t0, host=host, service=first)
    for _ in range(rng.randint(3, 8)):
        t = t0 + rng.uniform(0, 300)
        if rng.random() < 0.5:
            b.emit(label, src.alertmanager(t, [{"labels": {"alertname": "HTTPLatencyHigh", "service": first, "instance": f"{host}:8080",
                   "severity": "warning"}, "summary": f"{first} p99 latency is {rng.uniform(2, 9):.1f} s", "starts": t, "fingerprint": _fp(rng)}]))  # fmt: skip
        else:
            b.emit(label, src.rfc5424(t, host=host, app=first, msgid="WARN", message=f"request to /api/{rng.choice(('a', 'b', 'c'))} took "
                                      f"{rng.randint(2000, 9000)} ms (slow threshold 1000 ms)"))  # fmt: skip
    t1 = t0 + rng.uniform(15, 25) * 60
    label2 = b.incident("two_on_one_host", t1, host=host, service=second)
    for _ in range(rng.randint(3, 8)):
        t = t1 + rng.uniform(0, 300)
        if rng.random() < 0.5:
            b.emit(label2, src.rfc3164(t, host=host, tag=second, pid=rng.randint(300, 60000),
                                       message=f"ERROR job {rng.getrandbits(20):05x} failed: permission denied writing /srv/{second}/out"))  # fmt: skip
        else:
            b.emit(label2, src.pagerduty(t, action="trigger", dedup_key=f"{second}-jobs-{host}", summary=f"{second} batch jobs failing on {host}",
                                         source=host, component=second, severity="error"))  # fmt: skip


def maintenance(b: Builder, t0: float) -> None:
    """Planned rolling reboots of a group of hosts: reboot lines, down-then-resolved alerts."""
    rng = b.rng
    switch = rng.choice(list(b.estate.switches))
    hosts = b.estate.hosts_behind(switch)[: rng.randint(4, 15)]
    label = b.incident("maintenance", t0, hosts=len(hosts))
    t = t0 + 60
    for host in hosts:
        b.emit(label, src.rfc3164(t, host=host, tag="systemd-logind", pid=rng.randint(300, 2000), severity=5,
                                  message="System is rebooting."))  # fmt: skip
        if rng.random() < 0.6:
            fp = _fp(rng)
            back = t + rng.uniform(90, 240)
            alert = {"labels": {"alertname": "InstanceDown", "instance": f"{host}:9100", "job": "node", "severity": "critical"},
                     "summary": f"{host} has been down for more than 1 minute", "starts": t + 60, "ends": back, "fingerprint": fp}  # fmt: skip
            b.emit(label, src.alertmanager(t + 60, [alert]))
            b.emit(label, src.alertmanager(back, [alert], status="resolved"))
        t += rng.uniform(120, 400)


_NOISE: tuple[tuple[str, str], ...] = (
    ("cron", "(root) CMD (run-parts /etc/cron.hourly)"),
    ("sshd", "Accepted publickey for deploy from 10.0.{a}.{b} port {p} ssh2"),
    ("systemd", "Started Daily apt upgrade and clean activities."),
    ("logrotate", "ALERT exited abnormally with [{a}]"),
    ("ntpd", "time reset +0.{p} s"),
    ("backup", "backup of /srv completed in {p} s ({a} GB)"),
    ("dhclient", "DHCPACK of 10.0.{a}.{b} from 10.0.{a}.1"),
    ("puppet-agent", "Applied catalog in {a}.{b} seconds"),
)


def background_noise(b: Builder, duration_s: float, *, count: int) -> None:
    """One-off, unrelated events throughout: on hosts with incidents too, and on hosts nobody declared."""
    rng = b.rng
    hosts = list(b.estate.hosts) + b.estate.strays
    for _ in range(count):
        t = rng.uniform(0, duration_s)
        host = rng.choice(hosts)
        fill: dict[str, Any] = {"a": rng.randint(1, 250), "b": rng.randint(1, 250), "p": rng.randint(1024, 65000)}
        pick = rng.randrange(5)
        if pick < 3:
            tag, text = rng.choice(_NOISE)
            b.emit(
                "noise",
                src.rfc3164(
                    t, host=host, tag=tag, pid=rng.randint(300, 60000), severity=6, message=text.format(**fill)
                ),
            )
        elif pick == 3:
            b.emit("noise", src.generic(t, host=host, severity=rng.choice(("info", "low")), sender="scripts", title=rng.choice((
                   "Certificate renewed for {h}", "Nightly report generated on {h}", "Package cache refreshed on {h}",
                   "Config reloaded on {h}")).format(h=host)))  # fmt: skip
        else:
            b.emit("noise", src.alertmanager(t, [{"labels": {"alertname": rng.choice(("DiskIOSaturation", "NTPDrift", "SwapUsage")),
                   "instance": f"{host}:9100", "severity": "info"}, "summary": f"brief blip on {host}", "starts": t,
                   "fingerprint": _fp(rng)}]))  # fmt: skip

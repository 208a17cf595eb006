"""Raw input as real senders write it, for the scenario generator (:mod:`bench.scenarios`).

Each builder returns one or more *raw events* ``{"source_type", "source", "payload", "occurred"}``:
``payload`` is exactly what the normalizer receives from the edge (a webhook item after the web
tier split the body with the adapter's own ``split``, a syslog frame as text, a decoded trap as
the SNMP receiver writes it). ``occurred`` is the scenario time (seconds) the sender stamped.

Names come from :class:`Names`: several naming schemes at once (role-number, site-env-role, cloud
``ip-10-…`` names, FQDNs, themed names, Kubernetes nodes, Windows-style upper case, bare IPs), so
nothing downstream can key on one pattern.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

from app.parsing.webhooks import ADAPTERS

#: Scenario time 0: 2026-11-23 10:00 UTC (a Monday, business hours).
T0 = 1_795_428_000.0

_ROLES = ("web", "api", "app", "worker", "cache", "batch", "front", "edge", "search", "queue", "ingest", "billing",
          "render", "auth", "media", "proxy", "etl", "kafka", "mq", "jobs")  # fmt: skip
_THEMES = ("hermes", "atlas", "zeus", "apollo", "athena", "orion", "vega", "rigel", "lyra", "draco", "juno",
           "ceres", "titan", "nova", "pluto", "sirius", "kepler", "hubble", "castor", "pollux", "deneb", "altair",
           "mira", "ariel", "oberon", "io", "europa", "callisto", "ganymede", "phoebe")  # fmt: skip
_SITES = ("fra1", "ams2", "lon3", "nyc3", "sfo2", "sin1", "par1", "dub1", "waw1", "mad2", "osl1", "tor1")
_DOMAINS = ("corp.example.net", "prod.example.com", "int.acme.io", "dc.example.org", "infra.shop.local")
_REGIONS = ("eu-west-1", "eu-central-1", "us-east-1", "us-west-2", "ap-southeast-1")
_SERVICES = ("checkout", "payments", "search", "inventory", "catalog", "notifications", "ledger", "shipping",
             "gateway", "profile", "pricing", "reporting", "recommendations", "orders", "invoicing", "loyalty",
             "identity", "media", "messaging", "analytics", "cart", "returns", "tax", "fraud")  # fmt: skip
_SERVICE_SUFFIXES = ("", "", "", "-api", "-svc", "-worker", "-web")
_DATABASES = ("pg-main", "orders-db", "ledger-pg", "mysql-core", "billing-db", "users-pg", "catalog-mysql")


class Names:
    """Unique, realistic, varied names for one seeded estate."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()
        self.site = rng.choice(_SITES)
        self.domain = rng.choice(_DOMAINS)
        self.region = rng.choice(_REGIONS)
        self.net = rng.randrange(10, 250)
        #: The schemes this estate uses for hosts (two to four of them, mixed per rack).
        self.schemes = rng.sample(("role", "site", "cloud", "fqdn", "theme", "k8s", "windows", "ip"), rng.randint(2, 4))

    def _unique(self, make: Any) -> str:
        for _ in range(1000):
            name = make()
            if name not in self.used:
                self.used.add(name)
                return name
        raise RuntimeError("the name space is exhausted")

    def host(self, scheme: str, role: str | None = None) -> str:
        rng = self.rng
        role = role or rng.choice(_ROLES)
        n = rng.randint(1, 299)

        def make() -> str:
            k = rng.randint(1, 299)
            if scheme == "role":
                return f"{role}-{k:02d}" if rng.random() < 0.7 else f"{role}{k:02d}"
            if scheme == "site":
                return f"{self.site}-{rng.choice(('prd', 'prod', 'p'))}-{role}{k:03d}"
            if scheme == "cloud":
                return f"ip-10-{self.net}-{rng.randint(0, 255)}-{rng.randint(1, 254)}.{self.region}.compute.internal"
            if scheme == "fqdn":
                return f"{role}{k:02d}.{self.site}.{self.domain}"
            if scheme == "theme":
                return rng.choice(_THEMES) + (f"-{k % 20}" if rng.random() < 0.6 else "")
            if scheme == "k8s":
                return f"gke-{self.site}-pool-{rng.randint(1, 4)}-{rng.getrandbits(16):04x}-{rng.getrandbits(16):04x}"
            if scheme == "windows":
                return f"{self.site[:3].upper()}{role[:3].upper()}{k + n:03d}"
            return f"10.{self.net}.{rng.randint(0, 255)}.{rng.randint(2, 254)}"

        return self._unique(make)

    def device_ip(self) -> str:
        """A network device's management address: what its traps come from, and its syslog's host."""
        return self._unique(
            lambda: f"10.{self.rng.randint(0, 255)}.{self.rng.randint(0, 255)}.{self.rng.choice((1, 2, 254))}"
        )

    def service(self) -> str:
        return self._unique(lambda: self.rng.choice(_SERVICES) + self.rng.choice(_SERVICE_SUFFIXES))

    def database(self) -> str:
        return self._unique(
            lambda: self.rng.choice(_DATABASES) + (f"-{self.rng.randint(2, 9)}" if self.rng.random() < 0.4 else "")
        )


def iso(t: float) -> str:
    return datetime.fromtimestamp(T0 + t, UTC).isoformat().replace("+00:00", "Z")


def bsd(t: float) -> str:
    when = datetime.fromtimestamp(T0 + t, UTC)
    return f"{when:%b} {when.day:2d} {when:%H:%M:%S}"


def _raw(source_type: str, payload: Any, occurred: float, source: str | None = None) -> dict[str, Any]:
    return {"source_type": source_type, "source": source, "payload": payload, "occurred": occurred}


# -- webhooks -------------------------------------------------------------------------------------


def generic(t: float, *, host: str | None, title: str, severity: str, sender: str, service: str | None = None,
            event_type: str | None = None, fingerprint: str | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """A generic JSON webhook (``POST /api/v1/events/webhook``), as a monitoring script sends it."""
    body: dict[str, Any] = {"source": sender, "title": title, "severity": severity, "timestamp": iso(t)}
    for key, value in (("host", host), ("service", service), ("event_type", event_type), ("fingerprint", fingerprint)):
        if value:
            body[key] = value
    return [_raw("webhook", item, t) for item in ADAPTERS["webhook"].split(body)]


def alertmanager(t: float, alerts: list[dict[str, Any]], *, status: str = "firing", receiver: str = "opsconductor",
                 ) -> list[dict[str, Any]]:  # fmt: skip
    """One Alertmanager v4 notification; ``alerts``: ``{"labels", "summary", "starts", "ends"?, "fingerprint"}``."""
    body_alerts = []
    for a in alerts:
        labels = a["labels"]
        body_alerts.append({
            "status": status, "labels": labels, "annotations": {"summary": a["summary"]},
            "startsAt": iso(a["starts"]), "endsAt": iso(a["ends"]) if status == "resolved" else "0001-01-01T00:00:00Z",
            "generatorURL": f"http://prometheus:9090/graph?g0.expr={labels['alertname']}",
            "fingerprint": a["fingerprint"],
        })  # fmt: skip
    common = {"alertname": alerts[0]["labels"]["alertname"]}
    body = {"version": "4", "receiver": receiver, "status": status, "groupKey": f"{{}}:{common}", "truncatedAlerts": 0,
            "groupLabels": common, "commonLabels": common, "externalURL": "http://alertmanager:9093", "alerts": body_alerts}  # fmt: skip
    return [_raw("alertmanager", item, t) for item in ADAPTERS["alertmanager"].split(body)]


def grafana(t: float, *, rule: str, labels: dict[str, str], summary: str, value: float, status: str = "firing",
            fingerprint: str) -> list[dict[str, Any]]:  # fmt: skip
    """One Grafana unified-alerting webhook with one alert."""
    alert = {
        "status": status, "labels": {"alertname": rule, "grafana_folder": "Production", **labels},
        "annotations": {"summary": summary}, "startsAt": iso(t), "endsAt": "0001-01-01T00:00:00Z",
        "values": {"B": value}, "valueString": f"[ var='B' labels={{}} value={value} ]", "fingerprint": fingerprint,
        "dashboardURL": "http://grafana:3000/d/abc", "panelURL": "http://grafana:3000/d/abc?viewPanel=2",
    }  # fmt: skip
    body = {"receiver": "opsconductor", "status": status, "orgId": 1, "alerts": [alert], "groupLabels": {"alertname": rule},
            "commonLabels": alert["labels"], "externalURL": "http://grafana:3000/", "version": "1",
            "title": f"[{status.upper()}:1] {rule}", "state": "alerting" if status == "firing" else "ok", "message": summary}  # fmt: skip
    return [_raw("grafana", item, t) for item in ADAPTERS["grafana"].split(body)]


def pagerduty(t: float, *, action: str, dedup_key: str, summary: str = "", source: str = "", severity: str = "error",
              component: str | None = None, klass: str | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """One PagerDuty Events API v2 event (trigger or resolve)."""
    body: dict[str, Any] = {
        "routing_key": "R0123456789ABCDEF0123456789ABCDEF",
        "event_action": action,
        "dedup_key": dedup_key,
    }
    if action == "trigger":
        payload: dict[str, Any] = {"summary": summary, "source": source, "severity": severity, "timestamp": iso(t)}
        if component:
            payload["component"] = component
        if klass:
            payload["class"] = klass
        body["payload"] = payload
    return [_raw("pagerduty", item, t) for item in ADAPTERS["pagerduty"].split(body)]


# -- syslog ---------------------------------------------------------------------------------------

#: Facility numbers used below.
KERN, USER, DAEMON, AUTH, AUTHPRIV, LOCAL7 = 0, 1, 3, 4, 10, 23


def rfc3164(t: float, *, host: str | None, tag: str, message: str, facility: int = DAEMON, severity: int = 3,
            peer: str | None = None, pid: int | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """A BSD syslog line (rsyslog's default forward format); ``host`` None leaves the HOSTNAME out."""
    head = f"<{facility * 8 + severity}>{bsd(t)} " + (f"{host} " if host else "")
    tag_part = f"{tag}[{pid}]:" if pid is not None else f"{tag}:"
    return [_raw("syslog", f"{head}{tag_part} {message}", t, peer or host)]


def rfc5424(t: float, *, host: str, app: str, message: str, facility: int = DAEMON, severity: int = 3,
            msgid: str = "-", sd: str = "-", procid: str = "-") -> list[dict[str, Any]]:  # fmt: skip
    """An RFC 5424 syslog message."""
    return [
        _raw("syslog", f"<{facility * 8 + severity}>1 {iso(t)} {host} {app} {procid} {msgid} {sd} {message}", t, host)
    ]


def cisco(t: float, *, device: str, seq: int, mnemonic: str, message: str, severity: int = 3) -> list[dict[str, Any]]:
    """A Cisco IOS line as the device sends it: no HOSTNAME (the host is the sender's address)."""
    when = datetime.fromtimestamp(T0 + t, UTC)
    stamp = f"{when:%b} {when.day:2d} {when:%H:%M:%S}.{when.microsecond // 1000:03d} UTC"
    return [_raw("syslog", f"<{LOCAL7 * 8 + severity}>{seq}: {stamp}: %{mnemonic}: {message}", t, device)]


def cef(t: float, *, host: str, vendor: str, product: str, signature: str, name: str, severity: int,
        extension: dict[str, str]) -> list[dict[str, Any]]:  # fmt: skip
    """A CEF record inside an RFC 3164 line, as a host-based IDS forwards it."""
    ext = " ".join(f"{k}={v}" for k, v in {**extension, "dvchost": host}.items())
    message = f"CEF:0|{vendor}|{product}|4.7.2|{signature}|{name}|{severity}|{ext}"
    return [_raw("syslog", f"<{AUTH * 8 + 4}>{bsd(t)} {host} {message}", t, host)]


# -- SNMP -----------------------------------------------------------------------------------------

LINK_DOWN, LINK_UP, COLD_START = "1.3.6.1.6.3.1.1.5.3", "1.3.6.1.6.3.1.1.5.4", "1.3.6.1.6.3.1.1.5.1"


def trap(t: float, *, device: str, oid: str, if_index: int | None = None, if_descr: str | None = None,
         version: str = "v2c", uptime: int = 0) -> list[dict[str, Any]]:  # fmt: skip
    """A decoded trap as the SNMP receiver writes it (v2c, or v1 with the generic-trap number)."""
    varbinds: list[list[Any]] = []
    if if_index is not None:
        varbinds.append([f"1.3.6.1.2.1.2.2.1.1.{if_index}", "Integer", if_index])
        if if_descr:
            varbinds.append([f"1.3.6.1.2.1.2.2.1.2.{if_index}", "OctetString", if_descr])
        if oid in (LINK_DOWN, LINK_UP):
            status = 2 if oid == LINK_DOWN else 1
            varbinds += [
                [f"1.3.6.1.2.1.2.2.1.7.{if_index}", "Integer", 1],
                [f"1.3.6.1.2.1.2.2.1.8.{if_index}", "Integer", status],
            ]
    if version == "v1":
        payload = {"version": "v1", "peer": device, "pdu": "trapv1", "enterprise": "1.3.6.1.4.1.9.1.1208",
                   "agent_address": device, "generic_trap": int(oid.rsplit(".", 1)[1]) - 1, "specific_trap": 0,
                   "uptime": uptime, "varbinds": varbinds}  # fmt: skip
    else:
        head = [["1.3.6.1.2.1.1.3.0", "TimeTicks", uptime], ["1.3.6.1.6.3.1.1.4.1.0", "ObjectIdentifier", oid]]
        payload = {"version": "v2c", "peer": device, "pdu": "trap", "trap_oid": oid, "uptime": uptime,
                   "varbinds": head + varbinds}  # fmt: skip
    return [_raw("snmp", payload, t, device)]

"""Seeded incident scenarios for measuring the correlator on incidents it has never seen.

One seed gives one scenario: an estate (core routers, access switches, hosts under them, services
running on several hosts, databases with a primary and a replica), its declared topology in the
``PUT /api/v1/topology`` shape (complete, partial or absent: real estates are incomplete), and a
few hours of raw input as the edge hands it to the normalizer — webhooks (generic JSON,
Alertmanager v4, Grafana, PagerDuty v2), syslog (RFC 3164, RFC 5424, Cisco IOS, CEF) and SNMP
traps — each item labelled with the true incident it belongs to, or ``noise``.

Every incident kind of :data:`KINDS` occurs at least once per seed (more are drawn at random),
at random times, so unrelated incidents overlap as they do in production. Host names follow
several naming schemes at once, sizes, timings, per-source delivery delays and arrival order are
drawn from the seed, and background noise (one-off unrelated events, many on hosts that also
have incidents) runs throughout. Nothing but the seed decides the output.

Seeds 1-5 are for tuning (:data:`TUNING_SEEDS`); 101-110 are held out (:data:`HELD_OUT_SEEDS`):
the correlator is never tuned on them, and the quality report quotes them.

    .venv/bin/python bench/scenarios.py --seed 3              # the scenario as JSON
    .venv/bin/python bench/scenarios.py --seed 3 --summary    # what it holds
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import scenario_kinds as kinds  # noqa: E402
from bench.scenario_sources import Names  # noqa: E402

#: Seeds the correlator may be tuned on.
TUNING_SEEDS = (1, 2, 3, 4, 5)
#: Seeds never tuned on: the report quotes these.
HELD_OUT_SEEDS = tuple(range(101, 111))
#: The label of an event that belongs to no incident.
NOISE = "noise"
#: Incident kind -> the function that writes its events (see :mod:`bench.scenario_kinds`).
KINDS: dict[str, Any] = {
    "network_outage": kinds.network_outage,
    "host_resource": kinds.host_resource,
    "bad_deploy": kinds.bad_deploy,
    "cert_expiry": kinds.cert_expiry,
    "brute_force": kinds.brute_force,
    "db_failover": kinds.db_failover,
    "flapping_link": kinds.flapping_link,
    "alert_storm": kinds.alert_storm,
    "two_on_one_host": kinds.two_on_one_host,
    "maintenance": kinds.maintenance,
}
#: Seconds a sender takes to deliver, by source type (Alertmanager and Grafana wait and group).
DELAY_S = {"syslog": (0.0, 1.5), "snmp": (0.0, 1.0), "webhook": (0.2, 5.0), "alertmanager": (5.0, 35.0),
           "grafana": (10.0, 60.0), "pagerduty": (0.5, 3.0)}  # fmt: skip


@dataclass
class Estate:
    """What runs where. Network devices are known by their management address (what traps come from)."""

    names: Names
    routers: list[str] = field(default_factory=list)
    #: switch -> the router it hangs off.
    switches: dict[str, str] = field(default_factory=dict)
    #: host -> its access switch.
    hosts: dict[str, str] = field(default_factory=dict)
    #: service -> the hosts it runs on.
    services: dict[str, list[str]] = field(default_factory=dict)
    #: database -> [primary host, replica host].
    databases: dict[str, list[str]] = field(default_factory=dict)
    #: service -> the database it depends on.
    uses: dict[str, str] = field(default_factory=dict)
    #: Hosts outside the declared estate (laptops, appliances, a forgotten VM): noise comes from them too.
    strays: list[str] = field(default_factory=list)

    def hosts_behind(self, device: str) -> list[str]:
        if device in self.switches:
            return [h for h, sw in self.hosts.items() if sw == device]
        return [h for sw, r in self.switches.items() if r == device for h in self.hosts_behind(sw)]

    def services_on(self, host: str) -> list[str]:
        return [s for s, hosts in self.services.items() if host in hosts]


class Builder:
    """Collects one scenario's events; kinds call :meth:`emit` with the raw events they write."""

    def __init__(self, rng: random.Random, estate: Estate) -> None:
        self.rng = rng
        self.estate = estate
        self.events: list[dict[str, Any]] = []
        self.incidents: dict[str, dict[str, Any]] = {}
        self._seq = Counter[str]()

    def incident(self, kind: str, start: float, **facts: Any) -> str:
        self._seq[kind] += 1
        label = f"{kind}-{self._seq[kind]}"
        self.incidents[label] = {"kind": kind, "start": round(start, 3), **facts}
        return label

    def emit(self, label: str, raws: list[dict[str, Any]], *, extra_delay_s: float = 0.0) -> None:
        """Record raw events of ``label``; each arrives after its source's delivery delay (jitter)."""
        for raw in raws:
            lo, hi = DELAY_S[raw["source_type"]]
            arrival = raw["occurred"] + extra_delay_s + self.rng.uniform(lo, hi)
            self.events.append({"label": label, "t": round(arrival, 3), "source_type": raw["source_type"],
                                "source": raw["source"], "payload": raw["payload"]})  # fmt: skip


def build_estate(rng: random.Random) -> Estate:
    names = Names(rng)
    estate = Estate(names)
    estate.routers = [names.device_ip() for _ in range(rng.randint(1, 3))]
    for k in range(rng.randint(3, 8)):
        switch = names.device_ip()
        estate.switches[switch] = rng.choice(estate.routers)
        scheme = rng.choice(names.schemes)
        for _ in range(rng.randint(25, 45) if k == 0 else rng.randint(6, 40)):  # one large rack in every estate
            estate.hosts[names.host(scheme if rng.random() < 0.8 else rng.choice(names.schemes))] = switch
    hosts = list(estate.hosts)
    for _ in range(rng.randint(2, 4)):
        db = names.database()
        estate.databases[db] = rng.sample(hosts, 2)
    for _ in range(rng.randint(6, 14)):
        service = names.service()
        estate.services[service] = rng.sample(hosts, min(len(hosts), rng.choice((1, 2, 3, 4, 6, 8, 12))))
        if rng.random() < 0.7:
            estate.uses[service] = rng.choice(list(estate.databases))
    estate.strays = [names.host(rng.choice(names.schemes)) for _ in range(rng.randint(10, 40))]
    return estate


def topology_of(estate: Estate, rng: random.Random, completeness: str) -> dict[str, Any] | None:
    """The estate as the operator declared it: ``full``, ``partial`` (edges missing) or ``none``."""
    if completeness == "none":
        return None
    keep = 1.0 if completeness == "full" else rng.uniform(0.6, 0.85)
    nodes: dict[str, dict[str, Any]] = {}
    edges: list[dict[str, str]] = []

    def node(node_id: str, kind: str, criticality: str | None = None) -> None:
        nodes.setdefault(
            node_id, {"id": node_id, "kind": kind, **({"criticality": criticality} if criticality else {})}
        )

    def edge(dependent: str, dependency: str, kind: str) -> None:
        edges.append({"from": dependent, "to": dependency, "kind": kind})

    for router in estate.routers:
        node(router, "router", "critical")
    for switch, router in estate.switches.items():
        node(switch, "switch", "high")
        edge(switch, router, "connected_to")
    for host, switch in estate.hosts.items():
        if rng.random() < keep:
            node(host, "host")
            edge(host, switch, "connected_to")
    for db, hosts in estate.databases.items():
        node(db, "database", "critical")
        for host in hosts:
            node(host, "host")
            edge(db, host, "runs_on")
    for service, hosts in estate.services.items():
        node(service, "service", rng.choice(("low", "medium", "high")))
        for host in hosts:
            if rng.random() < keep:
                node(host, "host")
                edge(service, host, "runs_on")
        if service in estate.uses and rng.random() < keep:
            edge(service, estate.uses[service], "depends_on")
    return {"nodes": list(nodes.values()), "edges": edges, "resolutions": {}}


def generate(seed: int) -> dict[str, Any]:
    """The scenario of ``seed``: ``{"seed", "topology", "incidents", "events"}``, events in arrival order.

    Each event is ``{"id", "label", "t", "source_type", "source", "payload"}``: ``t`` is its arrival
    in seconds after the scenario's start (:data:`bench.scenario_sources.T0`), ``payload`` the raw
    item's payload as the normalizer receives it, ``label`` an incident of ``incidents`` or
    :data:`NOISE`. ``topology`` is ``None`` for an estate that declared none.
    """
    rng = random.Random(seed)
    estate = build_estate(rng)
    completeness = rng.choice(("full", "full", "full", "partial", "partial", "none"))
    builder = Builder(rng, estate)
    duration_s = rng.uniform(4, 7) * 3600
    plan = list(KINDS) + rng.choices(list(KINDS), k=rng.randint(2, 6))
    for kind in plan:
        KINDS[kind](builder, rng.uniform(300, duration_s - 2700))
    kinds.background_noise(builder, duration_s, count=rng.randint(60, 250))
    topology = topology_of(estate, rng, completeness)  # after the kinds: one may add a service to a host
    events = sorted(builder.events, key=lambda e: e["t"])
    for event in events:
        event["id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    ordered = [{k: e[k] for k in ("id", "label", "t", "source_type", "source", "payload")} for e in events]
    return {"seed": seed, "completeness": completeness, "topology": topology, "incidents": builder.incidents,
            "events": ordered}  # fmt: skip


def summary(scenario: dict[str, Any]) -> str:
    events = scenario["events"]
    per_label = Counter(e["label"] for e in events)
    lines = [f"seed {scenario['seed']}: {len(events)} events, {len(scenario['incidents'])} incidents, "
             f"{per_label[NOISE]} noise, topology {scenario['completeness']}"]  # fmt: skip
    for label, facts in scenario["incidents"].items():
        lines.append(f"  {label:<22} {per_label[label]:>4} events from t={facts['start']:>7.0f} s")
    lines.append(
        "  sources: " + ", ".join(f"{k} {v}" for k, v in sorted(Counter(e["source_type"] for e in events).items()))
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--summary", action="store_true", help="print what the scenario holds instead of its JSON")
    args = parser.parse_args()
    scenario = generate(args.seed)
    print(summary(scenario) if args.summary else json.dumps(scenario, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

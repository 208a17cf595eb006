"""What evidence is computed from: an event's :class:`Facts` (its nodes and their ancestors, its service, template,
subject and mentions), worked out once per event, and the keys it leaves on and looks up in incidents."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from .subjects import (
    ANSWERING_KINDS,
    REACHED_KINDS,
    answered,
    is_effect,
    link_key,
    mentions_of,
    subject_of,
    unreached,
)
from .templates import template

#: Separates a template key's parent from its program (``t:template@parent\x1fprogram``).
SCOPE = "\x1f"
#: Alert labels that name a service (a scrape ``job`` or ``container`` does not).
_SERVICE_LABELS = ("service", "app", "application")
#: Scrape jobs of a host's own exporter (Prometheus' node_exporter, windows_exporter), as their documentation names
#: them, and those exporters' default ports: an alert of such a target is about its host, not about a service.
_HOST_EXPORTER_JOBS = frozenset(
    {"node", "nodes", "node_exporter", "node-exporter", "windows", "windows_exporter", "windows-exporter", "wmi"}
)
_HOST_EXPORTER_PORTS = (":9100", ":9182")
#: Database engines as their syslog program names and their exporters' usual scrape jobs name them (the software,
#: not a deployment's name for its database: see :func:`_engine_database`).
_DATABASE_PROGRAMS = frozenset(
    {
        "postgres", "postgresql", "postmaster", "patroni", "mysqld", "mysql", "mariadb", "mariadbd", "mongod",
        "mongodb", "redis", "redis-server", "etcd", "cassandra", "elasticsearch", "opensearch", "clickhouse",
        "clickhouse-server", "sqlservr", "mssql", "oracle", "tnslsnr", "db2sysc",
    }
)  # fmt: skip


class TopologyView(Protocol):
    """What grouping asks of the topology (:class:`app.topology.graph.Graph` answers it)."""

    criticality: dict[str, str]
    resolutions: dict[str, set[str]]

    def __contains__(self, node: object) -> bool: ...

    def ancestors(self, node: str) -> list[tuple[str, int]]: ...

    def kind_of(self, node: str) -> str | None: ...

    def dependents(self, node: str) -> set[str]: ...

    def hosts_of(self, service: str) -> set[str]: ...

    def services_on(self, host: str) -> set[str]: ...

    def node_named(self, host: str) -> str | None: ...


@dataclass
class Facts:
    """What evidence is computed from, worked out once per event (before the correlator's lock)."""

    host: str | None
    service: str | None
    fingerprint: str
    template: tuple[str, ...]
    routine: bool
    #: The event's own node: its service when the topology declares it, else its host.
    nodes: set[str]
    #: Every node the event's nodes depend on -> hops.
    ancestors: dict[str, int]
    #: The nodes the event's host depends on directly.
    parents: set[str]
    #: The service the event names as a service (see the module's doc), or None.
    named_service: str | None = None
    #: The service an alert's labels give when none names it as a service (a scrape ``job``, a ``container``):
    #: tied by the service only to events that name it (``j`` keys, see :meth:`service_key`).
    label_service: str | None = None
    #: Addresses the message names, other than its own host.
    mentions: set[str] = field(default_factory=set)
    #: The event says a problem ended (:func:`resolves`).
    recovery: bool = False
    #: What the event is about on its host (:func:`subject_of`): ``""``, ``"down"``, ``"names <what>"``, or
    #: ``"link <interface>"`` for an interface going down or up (:func:`.subjects.link_key`).
    subject: str = ""
    #: Ancestors that are network devices, and the event is no connectivity symptom (:func:`is_effect`):
    #: their failure does not explain it, so it is tied to them by no ``topology`` evidence; databases too (their
    #: failure explains what their dependents say about reaching them only). For a refused connection, the
    #: network devices and hosts it depends on (:func:`.subjects.answered`: they answered), not the database.
    unexplained: set[str] = field(default_factory=set)
    #: The message says what it names answered (a refused connection): it is tied by what it names (``y`` keys)
    #: to no event saying that host cannot be reached (``u`` keys, :attr:`unreached`).
    answered: bool = False
    #: The message says its host cannot be reached (:func:`.subjects.unreached`), about the host itself (no
    #: service's probe: that probe reached its monitor from the host).
    unreached: bool = False
    #: With no topology to say where its host hangs: ``"link"`` for a device's interface going down, ``"cut"`` for a
    #: host undeclared in the topology going down or unreachable (a connectivity symptom), else ``""``. The two are
    #: tied within the causal window (``k`` keys, :func:`probes`): what else would tell the hosts behind a switch?
    undeclared_cut: str = ""
    #: The keys the event leaves on its incident (see :meth:`emits`).
    keys: list[str] = field(default_factory=list)
    #: The (key, kind) pairs looked up for its evidence (:func:`probes`), when worked out already.
    lookups: list[tuple[str, str]] | None = None

    def probed(self) -> list[tuple[str, str]]:
        """:func:`probes` of these facts, worked out once (PERF: both finding and weighing incidents use them)."""
        if self.lookups is None:
            self.lookups = probes(self)
        return self.lookups

    def weighs_template(self) -> bool:
        """Whether its message's template is evidence: a problem's, or a resolution's (routine messages repeat
        everywhere, but an alert's resolution whose firing was never seen — another monitor reported its
        host — belongs where that alert fires on the other hosts of the problem)."""
        return not self.routine or self.recovery

    def program(self) -> str:
        """What sent the message as the event names it (its service, a syslog program, an alert's job), or ``""``."""
        return (self.service or "").replace("@", "_").replace(SCOPE, "_")

    def service_key(self, prefix: str = "s", service: str | None = None) -> str:
        """The ``s`` key of its named service: ``service|`` or, when the message names things, ``service|names <what>``
        (``j`` and its label service: see :func:`probes`).

        A service's message naming a thing (the database host it cannot reach, a certificate) is about that
        thing: it is not tied by the service to the service's other problems (its batch jobs failing on one host).
        """
        about = self.subject if self.subject.startswith("names ") else ""
        return f"{prefix}:{service or self.named_service}|{about}"

    def emits(self) -> list[str]:
        """The keys an event leaves on its incident, by prefix: ``f`` fingerprint, ``s`` named service (:meth:`service_key`),
        ``t`` template (``template@parent\x1fprogram``, one per direct parent of its host, none known:
        ``template@\x1fprogram``; see :func:`in_scope`),
        ``h``/``r`` host (``host|named service|subject``; ``r`` also for routine events), ``n`` own node and ``a``
        ancestor (failing nodes only), ``v`` own node and ``w`` ancestor of a recovery, ``x`` a name mentioned, ``k`` a
        link going down or an undeclared host cut off (:attr:`undeclared_cut`)."""
        keys = [f"f:{self.fingerprint}"] if self.fingerprint else []
        if self.named_service:
            keys.append(self.service_key())
        elif self.label_service:
            keys.append(self.service_key("j", self.label_service))
        if self.host:
            tag = f"{self.host}|{self.named_service or ''}|{self.subject}"
            keys.append(f"r:{tag}")
            if not self.routine:
                keys.append(f"h:{tag}")
        if self.recovery:
            keys += [f"v:{n}" for n in sorted(self.nodes)]
            keys += [f"w:{n}" for n in sorted(self.ancestors)]
        if not self.routine:
            if self.template:
                tpl = " ".join(self.template)
                prog = self.program()
                keys += [f"t:{tpl}@{p}{SCOPE}{prog}" for p in sorted(self.parents)] or [f"t:{tpl}@{SCOPE}{prog}"]
            keys += [f"n:{n}" for n in sorted(self.nodes)]
            keys += [f"a:{n}" for n in sorted(self.ancestors) if n not in self.unexplained]
            keys += [f"{'y' if self.answered else 'x'}:{m}" for m in sorted(self.mentions)]
            if self.unreached and self.host:
                keys.append(f"u:{self.host}")
            if self.undeclared_cut:
                keys.append(f"k:{self.undeclared_cut}")
        return keys


def resolves(event: dict[str, Any], topology: TopologyView | None = None) -> bool:
    """Whether ``event`` says a problem ended: a resolution (Alertmanager ``resolved``, a PagerDuty resolve),
    a linkUp (or the syslog line of an interface coming up), or a type an operator declared the resolution of another."""
    meta = event.get("metadata") or {}
    declared = topology is not None and event.get("event_type") in topology.resolutions
    link_up = meta.get("trap_name") == "linkUp" or event.get("event_type") == "connectivity_restored"
    return bool(meta.get("resolution")) or link_up or declared


def named_service(event: dict[str, Any], topology: TopologyView) -> str | None:
    """The event's service when it is one (declared, or named as a service by its source), else None."""
    service = event.get("service")
    if not service:
        return None
    if service in topology:
        return str(service)
    meta = event.get("metadata") or {}
    if "facility" in meta or "appname" in meta:
        return None  # a syslog program name
    labels = meta.get("labels")
    if isinstance(labels, dict):
        return str(service) if any(labels.get(k) == service for k in _SERVICE_LABELS) else None
    return str(service)


def _engine_database(host: str, service: str, topology: TopologyView) -> str | None:
    """The declared database a database engine's message or alert on ``host`` is about: the one database node that
    runs on the host, when ``service`` (a syslog program, a scrape job) names an engine (``postgres`` on ``db-1``,
    which runs ``pg-main``). Senders name the software, operators declare the deployment: without this, the
    primary's panic is its host's problem, which explains none of what the database's clients say."""
    program = service.lower().removesuffix("_exporter").removesuffix("-exporter")
    if program not in _DATABASE_PROGRAMS:
        return None
    databases = [n for n in topology.services_on(host) if topology.kind_of(n) == "database"]
    return databases[0] if len(databases) == 1 else None


def facts_of(event: dict[str, Any], topology: TopologyView) -> Facts:
    """The event's :class:`Facts` (walks of the topology, cached by the graph)."""
    host, service = event.get("host"), event.get("service")
    if host and topology.kind_of(host) == "service":
        # A sender naming a declared service as its source (PagerDuty's ``source``, a probe's target): the alert is
        # about the service as a whole, not about a host.
        event = {**event, "host": None, "service": service if service in topology else host}
        host, service = None, event["service"]
    elif host and service and service not in topology and (engine := _engine_database(host, service, topology)):
        event = {**event, "service": engine}
        service = engine
    declared = bool(service and service in topology)
    # The event's own node: its service when the topology declares it (a service's error on a host
    # is the service's problem, not the host's), else its host.
    own = service if declared else host
    nodes = {n for n in (own,) if n}
    ancestors: dict[str, int] = {}
    for up, hops in topology.ancestors(host) if host else ():
        ancestors.setdefault(up, hops)
    single_points: set[str] = set()
    if declared and service:
        # What the service depends on but through its other hosts (a database, the database's hosts).
        elsewhere = topology.hosts_of(service) - {host}
        for up, hops in topology.ancestors(service):
            if (
                up != host
                and up not in elsewhere
                and up not in ancestors
                and not _only_through(up, elsewhere, topology)
            ):
                ancestors[up] = hops
        if not host and elsewhere:
            # The service as a whole (no host: a load balancer's error rate, a probe of its URL): what every host
            # of it depends on (its host, when it has one) is a single point of failure, whose failure explains
            # any failure of the service; one host of many down, or a switch in front of some of them, does not.
            # So is what the service itself depends on (its database), not through one of its hosts.
            for up, hops in topology.ancestors(service):
                if all(up == h or _above(up, h, topology) for h in elsewhere) or (hops == 1 and up not in elsewhere):
                    single_points.add(up)
                    ancestors.setdefault(up, hops)
    ancestors.pop(own or "", None)
    title = str(event.get("title") or "")
    mentions = mentions_of(event, title)
    # What a message names by a declared address or another spelling (nginx's upstream 10.1.1.21, HAProxy's server
    # app-21.corp) is also named as its node, so it meets that node's own events (app-21's OOM kill).
    mentions |= {
        node
        for m in mentions
        if (node := topology.node_named(m)) and node != host and topology.kind_of(node) != "service"
    }
    about = subject_of(title, mentions)
    # A declared service or database said to be down is that service's problem (its exporter or probe on the
    # host says so), not its host cut off: only its timeouts and lost connections are connectivity symptoms.
    effect = is_effect(title, "" if declared else about)
    refused = answered(title)
    not_causes = ANSWERING_KINDS if refused else REACHED_KINDS
    named = named_service(event, topology)
    labelled = bool(service and not named and _labels_name_a_service(labels_of(event)))
    if (declared or labelled) and about == "down":
        # Its exporter or probe on the host said so (a declared service's, or one a scrape job names: ``RedisDown``
        # of ``job="redis"``): the host was up, so this is no host down or unreachable.
        about = "service down"
    if (link := link_key(event)) is not None:
        # One interface going down or up is about that interface: not the device's other problems (another
        # port flapping while its uplink is down), though its going down is a connectivity symptom.
        about = f"link {link.partition('#')[2]}"
    facts = Facts(
        host=host,
        service=service,
        fingerprint=str(event.get("fingerprint") or "").removesuffix(":resolved"),
        template=template(title),
        routine=event.get("severity") == "info",
        nodes=nodes,
        ancestors=ancestors,
        parents={n for n, hops in topology.ancestors(host) if hops == 1} if host else set(),
        named_service=named,
        label_service=str(service) if labelled else None,
        mentions=mentions,
        recovery=resolves(event, topology),
        subject=about,
        unexplained=set() if effect else _not_causes(ancestors, not_causes, topology) - single_points,
        answered=refused,
    )
    # About the host itself, no service's: a service's probe saying its service is down ("PostgreSQL is down on
    # db-1") is about the service, and the probe reached its monitor from the host.
    about_host = not (facts.named_service or facts.label_service)
    facts.unreached = about == "down" and unreached(title) and about_host
    if not facts.recovery:
        if link is not None:
            facts.undeclared_cut = "link"
        elif effect and host and host not in topology and about_host:
            facts.undeclared_cut = "cut"
    facts.keys = facts.emits()
    facts.lookups = probes(facts)
    return facts


def labels_of(event: dict[str, Any]) -> Any:
    """An alert's labels (Alertmanager, Grafana), or None."""
    return (event.get("metadata") or {}).get("labels")


def _labels_name_a_service(labels: Any) -> bool:
    """Whether an alert's labels (a dict) give a service as its scrape ``job`` or ``container``: not when the target
    is a host's own exporter (``job="node"``, an ``instance`` on port 9100), whose ``InstanceDown`` says the host went
    down — what a switch cutting it off causes — unlike a service's exporter (``PostgresqlDown`` of ``job="pg-main"``)."""
    if not isinstance(labels, dict):
        return False
    job, instance = str(labels.get("job") or "").lower(), str(labels.get("instance") or "")
    return job not in _HOST_EXPORTER_JOBS and not instance.endswith(_HOST_EXPORTER_PORTS)


def _not_causes(ancestors: dict[str, int], kinds: frozenset[str], topology: TopologyView) -> set[str]:
    """The ``ancestors`` of an event that is no connectivity symptom whose failure does not explain it: those of
    ``kinds``, and whatever a database among them runs on or is reached through (its hosts, their switches). A
    database's host cut off explains what its dependents say about reaching the database, as the database failing
    does, not a deploy's exceptions of theirs."""
    found = {n for n in ancestors if topology.kind_of(n) in kinds}
    for node in [n for n in found if topology.kind_of(n) == "database"]:
        found.update(up for up, _ in topology.ancestors(node) if up in ancestors)
    return found


def _above(node: str, host: str, topology: TopologyView) -> bool:
    """Whether ``host`` depends on ``node``, at any depth."""
    return any(node == up for up, _ in topology.ancestors(host))


def _only_through(node: str, hosts: set[str], topology: TopologyView) -> bool:
    """Whether ``node`` is above one of ``hosts`` (so reached through a host the event is not on)."""
    return any(_above(node, h, topology) for h in hosts)


def probes(facts: Facts) -> list[tuple[str, str]]:
    """(key, kind) pairs to look up in incidents for the event's evidence (templates aside: they are alike, not equal)."""
    found: list[tuple[str, str]] = []
    if facts.fingerprint:
        found.append((f"f:{facts.fingerprint}", "fingerprint"))
    if facts.named_service:
        # Also the alerts whose labels give the service only as their job: a failover PagerDuty names for the
        # cluster pg-main and the PostgresqlDown alert of job pg-main (a job many alerts share, such as node,
        # is no service: alerts of one job are not tied to one another by it).
        found += [(facts.service_key(), "service"), (facts.service_key("j"), "service")]
    elif facts.label_service:
        found.append((facts.service_key("s", facts.label_service), "service"))
    if facts.recovery:
        found += [(f"v:{n}", "recovered_below") for n in sorted(facts.ancestors)]
        found += [(f"w:{n}", "recovered_above") for n in sorted(facts.nodes)]
    if not facts.routine:
        # Below a failing node (an ancestor is another event's own node), or above one (the event's
        # own node is an ancestor of another event's node).
        found += [(f"n:{n}", "below") for n in sorted(facts.ancestors) if n not in facts.unexplained]
        found += [(f"a:{n}", "above") for n in sorted(facts.nodes)]
        found += [(f"{p}:{m}", "entity") for m in sorted(facts.mentions) for p in "xy"]
        if facts.host:
            # Messages naming this host, by address or by name (either way round: see :func:`weigh`) — not those
            # saying it answered when this says it is down or unreachable (two problems of the host).
            found += [(f"{p}:{facts.host}", "entity") for p in ("x" if facts.unreached else "xy")]
        if facts.undeclared_cut:
            # A device's link going down and hosts nobody declared going down with it: without a topology, their
            # coming together is all that says the hosts hang behind it.
            found.append(("k:cut" if facts.undeclared_cut == "link" else "k:link", "cut"))
    return found


def in_scope(scope: str, parents: set[str], program: str) -> bool:
    """Whether a template seen in ``scope`` (``parent\x1fprogram`` of a ``t`` key) may tie an event behind
    ``parents`` sent by ``program``: behind no known node or one of the event's parents (any, when it has
    none), and by the same program (either unknown: any). The same words from two programs (two services'
    exceptions, a kernel's and an application's) are two problems."""
    parent, _, prog = scope.partition(SCOPE)
    return (not parents or not parent or parent in parents) and (not program or not prog or prog == program)

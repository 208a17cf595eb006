"""The topology in memory: what depends on what, walked by the correlator, the decider and the console.

A :class:`Graph` is built once per topology version (:func:`app.topology.store.load_graph` caches it)
and never changes afterwards, so every answer it computes is cached on it. An edge ``a -> b`` always
means *a depends on b*: a failure of ``b`` explains effects on ``a``, at any depth. Walks are
breadth-first and remember what they visited, so a cycle (allowed among ``connected_to`` edges:
two switches cabled to each other) ends them instead of looping.
"""

from __future__ import annotations

import ipaddress
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

#: Kinds of nodes an operator may declare.
NODE_KINDS = ("host", "switch", "router", "firewall", "load_balancer", "service", "database", "storage", "other")
#: Kinds of edges; ``from`` depends on ``to`` for each of them.
EDGE_KINDS = ("depends_on", "runs_on", "connected_to")
#: Levels of criticality, mildest first.
CRITICALITIES = ("low", "medium", "high", "critical")
#: Hops a walk follows at most: deeper chains are a modelling mistake, and the bound keeps a
#: pathological map from making one event's correlation walk the whole estate.
MAX_DEPTH = 32
#: Hosts whose node (or none) a graph remembers: events' hosts repeat, but senders can make up any.
MAX_NAMED = 65_536


@dataclass(frozen=True)
class Node:
    """One declared node: its id, kind, (optional) criticality, and the addresses it sends from."""

    id: str
    kind: str
    criticality: str | None = None
    #: IP addresses (canonical text) by which events may name this node: a trap's sender, a syslog header.
    addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class Edge:
    """One declared dependency: ``source`` depends on ``target`` (``from``/``to`` in JSON)."""

    source: str
    target: str
    kind: str


class Graph:
    """An immutable dependency graph with cached walks.

    Parameters:
        nodes: the declared nodes (an edge may name an undeclared one: it is then of unknown kind).
        edges: the declared edges, dependent first.
        resolutions: problem event type -> the event type that resolves it, as operators declare them.
        version: the topology version this graph was built from (0: none declared).
    """

    def __init__(
        self,
        nodes: Iterable[Node] = (),
        edges: Iterable[Edge] = (),
        resolutions: Mapping[str, str] | None = None,
        *,
        version: int = 0,
    ) -> None:
        self.version = version
        self.nodes: dict[str, Node] = {n.id: n for n in nodes}
        self.edges: list[Edge] = list(edges)
        #: node -> level, for the nodes that declare one.
        self.criticality: dict[str, str] = {n.id: n.criticality for n in self.nodes.values() if n.criticality}
        #: resolution event type -> the problem event types it resolves.
        self.resolutions: dict[str, set[str]] = {}
        for problem, resolution in (resolutions or {}).items():
            self.resolutions.setdefault(resolution, set()).add(problem)
        self._up: dict[str, list[str]] = {}
        self._down: dict[str, list[str]] = {}
        self._runs_on: dict[str, set[str]] = {}
        self._runs_here: dict[str, set[str]] = {}
        for edge in self.edges:
            self._up.setdefault(edge.source, []).append(edge.target)
            self._down.setdefault(edge.target, []).append(edge.source)
            if edge.kind == "runs_on":
                self._runs_on.setdefault(edge.source, set()).add(edge.target)
                self._runs_here.setdefault(edge.target, set()).add(edge.source)
        #: address -> node, and a node's name as events may spell it (case folded, its first DNS label) -> node.
        self._by_address: dict[str, str] = {a: n.id for n in self.nodes.values() for a in n.addresses}
        self._by_spelling: dict[str, str | None] = {}
        self._named: dict[str, str | None] = {}
        for ident in self.nodes:
            folded = ident.casefold()
            for spelling in {folded, folded if _address(ident) else folded.split(".", 1)[0]}:
                known = self._by_spelling.get(spelling, ident)
                self._by_spelling[spelling] = ident if known == ident else None  # two nodes: say neither
        # PERF: asked for every event the correlator places; each answer is computed once per version.
        self._ancestors: dict[str, list[tuple[str, int]]] = {}
        self._dependents: dict[str, set[str]] = {}

    def __len__(self) -> int:
        return len(self.nodes)

    def __contains__(self, node: object) -> bool:
        return node in self.nodes or node in self._up or node in self._down

    def node_named(self, host: str) -> str | None:
        """The declared node an event's ``host`` designates when it is not a node's id, or None.

        Senders name a device in their own ways: an SNMP trap by the address it came from (or its v1 agent
        address), syslog by a header that may be an address, a fully qualified name or upper case, an
        Alertmanager alert by its ``instance``. ``host`` designates a node when it is one of the node's
        ``addresses``, when it is the node's id spelt in other case, or when its first DNS label is (or the
        node's id's first label is ``host``) — and no other node is spelt so.
        """
        if host in self.nodes:
            return None
        # PERF: asked for every event the normalizer stores; hosts repeat, so answers are kept (a bounded number)
        if host in self._named:
            return self._named[host]
        if len(self._named) >= MAX_NAMED:
            self._named.clear()
        found = self._named[host] = self._node_named(host)
        return found

    def _node_named(self, host: str) -> str | None:
        address = _address(host)
        if address is not None:
            return self._by_address.get(address)
        folded = host.casefold()
        return self._by_spelling.get(folded) or self._by_spelling.get(folded.split(".", 1)[0])

    def kind_of(self, node: str) -> str | None:
        """The declared kind of ``node``; None when it is not declared."""
        found = self.nodes.get(node)
        return found.kind if found else None

    def ancestors(self, node: str) -> list[tuple[str, int]]:
        """Every node ``node`` depends on, transitively, nearest first.

        Returns:
            ``(ancestor, depth)`` pairs, depth 1 for a direct dependency; each ancestor once, at its
            shortest depth; ties in the order the edges were declared. ``node`` itself never appears.
        """
        found = self._ancestors.get(node)
        if found is None:
            found = [(n, d) for n, d in self._walk(node, self._up) if n != node]
            self._ancestors[node] = found
        return found

    def dependents(self, node: str) -> set[str]:
        """Every node depending on ``node``, transitively (``node`` itself excluded)."""
        found = self._dependents.get(node)
        if found is None:
            found = {n for n, _ in self._walk(node, self._down)} - {node}
            self._dependents[node] = found
        return found

    def hosts_of(self, service: str) -> set[str]:
        """The nodes ``service`` runs on (its ``runs_on`` edges): a service may run on many hosts."""
        return set(self._runs_on.get(service, ()))

    def services_on(self, host: str) -> set[str]:
        """The nodes that run on ``host`` (``runs_on`` edges ending at it)."""
        return set(self._runs_here.get(host, ()))

    def path(self, a: str, b: str, *, max_depth: int = MAX_DEPTH) -> list[str] | None:
        """A shortest dependency path between ``a`` and ``b``, in either direction.

        Returns:
            The nodes from the dependent to what it depends on (``[a, ..., b]`` when ``a`` depends on
            ``b``, ``[b, ..., a]`` when ``b`` depends on ``a``), ``[a]`` when they are the same node,
            None when neither depends on the other within ``max_depth`` hops.
        """
        if a == b:
            return [a]
        return self._path_up(a, b, max_depth) or self._path_up(b, a, max_depth)

    def upstreams_of(self, host: str | None, service: str | None) -> list[str]:
        """Every node above the event's host (or above the hosts its service runs on), nearest first.

        The grouping's older question, kept so it works unchanged: for a service it starts above the
        service's hosts, as it did when a service ran on one host.
        """
        if host:
            return [n for n, _ in self.ancestors(host)]
        if not service:
            return []
        own = self.hosts_of(service)
        return [n for n, _ in self.ancestors(service) if n not in own]

    def dependents_of(self, device: str) -> set[str]:
        """Every node below ``device``, transitively (the grouping's older name of :meth:`dependents`)."""
        return self.dependents(device)

    def _walk(self, start: str, links: dict[str, list[str]]) -> list[tuple[str, int]]:
        seen = {start}
        order: list[tuple[str, int]] = []
        queue: deque[tuple[str, int]] = deque([(start, 0)])
        while queue:
            node, depth = queue.popleft()
            if depth >= MAX_DEPTH:
                continue
            for nxt in links.get(node, ()):
                if nxt not in seen:
                    seen.add(nxt)
                    order.append((nxt, depth + 1))
                    queue.append((nxt, depth + 1))
        return order

    def _path_up(self, start: str, goal: str, max_depth: int) -> list[str] | None:
        parent: dict[str, str] = {start: start}
        frontier = [start]
        for _ in range(max_depth):
            following: list[str] = []
            for node in frontier:
                for nxt in self._up.get(node, ()):
                    if nxt in parent:
                        continue
                    parent[nxt] = node
                    if nxt == goal:
                        path = [goal]
                        while path[-1] != start:
                            path.append(parent[path[-1]])
                        return path[::-1]
                    following.append(nxt)
            if not following:
                return None
            frontier = following
        return None


def _address(host: str) -> str | None:
    """``host`` as a canonical IP address (``[v6]:port`` and ``v4:port`` forms too); None when it is no address."""
    text = host.strip()
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(text.split("%", 1)[0]))
    except ValueError:
        return None

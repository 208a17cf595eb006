"""The topology document: validation of the JSON an operator sends, in the current shape and the older one.

Current shape (what ``GET /api/v1/topology`` answers)::

    {"nodes": [{"id": "sw-1", "kind": "switch", "criticality": "high"}, {"id": "web-1", "kind": "host"}],
     "edges": [{"from": "web-1", "to": "sw-1", "kind": "connected_to"}],
     "resolutions": {"ProblemEventType": "ResolutionEventType"}}

Older shape, still accepted and converted: ``{"hosts": {host: upstream}, "services": {service: host},
"criticality": {node: level}, "resolutions": {...}}``.

Everything is checked before anything is written, and the first fault is named by its path
(``edges[3].to``): unknown keys at any level, unknown kinds, duplicate ids and edges, edges to
undeclared nodes, and cycles among ``depends_on``/``runs_on`` edges (a ``connected_to`` cycle is
two devices cabled to each other, which the graph walks safely).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidInput
from .graph import CRITICALITIES, EDGE_KINDS, NODE_KINDS, Edge, Graph, Node

#: Keys of the current shape.
KEYS = ("nodes", "edges", "resolutions")
#: Keys a GET answers besides the map: a PUT of what a GET answered ignores them.
READ_ONLY_KEYS = ("version", "updated_at", "updated_by")
#: Keys of the older shape (one upstream per host, one host per service).
LEGACY_KEYS = ("hosts", "services", "criticality", "resolutions")
NODE_KEYS = ("id", "kind", "criticality", "addresses")
EDGE_KEYS = ("from", "to", "kind")
#: Edge kinds whose chains must not loop: a node cannot run on or depend on itself through others.
ACYCLIC_KINDS = ("depends_on", "runs_on")
#: Longest node id (the column's width).
MAX_ID = 255
#: Most addresses one node may declare (a router's interfaces: a few dozen).
MAX_ADDRESSES = 256


@dataclass
class Document:
    """A validated topology: nodes by id (in declared order), edges, problem -> resolution event types."""

    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    resolutions: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "nodes": [node_json(n) for n in self.nodes.values()],
            "edges": [{"from": e.source, "to": e.target, "kind": e.kind} for e in self.edges],
            "resolutions": dict(self.resolutions),
        }

    def graph(self, *, version: int = 0) -> Graph:
        return Graph(self.nodes.values(), self.edges, self.resolutions, version=version)


def node_json(node: Node) -> dict[str, Any]:
    out: dict[str, Any] = {"id": node.id, "kind": node.kind}
    if node.criticality:
        out["criticality"] = node.criticality
    if node.addresses:
        out["addresses"] = list(node.addresses)
    return out


def parse(body: Any) -> Document:
    """Validate a topology in either shape.

    Raises:
        InvalidInput: naming the first offending field (``nodes[2].kind``, ``edges[0].to``, ``body``).
    """
    if not isinstance(body, dict):
        raise InvalidInput("the topology is an object {nodes, edges, resolutions}", field="body")
    legacy = any(k in body for k in LEGACY_KEYS if k != "resolutions")
    allowed = LEGACY_KEYS if legacy and not ({"nodes", "edges"} & body.keys()) else KEYS
    unknown = [k for k in body if k not in allowed and k not in READ_ONLY_KEYS]
    if unknown:
        # a PUT replaces the whole map: a misnamed key must not wipe it silently
        raise InvalidInput(
            f"unknown key {unknown[0]!r}: the topology has {', '.join(KEYS)}"
            f" (or, in the older shape, {', '.join(LEGACY_KEYS)})",
            field=unknown[0],
        )
    doc = from_legacy(body) if allowed is LEGACY_KEYS else Document(resolutions=resolutions(body.get("resolutions")))
    if allowed is KEYS:
        doc.nodes = nodes(body.get("nodes"), "nodes")
        doc.edges = edges(body.get("edges"), "edges", doc.nodes)
    check_acyclic(doc.edges, "edges")
    check_addresses(doc)
    return doc


def nodes(items: Any, path: str, *, into: dict[str, Node] | None = None) -> dict[str, Node]:
    """Validate a list of node objects; ids must be unique within the list."""
    found: dict[str, Node] = {} if into is None else into
    fresh: set[str] = set()
    for i, item in enumerate(as_list(items, path)):
        at = f"{path}[{i}]"
        check_keys(item, at, NODE_KEYS)
        ident = name_at(item.get("id"), f"{at}.id")
        if ident in fresh:
            raise InvalidInput(f"duplicate node id {ident!r}", field=f"{at}.id")
        kind = _choice(item.get("kind"), f"{at}.kind", NODE_KINDS)
        level = item.get("criticality")
        if level is not None:
            _choice(level, f"{at}.criticality", CRITICALITIES)
        fresh.add(ident)
        found[ident] = Node(ident, kind, level, addresses_at(item.get("addresses"), f"{at}.addresses"))
    return found


def addresses_at(value: Any, path: str) -> tuple[str, ...]:
    """A node's addresses: IPv4/IPv6 text, with or without a prefix length (NetBox writes ``10.0.3.1/24``),
    kept canonical and once each."""
    found = dict.fromkeys(address_at(item, f"{path}[{i}]") for i, item in enumerate(as_list(value, path)))
    if len(found) > MAX_ADDRESSES:
        raise InvalidInput(f"at most {MAX_ADDRESSES} addresses per node", field=path)
    return tuple(found)


def address_at(value: Any, path: str) -> str:
    """One address, canonical: ``10.0.3.1``, ``10.0.3.1/24`` (its prefix length dropped), ``2001:db8::1``."""
    try:
        return str(ipaddress.ip_interface(value if isinstance(value, str) else "").ip)
    except ValueError:
        raise InvalidInput(f"{value!r} is not an IP address", field=path) from None


def check_addresses(doc: Document, path: str = "nodes") -> None:
    """Refuse an address two nodes declare: an event from it could not say which of them sent it."""
    owner: dict[str, str] = {}
    for i, node in enumerate(doc.nodes.values()):
        for address in node.addresses:
            other = owner.setdefault(address, node.id)
            if other != node.id:
                raise InvalidInput(f"address {address} is declared by both {other!r} and {node.id!r}",
                                   field=f"{path}[{i}].addresses")  # fmt: skip


def edges(items: Any, path: str, known: dict[str, Node]) -> list[Edge]:
    """Validate a list of edge objects against the declared nodes; no edge twice, none from a node to itself."""
    found: list[Edge] = []
    seen: set[tuple[str, str, str]] = set()
    for i, item in enumerate(as_list(items, path)):
        at = f"{path}[{i}]"
        check_keys(item, at, EDGE_KEYS)
        source = name_at(item.get("from"), f"{at}.from")
        target = name_at(item.get("to"), f"{at}.to")
        kind = _choice(item.get("kind"), f"{at}.kind", EDGE_KINDS)
        for end, name in (("from", source), ("to", target)):
            if name not in known:
                raise InvalidInput(f"{end} names {name!r}, which is not a declared node", field=f"{at}.{end}")
        if source == target:
            raise InvalidInput(f"{source!r} cannot depend on itself", field=f"{at}.to")
        key = (source, target, kind)
        if key in seen:
            raise InvalidInput(f"duplicate edge {source!r} -> {target!r} ({kind})", field=at)
        seen.add(key)
        found.append(Edge(source, target, kind))
    return found


def resolutions(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise InvalidInput(
            "resolutions maps a problem event_type to the event_type that resolves it", field="resolutions"
        )
    return dict(value)


def check_acyclic(all_edges: Iterable[Edge], path: str) -> None:
    """Refuse a cycle among ``depends_on``/``runs_on`` edges, naming the edge that closes it and the loop.

    Iterative depth-first search (white/grey/black), so a chain of any length cannot overflow the stack.
    """
    index: dict[str, list[tuple[str, int]]] = {}
    for i, edge in enumerate(all_edges):
        if edge.kind in ACYCLIC_KINDS:
            index.setdefault(edge.source, []).append((edge.target, i))
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in index:
        if state.get(root):
            continue
        state[root] = 1
        stack: list[tuple[str, Iterable[tuple[str, int]]]] = [(root, iter(index.get(root, ())))]
        trail = [root]
        while stack:
            node, pending = stack[-1]
            for target, i in pending:
                if state.get(target) == 1:
                    loop = [*trail[trail.index(target) :], target]
                    raise InvalidInput(f"cycle of depends_on/runs_on: {' -> '.join(loop)}", field=f"{path}[{i}].to")
                if not state.get(target):
                    state[target] = 1
                    stack.append((target, iter(index.get(target, ()))))
                    trail.append(target)
                    break
            else:
                state[node] = 2
                stack.pop()
                trail.pop()


def from_legacy(body: dict[str, Any]) -> Document:
    """Convert the older shape: a host's upstream becomes a ``connected_to`` edge, a service's host ``runs_on``.

    A node something depends on is of kind ``other`` (a device: the older map did not say which),
    unless a service runs on it; other nodes are ``host``, services ``service``.
    """
    doc = Document(resolutions=resolutions(body.get("resolutions")))
    hosts = _mapping(body.get("hosts"), "hosts")
    services = _mapping(body.get("services"), "services")
    levels = body.get("criticality") or {}
    if not isinstance(levels, dict) or any(not isinstance(k, str) or v not in CRITICALITIES for k, v in levels.items()):
        raise InvalidInput("criticality maps names to low|medium|high|critical", field="criticality")
    upstreams = set(hosts.values())
    kinds: dict[str, str] = {}
    for host, upstream in hosts.items():
        kinds.setdefault(host, "other" if host in upstreams else "host")
        kinds.setdefault(upstream, "other")
    for service, host in services.items():
        kinds[service] = "service"
        kinds[host] = "host"
    for name in levels:
        kinds.setdefault(name, "host")
    doc.nodes = {name: Node(name, kind, levels.get(name)) for name, kind in kinds.items()}
    doc.edges = [Edge(h, u, "connected_to") for h, u in hosts.items() if h != u]
    doc.edges += [Edge(s, h, "runs_on") for s, h in services.items() if s != h]
    return doc


def _mapping(value: Any, path: str) -> dict[str, str]:
    value = value or {}
    if not isinstance(value, dict):
        raise InvalidInput(f"{path} maps names to names", field=path)
    for key, item in value.items():
        if not isinstance(item, str) or not item or len(item) > MAX_ID:
            hint = " (a service on many hosts: use the nodes/edges shape)" if isinstance(item, list) else ""
            raise InvalidInput(f"{path} maps names to names{hint}", field=f"{path}.{key}")
    return value


def as_list(value: Any, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidInput(f"{path} must be a list", field=path)
    return value


def check_keys(item: Any, path: str, keys: tuple[str, ...]) -> None:
    if not isinstance(item, dict):
        raise InvalidInput(f"must be an object with {', '.join(keys)}", field=path)
    unknown = [k for k in item if k not in keys]
    if unknown:
        raise InvalidInput(f"unknown key {unknown[0]!r}: allowed are {', '.join(keys)}", field=f"{path}.{unknown[0]}")


def name_at(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_ID:
        raise InvalidInput(f"must be a non-empty name of at most {MAX_ID} characters", field=path)
    return value


def _choice(value: Any, path: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise InvalidInput(f"{value!r} is not one of {', '.join(allowed)}", field=path)
    return str(value)

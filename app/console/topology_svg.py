"""The topology as a drawn graph: a server-rendered SVG, laid out in layers, with open incidents marked.

Plain logic, no I/O: :func:`render` takes the topology's :class:`~app.topology.graph.Graph` and the
open incidents' hosts, services and severities, and returns an ``<svg>`` element to inline in a page
(no library, nothing fetched by the browser). Each node's box carries its kind (``class="node switch"``,
a second line of text); services are rounded.

Layers, top to bottom: services, then every other node one row below the lowest node that depends
on it (hosts under their services, switches under their hosts, routers under their switches). A huge
topology stays readable: each row shows at most ``max_per_layer`` nodes (those with open incidents
first, worst first) and a "N more" box for the rest; edges to hidden nodes are not drawn.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from html import escape
from typing import Any

from ..topology.graph import Graph

#: Severities from worst to mildest; a node's mark takes the worst of its open incidents.
SEVERITIES = ("critical", "high", "medium", "low", "info")
#: Fill of an incident mark per severity (readable on a light and a dark page).
SEVERITY_COLOUR = {
    "critical": "#d32f2f",
    "high": "#ef6c00",
    "medium": "#f9a825",
    "low": "#1e88e5",
    "info": "#78909c",
}
#: Node box size and the gaps between boxes and rows, in SVG user units (px at 100 %).
NODE_W, NODE_H, GAP_X, ROW_H, MARGIN = 150, 40, 20, 90, 20
#: Names longer than this are cut with an ellipsis in the box; the full name is in its tooltip.
LABEL_CHARS = 18
#: The default cap of nodes drawn per row; a bigger row ends with a "N more" box.
MAX_PER_LAYER = 30
#: Upstream chains deeper than this are drawn in the last row (and a cycle cannot loop the layout).
MAX_DEPTH = 8

#: Presentation attributes (no ``<style>``: the console's Content-Security-Policy allows no inline style);
#: lines and text take the page's text colour, so the drawing reads in a light and a dark theme.
_TEXT = 'font-family="system-ui, sans-serif" font-size="12" fill="currentColor"'
#: The kind under a node's name: smaller and lighter.
_SMALL_TEXT = 'font-family="system-ui, sans-serif" font-size="10" fill="currentColor" fill-opacity="0.65"'
_BOX = 'fill="none" stroke="currentColor" stroke-width="1"'
_EDGE = 'fill="none" stroke="currentColor" stroke-opacity="0.45" stroke-width="1.2"'


@dataclass
class Mark:
    """Open incidents on one node: how many, and the worst severity among them."""

    count: int = 0
    severity: str = "info"

    def add(self, severity: str) -> None:
        self.count += 1
        if _rank(severity) < _rank(self.severity):
            self.severity = severity


@dataclass
class _Node:
    name: str
    kind: str  # a node kind of the topology (app.topology.graph.NODE_KINDS)
    layer: int
    mark: Mark | None = None
    #: Agents whose actions in flight (or leases held) target this node, by name.
    agents: tuple[str, ...] = ()
    x: float = 0.0
    y: float = 0.0


def _rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)


def marks_from_incidents(incidents: Iterable[Mapping[str, Any]]) -> dict[str, Mark]:
    """Count open incidents per host and per service name.

    Parameters:
        incidents: mappings with ``hosts`` and ``services`` (lists of names) and ``severity``.

    Returns:
        node name -> :class:`Mark`; an incident on two hosts marks both.
    """
    marks: dict[str, Mark] = {}
    for incident in incidents:
        names = {*(incident.get("hosts") or ()), *(incident.get("services") or ())}
        for name in names:
            if isinstance(name, str) and name:
                marks.setdefault(name, Mark()).add(str(incident.get("severity") or "info"))
    return marks


def _layers(graph: Graph) -> tuple[dict[str, _Node], list[tuple[str, str]]]:
    """Place every node in a row and list the edges (dependent -> what it depends on)."""
    kinds = {name: graph.kind_of(name) or "other" for name in graph.nodes}
    links = sorted({(e.source, e.target) for e in graph.edges})
    for a, b in links:
        kinds.setdefault(a, "other")
        kinds.setdefault(b, "other")
    # services on row 0, every other node on row 1 or one row below its deepest dependent; relaxed
    # at most MAX_DEPTH times (no recursion: a long chain or a cycle cannot blow the stack or loop)
    depth = {name: 0 if kind == "service" else 1 for name, kind in kinds.items()}
    for _ in range(MAX_DEPTH):
        changed = False
        for a, b in links:
            lower = min(MAX_DEPTH, depth[a] + 1)
            if lower > depth[b]:
                depth[b], changed = lower, True
        if not changed:
            break
    nodes = {name: _Node(name, kinds[name], depth[name]) for name in sorted(kinds)}
    return nodes, links


def _label(text: str) -> str:
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "\u2026"


def render(
    graph: Graph,
    marks: Mapping[str, Mark] | None = None,
    *,
    targeted: Mapping[str, Iterable[str]] | None = None,
    href: Callable[[str, str], str | None] | None = None,
    max_per_layer: int = MAX_PER_LAYER,
) -> str:
    """Draw the topology as an SVG string.

    Parameters:
        graph: the topology (:func:`app.topology.store.load_graph`).
        marks: node name -> open incidents on it (:func:`marks_from_incidents`); services and hosts
            share one namespace, as incidents name them.
        targeted: node name -> the agents acting on it now (an agent's action in flight or lease held): the node
            gets an "A" badge naming them, and is kept by the per-row cap like a node with incidents.
        href: ``(kind, name) -> url or None``: makes a node a link (focusable, so keyboard-reachable).
        max_per_layer: nodes drawn per row at most (at least 1); the rest are counted in a "N more" box.

    Returns:
        One ``<svg>`` element, every name XML-escaped; an empty topology draws a one-line note.
    """
    marks = marks or {}
    targeted = targeted or {}
    max_per_layer = max(1, max_per_layer)
    nodes, edges = _layers(graph)
    for node in nodes.values():
        node.mark = marks.get(node.name)
        node.agents = tuple(sorted(set(targeted.get(node.name, ()))))
    rows: dict[int, list[str]] = {}
    for key, node in nodes.items():
        rows.setdefault(node.layer, []).append(key)
    hidden: dict[int, int] = {}
    for layer, keys in rows.items():
        # nodes with open incidents first, worst and most first, then agents' targets, then by name: the cap
        # hides quiet ones
        keys.sort(key=lambda k: (nodes[k].mark is None, *_mark_order(nodes[k].mark), not nodes[k].agents,
                                 nodes[k].name))  # fmt: skip
        if len(keys) > max_per_layer:
            hidden[layer] = len(keys) - max_per_layer
            del keys[max_per_layer:]
    shown = {k for keys in rows.values() for k in keys}
    edges = [(a, b) for a, b in edges if a in shown and b in shown]
    _order(rows, edges)
    return _draw(rows, nodes, edges, hidden, href)


def _mark_order(mark: Mark | None) -> tuple[int, int]:
    return (0, 0) if mark is None else (_rank(mark.severity), -mark.count)


def _order(rows: dict[int, list[str]], edges: list[tuple[str, str]]) -> None:
    """Order each row by where what it depends on sits, from the deepest row up.

    A node is placed under the first thing it depends on (by name): a forest is drawn without
    crossings between adjacent rows, and a node with several dependencies near one of them; within
    one parent the incident-first order of the cap is kept (the sort is stable).
    """
    parent: dict[str, str] = {}
    for a, b in edges:
        parent.setdefault(a, b)
    pos: dict[str, int] = {}
    for layer in sorted(rows, reverse=True):
        rows[layer].sort(key=lambda k: pos.get(parent.get(k, ""), len(pos)))
        pos.update({k: i for i, k in enumerate(rows[layer])})


def _draw(
    rows: dict[int, list[str]],
    nodes: dict[str, _Node],
    edges: list[tuple[str, str]],
    hidden: dict[int, int],
    href: Callable[[str, str], str | None] | None,
) -> str:
    if not rows:
        return (
            '<svg xmlns="http://www.w3.org/2000/svg" class="oc-topo" role="img" width="420" height="40"'
            ' viewBox="0 0 420 40"><title>Topology</title>'
            f'<text x="10" y="24" {_TEXT}>No topology declared yet (PUT /api/v1/topology).</text></svg>'
        )
    layers = sorted(rows)
    widest = max(len(rows[layer]) + (1 if layer in hidden else 0) for layer in layers)
    width = 2 * MARGIN + 90 + widest * (NODE_W + GAP_X)
    height = 2 * MARGIN + (len(layers) - 1) * ROW_H + NODE_H
    for row, layer in enumerate(layers):
        for col, key in enumerate(rows[layer]):
            nodes[key].x = MARGIN + 90 + col * (NODE_W + GAP_X)
            nodes[key].y = MARGIN + row * ROW_H
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="oc-topo" role="img" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}" aria-label="Topology: {len(nodes)} nodes">',
        "<title>Topology</title>",
    ]
    names = {0: "services", 1: "hosts"}
    for row, layer in enumerate(layers):
        label = names.get(layer, "devices" if layer == 2 else f"devices +{layer - 2}")
        y = MARGIN + row * ROW_H + NODE_H / 2 + 4
        out.append(f'<text class="layer" x="{MARGIN}" y="{y}" {_TEXT} fill-opacity="0.7">{label}</text>')
    for dependent, upstream in edges:
        a, b = nodes[dependent], nodes[upstream]
        x1, y1, x2, y2 = a.x + NODE_W / 2, a.y + NODE_H, b.x + NODE_W / 2, b.y
        if b.y <= a.y:  # a cycle drawn upward: leave from the top instead
            y1, y2 = a.y, b.y + NODE_H
        mid = (y1 + y2) / 2
        out.append(
            f'<path class="edge" {_EDGE} data-from="{escape(a.name)}" data-to="{escape(b.name)}"'
            f' d="M{x1:.0f},{y1:.0f} C{x1:.0f},{mid:.0f} {x2:.0f},{mid:.0f} {x2:.0f},{y2:.0f}"/>'
        )
    for layer in layers:
        for key in rows[layer]:
            out.append(_node(nodes[key], href))
        if layer in hidden:
            last = rows[layer][-1]
            x = nodes[last].x + NODE_W + GAP_X
            y = nodes[last].y
            out.append(
                f'<g class="node more" data-more="{hidden[layer]}"><rect x="{x}" y="{y}" width="{NODE_W}"'
                f' height="{NODE_H}" {_BOX} stroke-dasharray="4 3"/>'
                f'<text x="{x + 10}" y="{y + 25}" {_TEXT}>{hidden[layer]} more</text></g>'
            )
    out.append("</svg>")
    return "".join(out)


def _node(node: _Node, href: Callable[[str, str], str | None] | None) -> str:
    name = escape(node.name)
    mark = node.mark
    tip = name if mark is None else f"{name}: {mark.count} open incident(s), worst {escape(mark.severity)}"
    attrs = f'class="node {node.kind}" data-name="{name}"'
    rounded = ' rx="14"' if node.kind == "service" else ""
    if mark is not None:
        attrs += f' data-incidents="{mark.count}" data-severity="{escape(mark.severity)}"'
    if node.agents:
        agents = escape(", ".join(node.agents))
        attrs += f' data-agents="{agents}"'
        tip += f"; targeted by agent(s) {agents}"
    parts = [
        f"<g {attrs}><title>{tip}</title>",
        # the box is unfilled: pointer-events="all" makes its whole area the link, not only its text and border
        f'<rect x="{node.x}" y="{node.y}" width="{NODE_W}" height="{NODE_H}" {_BOX}{rounded} pointer-events="all"/>',
        f'<text x="{node.x + 10}" y="{node.y + 17}" {_TEXT}>{escape(_label(node.name))}</text>',
        f'<text class="kind" x="{node.x + 10}" y="{node.y + 32}" {_SMALL_TEXT}>'
        f"{escape(node.kind.replace('_', ' '))}</text>",
    ]
    if mark is not None:
        colour = SEVERITY_COLOUR.get(mark.severity, SEVERITY_COLOUR["info"])
        cx, cy = node.x + NODE_W, node.y
        shown = str(mark.count) if mark.count < 100 else "99+"  # the circle holds two digits
        parts.append(
            f'<g class="mark"><circle cx="{cx}" cy="{cy}" r="11" fill="{colour}"/>'
            f'<text x="{cx}" y="{cy + 4}" text-anchor="middle" font-family="system-ui, sans-serif" font-size="11"'
            f' font-weight="600" fill="#fff">{shown}</text></g>'
        )
    if node.agents:
        ax, ay = node.x, node.y + NODE_H
        parts.append(
            f'<g class="agent-target"><rect x="{ax - 9}" y="{ay - 9}" width="18" height="18" rx="4" fill="#5e35b1"/>'
            f'<text x="{ax}" y="{ay + 4}" text-anchor="middle" font-family="system-ui, sans-serif" font-size="11"'
            f' font-weight="600" fill="#fff">A</text></g>'
        )
    parts.append("</g>")
    body = "".join(parts)
    url = href(node.kind, node.name) if href else None
    if url:
        return f'<a href="{escape(url)}">{body}</a>'
    return body

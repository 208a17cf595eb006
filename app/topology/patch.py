"""A PATCH of the topology: add and remove nodes and edges without sending the whole map (plain logic).

``{"add_nodes": [...], "remove_nodes": ["id", ...], "add_edges": [...], "remove_edges": [...]}``,
applied in this order: edges removed, nodes removed, nodes added, edges added. So:

- removing a node that still has edges is refused (400 naming ``remove_nodes[i]`` and one of its
  edges) unless the same PATCH removes those edges: a map never keeps an edge to nothing, and a
  node is never removed with its dependencies as a side effect nobody asked for;
- adding a node that exists changes its kind and criticality (how criticality is re-rated);
- adding an edge that exists changes nothing (a retried PATCH is harmless); removing an edge or a
  node that does not exist is refused (a typo would otherwise pass unnoticed);
- the result is checked as a PUT would be (no cycle among ``depends_on``/``runs_on``).
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidInput
from .graph import Edge, Node
from .spec import EDGE_KEYS, Document, as_list, check_acyclic, check_keys, edges, name_at, nodes

#: Keys of a PATCH body.
PATCH_KEYS = ("add_nodes", "remove_nodes", "add_edges", "remove_edges")


def apply_patch(current: Document, body: Any) -> tuple[Document, dict[str, int]]:
    """The map ``current`` becomes under ``body``, and counts of what changed.

    Raises:
        InvalidInput: naming the offending field (``remove_nodes[0]``, ``add_edges[2].to``...); ``current``
            is never modified.
    """
    if not isinstance(body, dict) or not body:
        raise InvalidInput(f"the body is an object with any of {', '.join(PATCH_KEYS)}", field="body")
    unknown = [k for k in body if k not in PATCH_KEYS]
    if unknown:
        raise InvalidInput(f"unknown key {unknown[0]!r}: a PATCH has {', '.join(PATCH_KEYS)}", field=unknown[0])
    kept = list(current.edges)
    removed_edges = 0
    for i, item in enumerate(as_list(body.get("remove_edges"), "remove_edges")):
        at = f"remove_edges[{i}]"
        check_keys(item, at, EDGE_KEYS)
        source, target = name_at(item.get("from"), f"{at}.from"), name_at(item.get("to"), f"{at}.to")
        kind = item.get("kind")
        matching = [e for e in kept if e.source == source and e.target == target and kind in (None, e.kind)]
        if not matching:
            shown = f" ({kind})" if kind else ""
            raise InvalidInput(f"there is no edge {source!r} -> {target!r}{shown}", field=at)
        kept = [e for e in kept if e not in matching]
        removed_edges += len(matching)
    present = dict(current.nodes)
    gone = _remove_nodes(body.get("remove_nodes"), present, kept)
    added = nodes(body.get("add_nodes"), "add_nodes")
    new_nodes = sum(1 for name in added if name not in present)
    present.update(added)
    have = {(e.source, e.target, e.kind) for e in kept}
    asked = list(enumerate(edges(body.get("add_edges"), "add_edges", present)))
    fresh = [(i, e) for i, e in asked if (e.source, e.target, e.kind) not in have]
    result = Document(nodes=present, edges=kept + [e for _, e in fresh], resolutions=dict(current.resolutions))
    _check_cycles(result, len(kept), [i for i, _ in fresh])
    counts = {"added_nodes": new_nodes, "changed_nodes": len(added) - new_nodes, "removed_nodes": gone,
              "added_edges": len(fresh), "removed_edges": removed_edges}  # fmt: skip
    return result, counts


def _remove_nodes(items: Any, present: dict[str, Node], kept: list[Edge]) -> int:
    names = as_list(items, "remove_nodes")
    touching: dict[str, Edge] = {}
    for edge in kept:
        touching.setdefault(edge.source, edge)
        touching.setdefault(edge.target, edge)
    for i, name in enumerate(names):
        at = f"remove_nodes[{i}]"
        name_at(name, at)
        if name not in present:
            raise InvalidInput(f"there is no node {name!r}", field=at)
        kept_edge = touching.get(name)
        if kept_edge is not None:
            raise InvalidInput(
                f"{name!r} still has edges ({kept_edge.source!r} -> {kept_edge.target!r}, {kept_edge.kind}): remove them in"
                " remove_edges of the same PATCH",
                field=at,
            )
        del present[name]
    return len(names)


def _check_cycles(result: Document, first_added: int, asked_at: list[int]) -> None:
    """Only an added edge can close a cycle: name it as ``add_edges[i]`` when the search stopped on it."""
    try:
        check_acyclic(result.edges, "edges")
    except InvalidInput as cycle:
        index = int((cycle.field or "edges[0]").removeprefix("edges[").split("]")[0])
        where = f"add_edges[{asked_at[index - first_added]}].to" if index >= first_added else "add_edges"
        raise InvalidInput(cycle.message, field=where) from None

"""The topology as CSV: one edge per line, what a spreadsheet or a CMDB export gives (plain logic).

Header ``from,from_kind,to,to_kind,edge_kind`` (any order), optionally with ``from_criticality`` and
``to_criticality``, and ``from_addresses`` and ``to_addresses`` (IP addresses separated by spaces). A node
without edges is a line with ``to``, ``to_kind`` and ``edge_kind`` empty. A node named on several lines
must have one kind (and at most one criticality) on all of them; its addresses are those of all its lines.
Errors name the line and the column: ``line 4: to_kind``. Resolutions are not part of a CSV map:
a CSV import keeps the declared ones.
"""

from __future__ import annotations

import csv
import io

from ..errors import InvalidInput
from .graph import CRITICALITIES, EDGE_KINDS, NODE_KINDS, Edge, Node
from .spec import MAX_ID, Document, address_at, check_acyclic

#: Columns every CSV map has.
COLUMNS = ("from", "from_kind", "to", "to_kind", "edge_kind")
#: Columns it may add.
OPTIONAL = ("from_criticality", "to_criticality", "from_addresses", "to_addresses")
#: Characters a spreadsheet would read as a formula at the start of a cell.
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def parse_csv(text: str) -> Document:
    """Read a CSV map.

    Raises:
        InvalidInput: naming ``header``, or ``line N: column`` of the first fault.
    """
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip().lower() for h in next(reader, [])]
    missing = [c for c in COLUMNS if c not in header]
    unknown = [c for c in header if c not in COLUMNS + OPTIONAL]
    if missing or unknown or len(set(header)) != len(header):
        raise InvalidInput(
            f"the header must name {', '.join(COLUMNS)} (and optionally {', '.join(OPTIONAL)}) once each"
            + (f"; unknown column {unknown[0]!r}" if unknown else ""),
            field="header",
        )
    doc = Document()
    seen: set[tuple[str, str, str]] = set()
    lines: list[int] = []  # the line of each edge
    for number, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            raise InvalidInput(f"has {len(cells)} cells, the header {len(header)}", field=f"line {number}")
        row = {h: c.strip() for h, c in zip(header, cells, strict=True)}
        source = _node(doc, row, "from", number)
        if not (row["to"] or row["to_kind"] or row["edge_kind"]):
            continue
        target = _node(doc, row, "to", number)
        kind = row["edge_kind"]
        if kind not in EDGE_KINDS:
            raise InvalidInput(f"{kind!r} is not one of {', '.join(EDGE_KINDS)}", field=f"line {number}: edge_kind")
        if source == target:
            raise InvalidInput(f"{source!r} cannot depend on itself", field=f"line {number}: to")
        if (source, target, kind) in seen:
            raise InvalidInput(f"duplicate edge {source!r} -> {target!r} ({kind})", field=f"line {number}")
        seen.add((source, target, kind))
        doc.edges.append(Edge(source, target, kind))
        lines.append(number)
    try:
        check_acyclic(doc.edges, "edges")
    except InvalidInput as cycle:
        index = int((cycle.field or "edges[0]").removeprefix("edges[").split("]")[0])
        raise InvalidInput(cycle.message, field=f"line {lines[index]}: to") from None
    return doc


def _node(doc: Document, row: dict[str, str], end: str, number: int) -> str:
    name, kind, level = row[end], row[f"{end}_kind"], row.get(f"{end}_criticality") or None
    if name.startswith("'") and name[1:].startswith(_FORMULA):
        name = name[1:]  # as to_csv wrote it
    if not name or len(name) > MAX_ID:
        raise InvalidInput(f"must be a non-empty name of at most {MAX_ID} characters", field=f"line {number}: {end}")
    if kind not in NODE_KINDS:
        raise InvalidInput(f"{kind!r} is not one of {', '.join(NODE_KINDS)}", field=f"line {number}: {end}_kind")
    if level is not None and level not in CRITICALITIES:
        raise InvalidInput(f"{level!r} is not one of {', '.join(CRITICALITIES)}",
                           field=f"line {number}: {end}_criticality")  # fmt: skip
    known = doc.nodes.get(name)
    if known is not None and known.kind != kind:
        raise InvalidInput(f"{name!r} is a {known.kind} on an earlier line", field=f"line {number}: {end}_kind")
    if known is not None and level and known.criticality and known.criticality != level:
        raise InvalidInput(f"{name!r} is {known.criticality} on an earlier line",
                           field=f"line {number}: {end}_criticality")  # fmt: skip
    column = f"line {number}: {end}_addresses"
    addresses = tuple(dict.fromkeys([*(known.addresses if known else ()),
                                     *(address_at(a, column) for a in row.get(f"{end}_addresses", "").split())]))  # fmt: skip
    doc.nodes[name] = Node(name, kind, level or (known.criticality if known else None), addresses)
    return name


def to_csv(doc: Document) -> str:
    """Write ``doc`` as CSV: one line per edge, then one per node without edges; cells that a spreadsheet
    would run as a formula are prefixed with ``'``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    with_addresses = any(n.addresses for n in doc.nodes.values())  # the columns only when a node has any
    writer.writerow(COLUMNS + (OPTIONAL if with_addresses else OPTIONAL[:2]))
    linked: set[str] = set()

    def write(a: Node, b: Node | None, kind: str) -> None:
        row = [_cell(a.id), a.kind, _cell(b.id) if b else "", b.kind if b else "", kind, a.criticality or "",
               (b.criticality or "") if b else ""]  # fmt: skip
        if with_addresses:
            row += [" ".join(a.addresses), " ".join(b.addresses) if b else ""]
        writer.writerow(row)

    for edge in doc.edges:
        a, b = doc.nodes[edge.source], doc.nodes[edge.target]
        linked.update((a.id, b.id))
        write(a, b, edge.kind)
    for node in doc.nodes.values():
        if node.id not in linked:
            write(node, None, "")
    return out.getvalue()


def _cell(name: str) -> str:
    return "'" + name if name.startswith(_FORMULA) else name

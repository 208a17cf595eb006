"""The topology in the database: versions, the current nodes and edges, and the cached current graph.

Every change (a PUT in any format, a PATCH, an import) validates the whole result first, then, in
one transaction, writes a new :class:`~app.models.TopologyVersion`, brings the current
:class:`~app.models.TopologyNode`/:class:`~app.models.TopologyEdge` rows to it (only the rows that
differ), and appends its audit row: a refused change writes nothing. Writers take turns (an
advisory lock on PostgreSQL; SQLite has one writer), so versions are numbered without gaps.

Readers ask for the current version number (one indexed row) and rebuild the graph or the JSON
answer only when it changed, so a 10,000-node map is parsed once per version per process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import orjson
import peewee

from .. import audit
from ..db import database, in_transaction, is_postgres
from ..errors import Conflict, InvalidInput, NotFound
from ..models import TopologyEdge, TopologyLink, TopologyNode, TopologyVersion
from ..paging import check_page, page
from ..present import iso
from .graph import Edge, Graph, Node
from .patch import apply_patch
from .spec import Document, check_addresses, from_legacy, parse

logger = logging.getLogger(__name__)

#: Advisory lock of topology writers (any constant, the same in every process).
LOCK_KEY = 7_271_013
#: Rows per INSERT/DELETE statement (SQLite allows 999 bound values per statement).
CHUNK = 300

_graph: tuple[float, Graph] | None = None
_answer: tuple[int, bytes] | None = None


def current_version() -> int:
    """The number of the current version; 0 when none was ever written."""
    return TopologyVersion.select(peewee.fn.MAX(TopologyVersion.version)).scalar() or 0


def current_document() -> tuple[Document, TopologyVersion | None]:
    """The current map and its version row (None: no version yet, the older map's rows converted)."""
    row = TopologyVersion.select().order_by(TopologyVersion.version.desc()).first()
    if row is None:
        return legacy_document(), None
    return document_of(row), row


def document_of(row: TopologyVersion) -> Document:
    body = row.document or {}
    nodes = {n["id"]: Node(n["id"], n["kind"], n.get("criticality"), tuple(n.get("addresses") or ()))
             for n in body.get("nodes") or ()}  # fmt: skip
    edges = [Edge(e["from"], e["to"], e["kind"]) for e in body.get("edges") or ()]
    return Document(nodes=nodes, edges=edges, resolutions=dict(body.get("resolutions") or {}))


def legacy_document() -> Document:
    """The older map (``events.topology``) in the current shape: what a deployment had before versions."""
    links = list(TopologyLink.select().order_by(TopologyLink.kind, TopologyLink.node))
    return from_legacy({
        "hosts": {lk.node: lk.upstream for lk in links if lk.kind == "host" and lk.upstream},
        "services": {lk.node: lk.upstream for lk in links if lk.kind == "service" and lk.upstream},
        "criticality": {lk.node: lk.criticality for lk in links if lk.criticality},
        "resolutions": {lk.upstream: lk.node for lk in links if lk.kind == "resolution" and lk.upstream},
    })  # fmt: skip


def answer(doc: Document, row: TopologyVersion | None) -> dict[str, Any]:
    """The JSON of ``GET /api/v1/topology``: the map and which version it is, by whom and when."""
    return {
        "version": row.version if row else 0,
        "updated_at": iso(row.created_at) if row else None,
        "updated_by": row.created_by if row else None,
        **doc.to_json(),
    }


def topology_json(version: int | None = None) -> dict[str, Any]:
    """The current map, or version ``version``.

    Raises:
        NotFound: there is no such version.
    """

    def work() -> dict[str, Any]:
        if version is None:
            return answer(*current_document())
        row = TopologyVersion.get_or_none(TopologyVersion.version == version)
        if row is None:
            raise NotFound(f"no topology version {version}")
        return answer(document_of(row), row)

    return in_transaction(work)


def document_at(version: int | None = None) -> tuple[Document, int]:
    """The current map, or version ``version``, and its number.

    Raises:
        NotFound: there is no such version.
    """

    def work() -> tuple[Document, int]:
        if version is None:
            doc, row = current_document()
            return doc, row.version if row else 0
        row = TopologyVersion.get_or_none(TopologyVersion.version == version)
        if row is None:
            raise NotFound(f"no topology version {version}")
        return document_of(row), row.version

    return in_transaction(work)


def topology_bytes() -> tuple[int, bytes]:
    """The current version's number and its JSON answer, serialized once per version in this process."""
    global _answer
    # PERF: a 10,000-node map is ~1 MB of JSON; re-reading and re-encoding it on every GET would cost
    # ~100 ms, checking the version costs one indexed row.
    version = in_transaction(current_version)
    if _answer is not None and _answer[0] == version and version:
        return _answer
    answer = topology_json()
    version, body = answer["version"], orjson.dumps(answer)
    if version:
        _answer = (version, body)
    return version, body


def _version_json(r: TopologyVersion) -> dict[str, Any]:
    return {"version": r.version, "created_at": iso(r.created_at), "created_by": r.created_by,
            "change": r.change, "summary": r.summary or {}}  # fmt: skip


def versions(*, limit: int, offset: int) -> dict[str, Any]:
    """The versions, newest first: who wrote each, when, how and what changed (without the documents)."""
    check_page(limit, offset)

    def work() -> dict[str, Any]:
        fields = [f for f in TopologyVersion._meta.sorted_fields if f.name != "document"]
        query = TopologyVersion.select(*fields)
        return page(query, key="versions", order=TopologyVersion.version.desc(), limit=limit, offset=offset,
                    show=_version_json)  # fmt: skip

    return in_transaction(work)


def replace_topology(
    body: Any,
    *,
    actor: str,
    source: str = "json",
    expected_version: int | None = None,
    counts: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Replace the whole map with ``body`` (either JSON shape); the answer is :func:`topology_json`'s.

    Parameters:
        body: the map, or a :class:`Document` already converted from CSV or NetBox.
        source: the format it came in (``json``, ``csv``, ``netbox``), kept in the version's summary.
        expected_version: refuse (409) unless this is the current version (``If-Match``).
        counts: what the conversion counted (NetBox's skipped cables...), kept in the version's summary.

    Raises:
        InvalidInput: the map is refused, naming the field; nothing is written.
        Conflict: the current version is not ``expected_version``.
    """
    doc = body if isinstance(body, Document) else parse(body)

    def change(current: Document) -> tuple[Document, dict[str, Any]]:
        if source != "json" and not doc.resolutions:
            # CSV and NetBox describe the network, not event types: keep the declared resolutions
            doc.resolutions = dict(current.resolutions)
        return doc, {"format": source, **(counts or {})}

    change_kind = "replaced" if source == "json" else "imported"
    action = audit.Action.TOPOLOGY_REPLACED if source == "json" else audit.Action.TOPOLOGY_IMPORTED
    return _write(change, actor=actor, change=change_kind, action=action, expected_version=expected_version)


def patch_topology(body: Any, *, actor: str, expected_version: int | None = None) -> dict[str, Any]:
    """Add and remove nodes and edges (:mod:`app.topology.patch`); the answer is :func:`topology_json`'s.

    Raises:
        InvalidInput: the PATCH is refused, naming the field; nothing is written.
        Conflict: the current version is not ``expected_version``.
    """
    return _write(lambda current: apply_patch(current, body), actor=actor, change="patched",
                  action=audit.Action.TOPOLOGY_PATCHED, expected_version=expected_version)  # fmt: skip


def _write(
    make: Callable[[Document], tuple[Document, dict[str, Any]]],
    *,
    actor: str,
    change: str,
    action: audit.Action,
    expected_version: int | None,
) -> dict[str, Any]:
    """Apply ``make`` to the current map and store the result as the next version, in one transaction."""

    def work() -> dict[str, Any]:
        if is_postgres():
            database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        current, row = current_document()
        number = row.version if row else 0
        if expected_version is not None and expected_version != number:
            raise Conflict(f"the topology is at version {number}, not {expected_version}: read it again")
        doc, summary = make(current)
        check_addresses(doc)  # what a PATCH, CSV or NetBox import adds meets what is there
        summary = {**summary, "nodes": len(doc.nodes), "edges": len(doc.edges)}
        written = TopologyVersion.create(version=number + 1, document=doc.to_json(), created_by=actor,
                                         change=change, summary=summary)  # fmt: skip
        _sync(doc)
        audit.record(action, actor=actor, subject="topology", details={"version": number + 1, **summary})
        logger.info("Topology version %r written by %r (%s).", number + 1, actor, change)
        return answer(doc, written)

    return in_transaction(work)


def _sync(doc: Document) -> None:
    """Bring the current nodes' and edges' rows to ``doc``, touching only the rows that differ."""
    # PERF: a PATCH of one edge in a 10,000-node map rewrites one row, not 10,000.
    have_nodes = {name: (kind, level) for name, kind, level in
                  _rows(TopologyNode.select(TopologyNode.name, TopologyNode.kind, TopologyNode.criticality))}  # fmt: skip
    want_nodes = {n.id: (n.kind, n.criticality) for n in doc.nodes.values()}
    stale = [name for name, value in have_nodes.items() if want_nodes.get(name) != value]
    for chunk in _chunks(stale):
        TopologyNode.delete().where(TopologyNode.name.in_(chunk)).execute()
    fresh = [{"name": name, "kind": kind, "criticality": level} for name, (kind, level) in want_nodes.items()
             if have_nodes.get(name) != (kind, level)]  # fmt: skip
    for chunk in _chunks(fresh):
        TopologyNode.insert_many(chunk).execute()
    columns = (TopologyEdge.id, TopologyEdge.source, TopologyEdge.target, TopologyEdge.kind)
    have_edges = {(s, t, k): i for i, s, t, k in _rows(TopologyEdge.select(*columns))}
    want_edges = {(e.source, e.target, e.kind) for e in doc.edges}
    for chunk in _chunks([i for key, i in have_edges.items() if key not in want_edges]):
        TopologyEdge.delete().where(TopologyEdge.id.in_(chunk)).execute()
    added = [{"source": s, "target": t, "kind": k} for s, t, k in want_edges if (s, t, k) not in have_edges]
    for chunk in _chunks(added):
        TopologyEdge.insert_many(chunk).execute()


def _rows(query: peewee.Query) -> list[tuple[Any, ...]]:
    return list(database.execute(query).fetchall())


def _chunks(items: list[Any]) -> list[list[Any]]:
    return [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]


def load_graph(*, max_age_s: float = 10.0) -> Graph:
    """The current map as a :class:`Graph`, rebuilt at most every ``max_age_s`` and only when its version changed.

    Call inside a transaction or with a connection open (the correlator's batch).
    """
    global _graph
    fresh = _fresh_graph(max_age_s)
    if fresh is not None:
        return fresh
    now = time.monotonic()
    version = current_version()
    if _graph is not None and version and _graph[1].version == version:
        graph = _graph[1]
    else:
        try:
            doc, row = current_document()
        except InvalidInput as refused:  # only the older map's rows can hold what validation refuses
            logger.warning("The older topology cannot be read (%s at %r): correlating without it.",
                           refused.message, refused.field)  # fmt: skip
            doc, row = Document(), None
        graph = doc.graph(version=row.version if row else 0)
    _graph = (now, graph)
    return graph


def node_named(host: str, *, max_age_s: float = 10.0) -> str | None:
    """The declared node an event's ``host`` designates by an address or another spelling (see
    :meth:`Graph.node_named`), through this process's cached graph: a query at most every ``max_age_s``."""
    graph = _fresh_graph(max_age_s)  # not `or`: a map with no nodes is an empty (false) Graph
    if graph is None:
        graph = in_transaction(lambda: load_graph(max_age_s=max_age_s))
    return graph.node_named(host)


def _fresh_graph(max_age_s: float) -> Graph | None:
    """This process's cached graph when it is younger than ``max_age_s`` (no database needed), else None."""
    cached = _graph
    return cached[1] if cached is not None and time.monotonic() - cached[0] < max_age_s else None


def forget_cache() -> None:
    """Drop this process's cached graph and answer (tests, and the CLI after a write)."""
    global _graph, _answer
    _graph = _answer = None


def criticality_of(names: list[str]) -> dict[str, str]:
    """The declared criticality of each of ``names`` that has one, read now (not from the cache)."""
    if not TopologyVersion.select().exists():
        return {n: level for n, level in legacy_document().graph().criticality.items() if n in names}
    query = TopologyNode.select(TopologyNode.name, TopologyNode.criticality).where(
        TopologyNode.name.in_(names) & TopologyNode.criticality.is_null(False)
    )
    return {name: level for name, level in _rows(query)}


def adopt_legacy() -> int | None:
    """Migrate the older map into version 1, once (the release calls it; idempotent).

    Returns:
        The version written, or None when versions exist already or there is no older map.
    """
    if TopologyVersion.select().exists() or not TopologyLink.select().exists():
        return None
    try:
        doc = legacy_document()
    except InvalidInput as refused:  # the older map accepted names the current one refuses (empty ones)
        logger.warning("The older topology could not be migrated (%s at %r); it is kept as it was.",
                       refused.message, refused.field)  # fmt: skip
        return None
    TopologyVersion.create(version=1, document=doc.to_json(), created_by="release", change="migrated",
                           summary={"format": "legacy", "nodes": len(doc.nodes), "edges": len(doc.edges)})  # fmt: skip
    _sync(doc)
    audit.record(audit.Action.TOPOLOGY_MIGRATED, actor="release", subject="topology",
                 details={"version": 1, "nodes": len(doc.nodes), "edges": len(doc.edges)})  # fmt: skip
    logger.info("The older topology (%d nodes, %d edges) became version 1.", len(doc.nodes), len(doc.edges))
    return 1

"""The topology in the database, on both: versions with who/when/how, nothing written on a refusal, the
current rows kept in step, the audit, the older map migrated once, and the cached graph following versions."""

from __future__ import annotations

import pytest

from app.correlation import store as correlation_store
from app.decisions.context import criticality_of
from app.errors import Conflict, InvalidInput, NotFound
from app.migrate import migrate
from app.models import AuditLog, TopologyEdge, TopologyLink, TopologyNode, TopologyVersion
from app.topology import store
from app.topology.csvfile import parse_csv

MAP = {
    "nodes": [{"id": "core", "kind": "router", "criticality": "critical"}, {"id": "sw-1", "kind": "switch"},
              {"id": "web-1", "kind": "host"}, {"id": "web-2", "kind": "host"},
              {"id": "shop", "kind": "service", "criticality": "high"}],
    "edges": [{"from": "sw-1", "to": "core", "kind": "connected_to"},
              {"from": "web-1", "to": "sw-1", "kind": "connected_to"},
              {"from": "web-2", "to": "sw-1", "kind": "connected_to"},
              {"from": "shop", "to": "web-1", "kind": "runs_on"}, {"from": "shop", "to": "web-2", "kind": "runs_on"}],
    "resolutions": {"backup_failed": "backup_succeeded"},
}  # fmt: skip


@pytest.fixture(autouse=True)
def fresh_caches():
    store.forget_cache()
    correlation_store._topology = None
    yield
    store.forget_cache()
    correlation_store._topology = None


def rows() -> tuple[set, set]:
    nodes = {(n.name, n.kind, n.criticality) for n in TopologyNode.select()}
    edges = {(e.source, e.target, e.kind) for e in TopologyEdge.select()}
    return nodes, edges


def test_a_put_is_a_new_version_with_who_and_when_and_every_version_stays_readable(any_db):
    # Given a map put by alice, then a smaller one by bob
    first = store.replace_topology(MAP, actor="alice")
    second = store.replace_topology({"nodes": [{"id": "db-1", "kind": "database"}]}, actor="bob")
    # Then each is a version, the current one answered, the earlier one still there
    assert (first["version"], second["version"]) == (1, 2)
    assert store.topology_json()["nodes"] == [{"id": "db-1", "kind": "database"}]
    old = store.topology_json(1)
    assert {k: old[k] for k in ("nodes", "edges", "resolutions")} == MAP and old["updated_by"] == "alice"
    listed = store.versions(limit=10, offset=0)
    assert [(v["version"], v["created_by"], v["change"]) for v in listed["versions"]] == [
        (2, "bob", "replaced"),
        (1, "alice", "replaced"),
    ]
    assert listed["versions"][1]["summary"] == {"format": "json", "nodes": 5, "edges": 5}
    with pytest.raises(NotFound):
        store.topology_json(7)
    # And the current rows are the current version's
    assert rows() == ({("db-1", "database", None)}, set())
    # And each change was audited
    audited = [(a.action, a.actor, a.details["version"]) for a in AuditLog.select().order_by(AuditLog.id)]
    assert audited == [("topology.replaced", "alice", 1), ("topology.replaced", "bob", 2)]


@pytest.mark.parametrize(
    "body",
    [{"dependencies": {"web-1": ["sw-1"]}},
     {**MAP, "edges": [*MAP["edges"], {"from": "web-1", "to": "nowhere", "kind": "depends_on"}]},
     {**MAP, "edges": [*MAP["edges"], {"from": "web-1", "to": "shop", "kind": "depends_on"}]},
     {**MAP, "nodes": [*MAP["nodes"], {"id": "lb", "kind": "f5"}]}],
    ids=["unknown key", "dangling node", "cycle", "bad kind"],
)  # fmt: skip
def test_a_refused_put_replaces_nothing(any_db, body):
    # Given a map in place
    store.replace_topology(MAP, actor="alice")
    before, before_rows, audits = store.topology_json(), rows(), AuditLog.select().count()
    # When a bad one is put
    with pytest.raises(InvalidInput):
        store.replace_topology(body, actor="mallory")
    # Then the map, its rows, its versions and the audit are as they were
    assert store.topology_json() == before and rows() == before_rows
    assert TopologyVersion.select().count() == 1 and AuditLog.select().count() == audits


def test_a_patch_is_a_version_that_rewrites_only_what_changed_and_is_audited(any_db):
    store.replace_topology(MAP, actor="alice")
    untouched = TopologyEdge.get(TopologyEdge.source == "sw-1").id
    # When bob adds web-3 and removes web-2
    answer = store.patch_topology({"add_nodes": [{"id": "web-3", "kind": "host"}],
                                   "add_edges": [{"from": "web-3", "to": "sw-1", "kind": "connected_to"}],
                                   "remove_edges": [{"from": "web-2", "to": "sw-1"}, {"from": "shop", "to": "web-2"}],
                                   "remove_nodes": ["web-2"]}, actor="bob")  # fmt: skip
    # Then it is version 2, the rows follow, the untouched edge's row kept as it was
    assert answer["version"] == 2 and answer["updated_by"] == "bob"
    nodes, edges = rows()
    assert {n for n, _, _ in nodes} == {"core", "sw-1", "web-1", "web-3", "shop"}
    assert ("web-3", "sw-1", "connected_to") in edges and not any("web-2" in e for e in edges)
    assert TopologyEdge.get(TopologyEdge.source == "sw-1").id == untouched
    audit = AuditLog.select().order_by(AuditLog.id.desc()).get()
    assert audit.action == "topology.patched" and audit.details["removed_nodes"] == 1
    assert audit.details["added_edges"] == 1 and audit.details["version"] == 2
    # And a refused patch writes nothing
    with pytest.raises(InvalidInput):
        store.patch_topology({"remove_nodes": ["sw-1"]}, actor="bob")
    assert TopologyVersion.select().count() == 2


def test_a_write_naming_a_version_that_is_not_current_is_a_conflict(any_db):
    store.replace_topology(MAP, actor="alice")
    store.patch_topology({"add_nodes": [{"id": "x", "kind": "other"}]}, actor="bob", expected_version=1)
    with pytest.raises(Conflict):
        store.patch_topology({"add_nodes": [{"id": "y", "kind": "other"}]}, actor="carol", expected_version=1)
    assert store.topology_json()["version"] == 2


def test_a_csv_import_keeps_the_declared_resolutions(any_db):
    store.replace_topology(MAP, actor="alice")
    answer = store.replace_topology(parse_csv("from,from_kind,to,to_kind,edge_kind\na,host,b,switch,connected_to\n"),
                                    actor="bob", source="csv")  # fmt: skip
    assert answer["resolutions"] == MAP["resolutions"] and len(answer["nodes"]) == 2
    assert TopologyVersion.get(TopologyVersion.version == 2).change == "imported"
    assert AuditLog.select().order_by(AuditLog.id.desc()).get().action == "topology.imported"


def test_the_older_map_is_migrated_into_a_first_version_once(any_db):
    # Given a deployment upgraded with its older map (one upstream per host, one host per service)
    TopologyLink.create(kind="host", node="web-1", upstream="sw-1", criticality="high")
    TopologyLink.create(kind="host", node="sw-1", upstream="core")
    TopologyLink.create(kind="service", node="shop", upstream="web-1")
    TopologyLink.create(kind="resolution", node="backup_succeeded", upstream="backup_failed")
    # Before the release, the correlator already reads it
    assert correlation_store.load_topology().ancestors("shop") == [("web-1", 1), ("sw-1", 2), ("core", 3)]
    # When the release migrates, twice
    migrate()
    migrate()
    # Then it is version 1, by the release, with the same map, migrated once and audited once
    assert TopologyVersion.select().count() == 1
    answer = store.topology_json()
    assert answer["version"] == 1 and answer["updated_by"] == "release"
    assert {(e["from"], e["to"], e["kind"]) for e in answer["edges"]} == {
        ("web-1", "sw-1", "connected_to"), ("sw-1", "core", "connected_to"), ("shop", "web-1", "runs_on")}  # fmt: skip
    assert {"id": "web-1", "kind": "host", "criticality": "high"} in answer["nodes"]
    assert answer["resolutions"] == {"backup_failed": "backup_succeeded"}
    assert [a.action for a in AuditLog.select()] == ["topology.migrated"]
    assert ("web-1", "host", "high") in rows()[0]


def test_the_graph_follows_the_current_version(any_db):
    store.replace_topology(MAP, actor="alice")
    graph = store.load_graph()
    assert graph.version == 1 and graph.hosts_of("shop") == {"web-1", "web-2"}
    # the same version gives the same graph object, built once
    assert store.load_graph(max_age_s=0) is graph
    store.patch_topology({"add_nodes": [{"id": "web-9", "kind": "host"}],
                          "add_edges": [{"from": "shop", "to": "web-9", "kind": "runs_on"}]}, actor="bob")  # fmt: skip
    # within max_age the cached graph answers; after it, the new version's
    assert store.load_graph() is graph
    fresh = store.load_graph(max_age_s=0)
    assert fresh.version == 2 and fresh.hosts_of("shop") == {"web-1", "web-2", "web-9"}
    assert correlation_store.load_topology().version == 2


def test_the_decider_reads_criticality_from_the_current_nodes(any_db):
    store.replace_topology(MAP, actor="alice")
    assert criticality_of("web-1", "shop") == "high"
    assert criticality_of("core", None) == "critical"
    store.patch_topology({"add_nodes": [{"id": "shop", "kind": "service", "criticality": "low"}]}, actor="bob")
    assert criticality_of("web-1", "shop") == "low"

"""The topology's Graph: multi-hop walks nearest first, dependents, services on many hosts, paths, cycle safety."""

from __future__ import annotations

from app.topology.graph import Edge, Graph, Node


def estate() -> Graph:
    """checkout runs on web-1 and web-2 and depends on db-1; hosts -> access switch -> core -> router."""
    nodes = [Node("checkout", "service"), Node("web-1", "host"), Node("web-2", "host"), Node("db-1", "database"),
             Node("acc-1", "switch"), Node("acc-2", "switch"), Node("core", "switch", "critical"),
             Node("gw", "router")]  # fmt: skip
    edges = [Edge("checkout", "web-1", "runs_on"), Edge("checkout", "web-2", "runs_on"),
             Edge("checkout", "db-1", "depends_on"), Edge("web-1", "acc-1", "connected_to"),
             Edge("web-2", "acc-1", "connected_to"), Edge("db-1", "acc-2", "connected_to"),
             Edge("acc-1", "core", "connected_to"), Edge("acc-2", "core", "connected_to"),
             Edge("core", "gw", "connected_to")]  # fmt: skip
    return Graph(nodes, edges, {"backup_failed": "backup_succeeded", "disk_full": "disk_ok"}, version=3)


def test_ancestors_are_every_node_depended_on_at_any_depth_nearest_first():
    graph = estate()
    # When the ancestors of a host and of a service are asked for
    host, service = graph.ancestors("web-1"), graph.ancestors("checkout")
    # Then each comes once at its shortest depth, nearer ones first
    assert host == [("acc-1", 1), ("core", 2), ("gw", 3)]
    assert service[:3] == [("web-1", 1), ("web-2", 1), ("db-1", 1)]
    assert dict(service) == {"web-1": 1, "web-2": 1, "db-1": 1, "acc-1": 2, "acc-2": 2, "core": 3, "gw": 4}
    assert [d for _, d in service] == sorted(d for _, d in service)
    assert graph.ancestors("gw") == [] and graph.ancestors("not-declared") == []


def test_dependents_are_every_node_below_transitively():
    graph = estate()
    assert graph.dependents("core") == {"acc-1", "acc-2", "web-1", "web-2", "db-1", "checkout"}
    assert graph.dependents("acc-2") == {"db-1", "checkout"}
    assert graph.dependents("checkout") == set()
    # the grouping's older name answers the same
    assert graph.dependents_of("acc-1") == graph.dependents("acc-1")


def test_a_service_on_many_hosts_and_the_services_on_a_host():
    graph = estate()
    assert graph.hosts_of("checkout") == {"web-1", "web-2"}
    assert graph.services_on("web-2") == {"checkout"} and graph.services_on("acc-1") == set()
    assert graph.kind_of("db-1") == "database" and graph.kind_of("nope") is None
    assert graph.criticality == {"core": "critical"}
    assert graph.resolutions == {"backup_succeeded": {"backup_failed"}, "disk_ok": {"disk_full"}}


def test_a_path_is_found_in_either_direction_and_none_between_unrelated_nodes():
    graph = estate()
    assert graph.path("web-1", "gw") == ["web-1", "acc-1", "core", "gw"]
    assert graph.path("gw", "web-1") == ["web-1", "acc-1", "core", "gw"]
    assert graph.path("checkout", "acc-2") == ["checkout", "db-1", "acc-2"]
    assert graph.path("web-1", "web-2") is None and graph.path("web-1", "db-1") is None
    assert graph.path("core", "core") == ["core"]
    assert graph.path("web-1", "gw", max_depth=2) is None


def test_the_older_upstreams_of_starts_above_a_services_hosts():
    graph = estate()
    assert graph.upstreams_of("web-2", None) == ["acc-1", "core", "gw"]
    assert graph.upstreams_of(None, "checkout") == ["db-1", "acc-1", "acc-2", "core", "gw"]
    assert graph.upstreams_of(None, None) == []


def test_walks_end_on_a_cycle_of_connected_to_edges():
    # Given two core switches cabled to each other, and a ring of three
    nodes = [Node(n, "switch") for n in ("a", "b", "r1", "r2", "r3")] + [Node("h", "host")]
    edges = [
        Edge("a", "b", "connected_to"),
        Edge("b", "a", "connected_to"),
        Edge("h", "a", "connected_to"),
        Edge("r1", "r2", "connected_to"),
        Edge("r2", "r3", "connected_to"),
        Edge("r3", "r1", "connected_to"),
    ]
    graph = Graph(nodes, edges)
    # When walked, Then every walk ends, each node once, the start never among its own answers
    assert graph.ancestors("h") == [("a", 1), ("b", 2)]
    assert graph.ancestors("r1") == [("r2", 1), ("r3", 2)]
    assert graph.dependents("a") == {"b", "h"}
    assert graph.dependents("r2") == {"r1", "r3"}
    assert graph.path("h", "b") == ["h", "a", "b"]


def test_a_chain_deeper_than_the_bound_is_cut_not_followed_forever():
    nodes = [Node(f"n{i}", "other") for i in range(100)]
    graph = Graph(nodes, [Edge(f"n{i}", f"n{i + 1}", "depends_on") for i in range(99)])
    found = graph.ancestors("n0")
    assert found[0] == ("n1", 1) and found[-1][1] == 32 and len(found) == 32

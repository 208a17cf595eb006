"""The topology drawn as SVG: layered, escaped, bounded, with open incidents marked (plain logic, no I/O)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from app.console.topology_svg import Mark, marks_from_incidents, render
from app.topology.graph import Graph
from app.topology.spec import parse as parse_topology

SVG = "{http://www.w3.org/2000/svg}"

TOPOLOGY = {
    "hosts": {"web-1": "switch-a", "web-2": "switch-a", "db-1": "switch-b", "switch-a": "core", "switch-b": "core"},
    "services": {"nginx": "web-1", "postgres": "db-1"},
    "criticality": {"db-1": "critical"},
    "resolutions": {},
}


def graph_of(body: dict) -> Graph:
    return parse_topology(body).graph()


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def nodes(root: ET.Element) -> dict[str, ET.Element]:
    return {g.get("data-name"): g for g in root.iter(f"{SVG}g") if "node" in (g.get("class") or "").split()
            and g.get("data-name") is not None}  # fmt: skip


def node_y(node: ET.Element) -> float:
    return float(node.find(f"{SVG}rect").get("y"))  # type: ignore[union-attr]


def edges(root: ET.Element) -> set[tuple[str, str]]:
    return {(p.get("data-from"), p.get("data-to")) for p in root.iter(f"{SVG}path") if p.get("class") == "edge"}


def test_every_node_and_dependency_is_drawn_in_layers_services_hosts_devices():
    # Given a topology in the older shape: services on hosts behind switches behind a core router
    # When it is drawn
    root = parse(render(graph_of(TOPOLOGY)))

    # Then the SVG parses and holds every node and every dependency as an edge
    drawn = nodes(root)
    assert set(drawn) == {"nginx", "postgres", "web-1", "web-2", "db-1", "switch-a", "switch-b", "core"}
    assert edges(root) == {("nginx", "web-1"), ("postgres", "db-1"), ("web-1", "switch-a"), ("web-2", "switch-a"),
                           ("db-1", "switch-b"), ("switch-a", "core"), ("switch-b", "core")}  # fmt: skip
    # And services sit above hosts, hosts above their switches, switches above the core
    assert node_y(drawn["nginx"]) < node_y(drawn["web-1"]) < node_y(drawn["switch-a"]) < node_y(drawn["core"])
    assert node_y(drawn["web-2"]) == node_y(drawn["db-1"]) == node_y(drawn["web-1"])
    assert drawn["core"].get("class") == "node other" and drawn["nginx"].get("class") == "node service"


def test_open_incidents_mark_their_nodes_with_the_count_and_the_worst_severity_colour():
    # Given two open incidents on web-1 (one critical) and one on the nginx service
    marks = marks_from_incidents([
        {"hosts": ["web-1"], "services": ["nginx"], "severity": "low"},
        {"hosts": ["web-1"], "services": [], "severity": "critical"},
    ])  # fmt: skip

    # When the topology is drawn with them
    drawn = nodes(parse(render(graph_of(TOPOLOGY), marks)))

    # Then web-1 carries a mark of 2 in the critical colour, nginx a mark of 1, quiet nodes none
    web = drawn["web-1"]
    assert (web.get("data-incidents"), web.get("data-severity")) == ("2", "critical")
    mark = web.find(f"{SVG}g[@class='mark']")
    assert mark is not None
    assert mark.find(f"{SVG}circle").get("fill") == "#d32f2f"  # type: ignore[union-attr]
    assert mark.find(f"{SVG}text").text == "2"  # type: ignore[union-attr]
    assert drawn["nginx"].get("data-incidents") == "1"
    assert drawn["web-2"].get("data-incidents") is None and drawn["web-2"].find(f"{SVG}g") is None


def test_hostile_names_are_escaped_and_long_names_are_cut_with_the_full_name_in_the_tooltip():
    # Given node names carrying markup and a very long name
    hostile = '<script>alert("x")</script>&'
    long_name = "a-very-long-host-name-that-does-not-fit.example.com"
    topology = {"hosts": {hostile: "core", long_name: "core"}, "services": {}, "criticality": {}}

    # When drawn (with links)
    svg = render(
        graph_of(topology), {hostile: Mark(1, "high")}, href=lambda kind, name: f"/console/incidents?host={name}&x=1"
    )

    # Then the markup is text, not elements: the SVG parses and holds no script element
    root = parse(svg)
    assert "<script>" not in svg and not list(root.iter(f"{SVG}script")) and not list(root.iter("script"))
    assert hostile in nodes(root)
    # And the long name is cut in its box, whole in its title
    box = nodes(root)[long_name]
    assert box.find(f"{SVG}text").text.endswith("\u2026")  # type: ignore[union-attr]
    assert long_name in box.find(f"{SVG}title").text  # type: ignore[union-attr]
    # And nodes are links (keyboard-focusable)
    assert {a.get("href") for a in root.iter(f"{SVG}a")} >= {f"/console/incidents?host={hostile}&x=1"}


def test_a_huge_topology_is_capped_per_row_with_a_count_of_the_rest_and_incident_nodes_kept():
    # Given 5,000 hosts behind one switch, one of them (late in name order) with a critical incident
    hosts = {f"host-{i:04d}": "switch" for i in range(5000)}
    marks = {"host-4999": Mark(3, "critical")}

    # When drawn with at most 20 nodes a row
    root = parse(render(graph_of({"hosts": hosts, "services": {}}), marks, max_per_layer=20))

    # Then 20 hosts are drawn, a box says how many more, and the incident's host is among those shown
    drawn = nodes(root)
    assert len([n for n in drawn if n.startswith("host-")]) == 20
    assert "host-4999" in drawn
    more = [g for g in root.iter(f"{SVG}g") if g.get("data-more")]
    assert [g.get("data-more") for g in more] == ["4980"]
    assert "4980 more" in "".join(more[0].itertext())
    # And the drawing stays a readable size
    assert float(root.get("width")) < 4000  # type: ignore[arg-type]


def test_a_dependency_cycle_or_a_deep_chain_is_drawn_without_looping():
    # Given a cycle and a chain 500 devices deep
    chain = {f"n{i}": f"n{i + 1}" for i in range(500)}
    topology = {"hosts": {"a": "b", "b": "a", **chain}, "services": {}}

    # When drawn
    root = parse(render(graph_of(topology)))

    # Then it finishes with a bounded number of rows
    rows = {node_y(n) for n in nodes(root).values()}
    assert len(rows) <= 8


def test_an_empty_topology_draws_a_note_saying_how_to_declare_one():
    root = parse(render(Graph()))
    assert "PUT /api/v1/topology" in "".join(root.itertext())


def test_each_node_shows_its_kind_and_a_service_on_two_hosts_has_an_edge_to_each():
    # Given a service on two hosts behind a switch behind a router, in the current shape
    graph = graph_of({
        "nodes": [{"id": "shop", "kind": "service"}, {"id": "web-1", "kind": "host"}, {"id": "web-2", "kind": "host"},
                  {"id": "sw-1", "kind": "switch"}, {"id": "gw", "kind": "router"},
                  {"id": "lb-1", "kind": "load_balancer"}],
        "edges": [{"from": "shop", "to": "web-1", "kind": "runs_on"}, {"from": "shop", "to": "web-2", "kind": "runs_on"},
                  {"from": "web-1", "to": "sw-1", "kind": "connected_to"},
                  {"from": "web-2", "to": "sw-1", "kind": "connected_to"},
                  {"from": "sw-1", "to": "gw", "kind": "connected_to"}, {"from": "shop", "to": "lb-1", "kind": "depends_on"}],
    })  # fmt: skip

    # When it is drawn
    root = parse(render(graph))

    # Then every node carries its kind, as a class and as a line of text
    drawn = nodes(root)
    assert {name: g.get("class") for name, g in drawn.items()} == {
        "shop": "node service", "web-1": "node host", "web-2": "node host", "sw-1": "node switch",
        "gw": "node router", "lb-1": "node load_balancer"}  # fmt: skip
    kinds = {name: g.find(f"{SVG}text[@class='kind']").text for name, g in drawn.items()}  # type: ignore[union-attr]
    assert kinds["lb-1"] == "load balancer" and kinds["sw-1"] == "switch"
    # And the service has an edge to each host, and the rows go service, hosts, switch, router
    assert {("shop", "web-1"), ("shop", "web-2"), ("shop", "lb-1")} <= edges(root)
    assert node_y(drawn["shop"]) < node_y(drawn["web-1"]) == node_y(drawn["web-2"]) < node_y(drawn["sw-1"])
    assert node_y(drawn["sw-1"]) < node_y(drawn["gw"])


def test_nodes_agents_act_on_carry_a_badge_naming_the_agents_and_are_kept_by_the_cap():
    # Given a wide row of hosts, one of which two agents' actions in flight target
    body = {"hosts": {f"h-{k:02d}": "sw" for k in range(30)}, "services": {}, "criticality": {}, "resolutions": {}}
    targeted = {"h-29": ["k8s-prod", "cost"]}

    # When it is drawn with at most 5 nodes per row
    drawn = nodes(parse(render(graph_of(body), {}, targeted=targeted, max_per_layer=5)))

    # Then the targeted host is kept although it sorts last, with an "A" badge and the agents named
    target = drawn["h-29"]
    assert target.get("data-agents") == "cost, k8s-prod"
    badge = target.find(f"{SVG}g[@class='agent-target']")
    assert badge is not None and badge.find(f"{SVG}text").text == "A"  # type: ignore[union-attr]
    assert "targeted by agent(s) cost, k8s-prod" in (target.find(f"{SVG}title").text or "")  # type: ignore[union-attr]
    # ... and hosts no agent targets carry none
    assert drawn["h-00"].get("data-agents") is None and drawn["h-00"].find(f"{SVG}g[@class='agent-target']") is None

"""Topology documents without a database: validation naming the field, the older shape, CSV, NetBox, PATCH."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from app.errors import InvalidInput
from app.topology.csvfile import parse_csv, to_csv
from app.topology.netbox import parse_netbox
from app.topology.patch import apply_patch
from app.topology.spec import parse

NETBOX = Path(__file__).parent.parent / "data" / "netbox_export.json"

MAP = {
    "nodes": [{"id": "sw-1", "kind": "switch", "criticality": "high"}, {"id": "web-1", "kind": "host"},
              {"id": "web-2", "kind": "host"}, {"id": "db-1", "kind": "database"},
              {"id": "checkout", "kind": "service"}],
    "edges": [{"from": "web-1", "to": "sw-1", "kind": "connected_to"},
              {"from": "web-2", "to": "sw-1", "kind": "connected_to"},
              {"from": "checkout", "to": "web-1", "kind": "runs_on"},
              {"from": "checkout", "to": "web-2", "kind": "runs_on"},
              {"from": "web-1", "to": "db-1", "kind": "depends_on"}],
    "resolutions": {"backup_failed": "backup_succeeded"},
}  # fmt: skip


def broken(change) -> dict:
    body = copy.deepcopy(MAP)
    change(body)
    return body


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (broken(lambda b: b.update(dependencies={})), "dependencies"),
        (broken(lambda b: b["nodes"][1].update(colour="red")), "nodes[1].colour"),
        (broken(lambda b: b["edges"][2].update(weight=3)), "edges[2].weight"),
        (broken(lambda b: b["nodes"][2].update(kind="server")), "nodes[2].kind"),
        (broken(lambda b: b["nodes"][0].update(criticality="urgent")), "nodes[0].criticality"),
        (broken(lambda b: b["nodes"].append({"id": "web-1", "kind": "host"})), "nodes[5].id"),
        (broken(lambda b: b["nodes"][3].pop("id")), "nodes[3].id"),
        (broken(lambda b: b["edges"][3].update(to="web-9")), "edges[3].to"),
        (broken(lambda b: b["edges"][0].update({"from": "ghost"})), "edges[0].from"),
        (broken(lambda b: b["edges"][1].update(kind="uses")), "edges[1].kind"),
        (broken(lambda b: b["edges"].append({"from": "db-1", "to": "db-1", "kind": "depends_on"})), "edges[5].to"),
        (broken(lambda b: b["edges"].append(dict(b["edges"][0]))), "edges[5]"),
        (broken(lambda b: b.update(nodes={"sw-1": "switch"})), "nodes"),
        (broken(lambda b: b.update(resolutions={"a": ["b"]})), "resolutions"),
        ([MAP], "body"),
    ],
)
def test_a_bad_topology_is_refused_naming_the_field(body, field):
    with pytest.raises(InvalidInput) as refused:
        parse(body)
    assert refused.value.field == field, refused.value.message


def test_a_cycle_of_depends_on_and_runs_on_is_refused_naming_the_edge_that_closes_it_and_the_loop():
    # Given db-1 made to depend on checkout, which runs on web-1, which depends on db-1
    body = broken(lambda b: b["edges"].append({"from": "db-1", "to": "checkout", "kind": "depends_on"}))
    # When validated, Then the loop is named
    with pytest.raises(InvalidInput) as refused:
        parse(body)
    assert refused.value.field in {"edges[5].to", "edges[2].to", "edges[4].to"}
    assert "cycle" in refused.value.message and "db-1" in refused.value.message and "checkout" in refused.value.message


def test_a_cycle_of_connected_to_edges_is_two_devices_cabled_together_and_accepted():
    body = broken(lambda b: b["edges"].append({"from": "sw-1", "to": "web-1", "kind": "connected_to"}))
    assert len(parse(body).edges) == 6


def test_the_current_shape_round_trips_and_a_get_answer_can_be_put_back():
    doc = parse(MAP)
    assert doc.to_json() == MAP
    assert parse({"version": 4, "updated_at": "2026-01-01T00:00:00Z", "updated_by": "cli", **MAP}).to_json() == MAP


def test_the_older_shape_is_converted_to_nodes_and_edges():
    # Given the older map: web-1 behind sw-1 behind core, shop on web-1, criticality, a resolution
    old = {"hosts": {"web-1": "sw-1", "sw-1": "core"}, "services": {"shop": "web-1"},
           "criticality": {"web-1": "high", "db-9": "low"}, "resolutions": {"backup_failed": "backup_succeeded"}}  # fmt: skip
    # When it is read
    doc = parse(old)
    # Then hosts connect to their upstream devices, the service runs on its host, and nothing is lost
    assert {(e.source, e.target, e.kind) for e in doc.edges} == {
        ("web-1", "sw-1", "connected_to"), ("sw-1", "core", "connected_to"), ("shop", "web-1", "runs_on")}  # fmt: skip
    assert {n.id: (n.kind, n.criticality) for n in doc.nodes.values()} == {
        "web-1": ("host", "high"), "sw-1": ("other", None), "core": ("other", None), "shop": ("service", None),
        "db-9": ("host", "low")}  # fmt: skip
    assert doc.resolutions == {"backup_failed": "backup_succeeded"}
    assert doc.graph().ancestors("shop") == [("web-1", 1), ("sw-1", 2), ("core", 3)]


@pytest.mark.parametrize(
    ("body", "field"),
    [({"services": {"shop": ["web-1", "web-2"]}}, "services.shop"), ({"hosts": {"a": "b"}, "nodes": []}, "hosts"),
     ({"criticality": {"a": "urgent"}}, "criticality")],
)  # fmt: skip
def test_the_older_shape_names_its_faults_and_points_a_service_on_many_hosts_to_edges(body, field):
    with pytest.raises(InvalidInput) as refused:
        parse(body)
    assert refused.value.field == field
    if field == "services.shop":
        assert "nodes/edges" in refused.value.message


def test_csv_round_trips_every_node_edge_and_criticality():
    # Given a map with an isolated node and a name a spreadsheet would run as a formula
    body = broken(lambda b: b["nodes"].extend([{"id": "spare-9", "kind": "host", "criticality": "low"},
                                                {"id": "=cmd", "kind": "other"}]))  # fmt: skip
    body["edges"].append({"from": "=cmd", "to": "sw-1", "kind": "connected_to"})
    doc = parse(body)
    # When written as CSV and read back
    text = to_csv(doc)
    again = parse_csv(text)
    # Then one line per edge (plus the isolated node), the formula defused, and the same map
    assert text.splitlines()[0] == "from,from_kind,to,to_kind,edge_kind,from_criticality,to_criticality"
    assert len(text.splitlines()) == 1 + len(body["edges"]) + 1
    assert "\r\n'=cmd,other,sw-1,switch,connected_to" in text
    assert {n.id: n for n in again.nodes.values()} == doc.nodes
    assert again.edges == doc.edges


def test_csv_with_the_five_required_columns_in_any_order_is_read():
    text = "edge_kind,to,to_kind,from,from_kind\nruns_on,web-1,host,shop,service\nconnected_to,sw,switch,web-1,host\n"
    doc = parse_csv(text)
    assert doc.graph().ancestors("shop") == [("web-1", 1), ("sw", 2)]


@pytest.mark.parametrize(
    ("text", "field"),
    [("from,to\na,b\n", "header"),
     ("from,from_kind,to,to_kind,edge_kind,colour\n", "header"),
     ("from,from_kind,to,to_kind,edge_kind\na,host,b,switch,connected_to\nc,host,b,router,connected_to\n",
      "line 3: to_kind"),
     ("from,from_kind,to,to_kind,edge_kind\na,host,b,switch,wired\n", "line 2: edge_kind"),
     ("from,from_kind,to,to_kind,edge_kind\na,server,b,switch,connected_to\n", "line 2: from_kind"),
     ("from,from_kind,to,to_kind,edge_kind\na,host,b,switch\n", "line 2"),
     ("from,from_kind,to,to_kind,edge_kind\na,service,b,service,depends_on\nb,service,a,service,depends_on\n",
      "line 3: to")],
)  # fmt: skip
def test_a_bad_csv_is_refused_naming_the_line_and_column(text, field):
    with pytest.raises(InvalidInput) as refused:
        parse_csv(text)
    assert refused.value.field == field, refused.value.message


def test_a_netbox_export_becomes_devices_with_kinds_and_cables_oriented_towards_the_network():
    # Given NetBox's answers for devices, interfaces and cables (a hand-written export of a small site)
    export = json.loads(NETBOX.read_text())
    # When it is converted
    doc, counts = parse_netbox(export)
    # Then each device is a node whose kind comes from its role, criticality from its custom field
    kinds = {n.id: n.kind for n in doc.nodes.values()}
    assert kinds == {"web-01": "host", "web-02": "host", "db-01": "database", "acc-sw-01": "switch",
                     "core-sw-01": "switch", "fw-01": "firewall", "edge-rtr-01": "router", "pp-a1": "other"}  # fmt: skip
    assert doc.nodes["edge-rtr-01"].criticality == "critical" and doc.nodes["web-01"].criticality is None
    # And each connected interface-to-interface cable is an edge from the lower tier to the higher,
    # whichever end NetBox calls A (a device named only by its interface's id is found through interfaces)
    assert {(e.source, e.target) for e in doc.edges} == {
        ("web-01", "acc-sw-01"), ("web-02", "acc-sw-01"), ("db-01", "acc-sw-01"), ("acc-sw-01", "core-sw-01"),
        ("core-sw-01", "fw-01"), ("fw-01", "edge-rtr-01")}  # fmt: skip
    assert {e.kind for e in doc.edges} == {"connected_to"}
    # And the planned cable and the patch panel's front port are skipped and counted
    assert counts == {"devices": 8, "cables": 6, "skipped_cables": 2}
    assert doc.graph().ancestors("web-01") == [("acc-sw-01", 1), ("core-sw-01", 2), ("fw-01", 3), ("edge-rtr-01", 4)]


def test_a_netbox_cable_to_a_device_not_exported_is_refused_naming_the_cable():
    export = json.loads(NETBOX.read_text())
    export["devices"]["results"] = [d for d in export["devices"]["results"] if d["name"] != "fw-01"]
    with pytest.raises(InvalidInput) as refused:
        parse_netbox(export)
    assert refused.value.field == "cables[4].b_terminations[0]"
    with pytest.raises(InvalidInput) as unknown:
        parse_netbox({**export, "sites": []})
    assert unknown.value.field == "body.sites"


def test_a_patch_adds_and_removes_nodes_and_edges():
    current = parse(MAP)
    # When a host is added behind the switch, and web-2 removed with its edges
    result, counts = apply_patch(current, {
        "add_nodes": [{"id": "web-3", "kind": "host"}, {"id": "sw-1", "kind": "switch", "criticality": "critical"}],
        "add_edges": [{"from": "web-3", "to": "sw-1", "kind": "connected_to"},
                      {"from": "checkout", "to": "web-3", "kind": "runs_on"},
                      {"from": "web-1", "to": "sw-1", "kind": "connected_to"}],
        "remove_edges": [{"from": "web-2", "to": "sw-1"}, {"from": "checkout", "to": "web-2", "kind": "runs_on"}],
        "remove_nodes": ["web-2"],
    })  # fmt: skip
    # Then the map has them, the existing edge is not doubled, sw-1 is re-rated, and the counts say so
    graph = result.graph()
    assert graph.hosts_of("checkout") == {"web-1", "web-3"} and "web-2" not in result.nodes
    assert graph.criticality["sw-1"] == "critical"
    assert len(result.edges) == len(current.edges) - 2 + 2
    assert counts == {"added_nodes": 1, "changed_nodes": 1, "removed_nodes": 1, "added_edges": 2, "removed_edges": 2}
    # And the map it was applied to is unchanged
    assert current.to_json() == MAP


@pytest.mark.parametrize(
    ("body", "field"),
    [({"remove_nodes": ["web-2"]}, "remove_nodes[0]"),
     ({"remove_nodes": ["nobody"]}, "remove_nodes[0]"),
     ({"remove_edges": [{"from": "web-1", "to": "db-1", "kind": "runs_on"}]}, "remove_edges[0]"),
     ({"add_edges": [{"from": "web-1", "to": "ghost", "kind": "depends_on"}]}, "add_edges[0].to"),
     ({"add_edges": [{"from": "sw-1", "to": "web-1", "kind": "connected_to"},
                     {"from": "db-1", "to": "checkout", "kind": "depends_on"}]}, "add_edges[1].to"),
     ({"add_nodes": [{"id": "x", "kind": "mainframe"}]}, "add_nodes[0].kind"),
     ({"replace": []}, "replace"),
     ({}, "body")],
)  # fmt: skip
def test_a_bad_patch_is_refused_naming_the_field(body, field):
    with pytest.raises(InvalidInput) as refused:
        apply_patch(parse(MAP), body)
    assert refused.value.field == field, refused.value.message
    if body == {"remove_nodes": ["web-2"]}:
        assert "remove_edges" in refused.value.message

"""The topology over a real gunicorn: each format round-trips (JSON, CSV, NetBox), PATCH, versions,
a bad body refused naming the field with the map unchanged, and a stale If-Match refused."""

from __future__ import annotations

import json
from pathlib import Path

from tests.http import request

NETBOX = Path(__file__).parent.parent / "data" / "netbox_export.json"

MAP = {
    "nodes": [{"id": "core-1", "kind": "router", "criticality": "critical"}, {"id": "sw-1", "kind": "switch"},
              {"id": "web-1", "kind": "host"}, {"id": "web-2", "kind": "host"}, {"id": "pay", "kind": "service"}],
    "edges": [{"from": "sw-1", "to": "core-1", "kind": "connected_to"},
              {"from": "web-1", "to": "sw-1", "kind": "connected_to"},
              {"from": "web-2", "to": "sw-1", "kind": "connected_to"},
              {"from": "pay", "to": "web-1", "kind": "runs_on"}, {"from": "pay", "to": "web-2", "kind": "runs_on"}],
    "resolutions": {"payment_failed": "payment_ok"},
}  # fmt: skip


def the_map(answer: dict) -> dict:
    """The map of an answer, nodes in name order (a CSV lists them in the order its lines name them)."""
    return {"nodes": sorted(answer["nodes"], key=lambda n: n["id"]), "edges": answer["edges"],
            "resolutions": answer["resolutions"]}  # fmt: skip


def test_json_and_csv_round_trip_and_every_version_is_kept(stack):
    url = f"{stack.base}/api/v1/topology"
    # Given a map put as JSON
    put = request("PUT", url, key=stack.admin, json=MAP)
    assert put.status == 200, put.body
    version = put.json()["version"]
    assert put.headers["ETag"] == f'"{version}"'
    # When it is read back as JSON and as CSV, and the CSV is put back as text/csv
    shown = request("GET", url, key=stack.viewer)
    assert the_map(shown.json()) == the_map(MAP) and shown.headers["ETag"] == f'"{version}"'
    csv = request("GET", f"{url}?format=csv", key=stack.viewer)
    assert csv.status == 200 and csv.headers["Content-Type"].startswith("text/csv")
    assert csv.body.decode().startswith("from,from_kind,to,to_kind,edge_kind")
    again = request("PUT", url, key=stack.admin, data=csv.body, headers={"Content-Type": "text/csv"})
    # Then the CSV holds the same map (resolutions kept), as a new version
    assert again.status == 200, again.body
    assert the_map(again.json()) == the_map(MAP) and again.json()["version"] == version + 1
    # And the versions say who did what, and the earlier one is readable
    listed = request("GET", f"{url}/versions?limit=2", key=stack.viewer).json()
    assert [(v["version"], v["change"], v["summary"]["format"]) for v in listed["versions"]] == [
        (version + 1, "imported", "csv"), (version, "replaced", "json")]  # fmt: skip
    assert the_map(request("GET", f"{url}?version={version}", key=stack.viewer).json()) == the_map(MAP)
    assert request("GET", f"{url}?version=99999", key=stack.viewer).status == 404


def test_a_bad_body_is_refused_naming_the_field_and_the_map_is_unchanged(stack):
    url = f"{stack.base}/api/v1/topology"
    assert request("PUT", url, key=stack.admin, json=MAP).status == 200
    before = request("GET", url, key=stack.viewer).body
    dangling = {**MAP, "edges": [*MAP["edges"], {"from": "web-1", "to": "db-9", "kind": "depends_on"}]}
    cycle = {**MAP, "edges": [*MAP["edges"], {"from": "web-1", "to": "pay", "kind": "depends_on"}]}
    for body, field in ((dangling, "edges[5].to"), (cycle, "edges[5].to"), ({"dependencies": {}}, "dependencies"),
                        ({**MAP, "nodes": [{"id": "x", "kind": "mainframe"}]}, "nodes[0].kind")):  # fmt: skip
        reply = request("PUT", url, key=stack.admin, json=body)
        assert reply.status == 400 and reply.json()["field"] == field, reply.body
    bad_csv = request("PUT", url, key=stack.admin, data=b"from,to\na,b\n", headers={"Content-Type": "text/csv"})
    assert bad_csv.status == 400 and bad_csv.json()["field"] == "header"
    assert request("GET", url, key=stack.viewer).body == before


def test_a_patch_adds_and_removes_and_a_stale_if_match_is_a_conflict(stack):
    url = f"{stack.base}/api/v1/topology"
    version = request("PUT", url, key=stack.admin, json=MAP).json()["version"]
    # When web-3 is added behind sw-1 for pay, naming the version it was made against
    patch = {"add_nodes": [{"id": "web-3", "kind": "host"}],
             "add_edges": [{"from": "web-3", "to": "sw-1", "kind": "connected_to"},
                           {"from": "pay", "to": "web-3", "kind": "runs_on"}]}  # fmt: skip
    reply = request("PATCH", url, key=stack.admin, json=patch, headers={"If-Match": f'"{version}"'})
    # Then the map has it, as the next version
    assert reply.status == 200, reply.body
    assert reply.json()["version"] == version + 1
    assert {"from": "pay", "to": "web-3", "kind": "runs_on"} in request("GET", url, key=stack.viewer).json()["edges"]
    # And the same PATCH against the old version is refused, as is removing a node that still has edges
    stale = request("PATCH", url, key=stack.admin, json=patch, headers={"If-Match": f'"{version}"'})
    assert stale.status == 409
    refused = request("PATCH", url, key=stack.admin, json={"remove_nodes": ["sw-1"]})
    assert refused.status == 400 and refused.json()["field"] == "remove_nodes[0]"


def test_a_netbox_export_is_imported_by_post_or_put(stack):
    url = f"{stack.base}/api/v1/topology"
    body = NETBOX.read_bytes()
    # When the export is posted, and put with ?format=netbox
    posted = request("POST", f"{url}/import/netbox", key=stack.admin, data=body,
                     headers={"Content-Type": "application/json"})  # fmt: skip
    put = request(
        "PUT", f"{url}?format=netbox", key=stack.admin, data=body, headers={"Content-Type": "application/json"}
    )
    # Then both give the same map, servers depending on their switch
    assert posted.status == 200 and put.status == 200, (posted.body, put.body)
    assert the_map(posted.json())["nodes"] == the_map(put.json())["nodes"]
    assert {"from": "web-01", "to": "acc-sw-01", "kind": "connected_to"} in put.json()["edges"]
    summary = request("GET", f"{url}/versions?limit=1", key=stack.viewer).json()["versions"][0]["summary"]
    assert summary["format"] == "netbox" and summary["skipped_cables"] == 2
    assert json.loads(body)["cables"]["count"] == 8
    # And a viewer may read but not import
    assert request("POST", f"{url}/import/netbox", key=stack.viewer, data=body,
                   headers={"Content-Type": "application/json"}).status == 403  # fmt: skip

"""Events name a device in the sender's own way: an SNMP trap by the address it came from, syslog by a header
that may be an address, a fully qualified or upper-case name. A node's ``addresses`` (JSON, CSV, NetBox's
primary and interface addresses) and its spellings let the normalizer store the event under the node's id."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import pytest

from app.errors import InvalidInput
from app.events.envelope import make_item
from app.events.store import store_batch
from app.ids import new_id
from app.models import ProcessedEvent
from app.topology import store
from app.topology.csvfile import parse_csv, to_csv
from app.topology.graph import Graph, Node
from app.topology.netbox import parse_netbox
from app.topology.spec import parse

NETBOX = Path(__file__).parent.parent / "data" / "netbox_export.json"

MAP = {
    "nodes": [{"id": "acc-sw-3", "kind": "switch", "addresses": ["10.0.3.1", "2001:DB8::3"]},
              {"id": "core-rtr-1", "kind": "router", "addresses": ["10.0.0.1/30"]},
              {"id": "app-11", "kind": "host"}, {"id": "db-2.corp.example", "kind": "database"}],
    "edges": [{"from": "acc-sw-3", "to": "core-rtr-1", "kind": "connected_to"},
              {"from": "app-11", "to": "acc-sw-3", "kind": "connected_to"}],
}  # fmt: skip


@pytest.fixture(autouse=True)
def fresh_caches():
    store.forget_cache()
    yield
    store.forget_cache()


def test_addresses_are_kept_canonical_and_answered_back():
    doc = parse(MAP)
    assert doc.nodes["acc-sw-3"].addresses == ("10.0.3.1", "2001:db8::3")
    assert doc.nodes["core-rtr-1"].addresses == ("10.0.0.1",)  # NetBox's interface form: the prefix is dropped
    assert parse(doc.to_json()).to_json() == doc.to_json()
    assert "addresses" not in doc.to_json()["nodes"][2]  # a node without any answers as before


@pytest.mark.parametrize(
    ("change", "field"),
    [(lambda b: b["nodes"][0].update(addresses=["10.0.3.300"]), "nodes[0].addresses[0]"),
     (lambda b: b["nodes"][0].update(addresses="10.0.3.1"), "nodes[0].addresses"),
     (lambda b: b["nodes"][0].update(addresses=["sw-3.corp"]), "nodes[0].addresses[0]"),
     (lambda b: b["nodes"][2].update(addresses=["10.0.3.1"]), "nodes[2].addresses")],
    ids=["not an address", "not a list", "a name", "two nodes, one address"],
)  # fmt: skip
def test_a_bad_address_is_refused_naming_it(change, field):
    body = copy.deepcopy(MAP)
    change(body)
    with pytest.raises(InvalidInput) as refused:
        parse(body)
    assert refused.value.field == field, refused.value.message


@pytest.mark.parametrize(
    ("host", "node"),
    [("10.0.3.1", "acc-sw-3"), ("10.0.3.1:161", "acc-sw-3"), ("2001:db8:0::3", "acc-sw-3"),
     ("[2001:db8::3]:9100", "acc-sw-3"), ("10.0.0.1", "core-rtr-1"), ("ACC-SW-3", "acc-sw-3"),
     ("app-11.corp.example", "app-11"), ("DB-2", "db-2.corp.example"), ("db-2.other.example", "db-2.corp.example"),
     ("app-11", None), ("10.0.3.2", None), ("app-12.corp.example", None), ("10", None)],
)  # fmt: skip
def test_a_host_names_a_node_by_an_address_or_another_spelling(host, node):
    assert parse(MAP).graph().node_named(host) == node


def test_a_spelling_two_nodes_share_names_neither():
    graph = Graph([Node("web-1.dc1.example", "host"), Node("web-1.dc2.example", "host")])
    assert graph.node_named("web-1") is None and graph.node_named("WEB-1.DC1.EXAMPLE") == "web-1.dc1.example"


def test_csv_carries_addresses_in_optional_columns_and_a_node_has_those_of_all_its_lines():
    text = ("from,from_kind,to,to_kind,edge_kind,from_addresses,to_addresses\n"
            "app-11,host,acc-sw-3,switch,connected_to,,10.0.3.1\n"
            "acc-sw-3,switch,core-rtr-1,router,connected_to,2001:db8::3,10.0.0.1\n")  # fmt: skip
    doc = parse_csv(text)
    assert doc.nodes["acc-sw-3"].addresses == ("10.0.3.1", "2001:db8::3")
    assert parse_csv(to_csv(doc)).to_json() == doc.to_json()
    with pytest.raises(InvalidInput) as refused:
        parse_csv(text.replace("10.0.0.1", "ten"))
    assert refused.value.field == "line 3: to_addresses"
    assert "from_addresses" not in to_csv(
        parse_csv(text.replace(",,10.0.3.1", ",,").replace("2001:db8::3,10.0.0.1", ","))
    )


def test_a_netbox_export_gives_devices_their_primary_and_interface_addresses_and_leaves_shared_ones_out():
    export = json.loads(NETBOX.read_text())
    devices = {d["name"]: d for d in export["devices"]["results"]}
    devices["acc-sw-01"]["primary_ip4"] = {"id": 71, "family": 4, "address": "10.0.3.1/24"}
    devices["edge-rtr-01"]["primary_ip6"] = {"id": 72, "family": 6, "address": "2001:db8::1/64"}
    devices["edge-rtr-01"]["oob_ip"] = {"id": 73, "family": 4, "address": "192.168.100.7/24"}
    devices["fw-01"]["oob_ip"] = {"id": 74, "family": 4, "address": "192.168.100.7/24"}  # another VRF
    export["ip_addresses"] = {"results": [
        {"id": 80, "address": "10.9.0.4/32", "assigned_object_type": "dcim.interface", "assigned_object_id": 108,
         "assigned_object": {"id": 108, "name": "Te1/0/1", "device": {"id": 4, "name": "acc-sw-01"}}},
        {"id": 81, "address": "10.9.0.5/32", "assigned_object_type": "dcim.interface", "assigned_object_id": 109},
        {"id": 82, "address": "10.9.9.9/32", "assigned_object": None}]}  # fmt: skip
    doc, counts = parse_netbox(export)
    assert doc.nodes["acc-sw-01"].addresses == ("10.0.3.1", "10.9.0.4")
    assert doc.nodes["core-sw-01"].addresses == ("10.9.0.5",)  # found through the interfaces list
    assert doc.nodes["edge-rtr-01"].addresses == ("2001:db8::1",) and doc.nodes["fw-01"].addresses == ()
    assert counts["shared_addresses"] == 1
    devices["web-01"]["primary_ip4"] = {"id": 75, "address": "10.0.3.999/24"}
    with pytest.raises(InvalidInput) as refused:
        parse_netbox(export)
    assert refused.value.field == "devices[0].primary_ip4"


def test_a_put_whose_addresses_clash_replaces_nothing_and_a_patch_cannot_claim_a_taken_address(any_db):
    store.replace_topology(MAP, actor="alice")
    before = store.topology_json()
    with pytest.raises(InvalidInput):
        store.patch_topology({"add_nodes": [{"id": "app-12", "kind": "host", "addresses": ["10.0.0.1"]}]}, actor="bob")
    assert store.topology_json() == before
    store.patch_topology({"add_nodes": [{"id": "app-12", "kind": "host", "addresses": ["10.0.3.12"]}]}, actor="bob")
    assert store.topology_json()["nodes"][-1] == {"id": "app-12", "kind": "host", "addresses": ["10.0.3.12"]}


def item(source_type: str, payload, source: str | None = None) -> dict:
    return make_item(id=new_id(), source_type=source_type, received_at=time.time(), payload=payload, source=source)


def trap(peer: str) -> dict:
    oid = "1.3.6.1.6.3.1.1.5.3"
    payload = {"version": "v2c", "peer": peer, "pdu": "trap", "trap_oid": oid,
               "varbinds": [["1.3.6.1.6.3.1.1.4.1.0", "ObjectIdentifier", oid], ["1.3.6.1.2.1.2.2.1.1.7", "Integer", 7],
                            ["1.3.6.1.2.1.2.2.1.2.7", "OctetString", "Gi1/0/7"]]}  # fmt: skip
    return item("snmp", payload, peer)


def test_the_normalizer_stores_an_event_under_the_node_its_sender_address_or_header_names(any_db):
    # Given a topology naming the switch's management address
    store.replace_topology(MAP, actor="alice")
    store.forget_cache()
    # When the switch's trap comes from that address, a host's syslog header spells its name in full,
    # and a webhook names a host the topology does not know
    syslog = item("syslog", "<27>Dec  7 21:00:00 APP-11.corp.example nginx[1]: upstream timed out", "10.0.7.7")
    webhook = item("webhook", {"source": "x", "severity": "high", "host": "10.0.9.9", "title": "disk full"})
    items = [trap("10.0.3.1"), syslog, webhook]
    ids = store_batch(items, window_s=300).event_ids
    # Then the first two are the topology's nodes, with what the sender said kept, and the third is as sent
    events = {str(e.id): e for e in ProcessedEvent.select().where(ProcessedEvent.id.in_(ids))}
    got = [(events[i["id"]].source_host, (events[i["id"]].event_data or {}).get("host_as_sent")) for i in items]
    assert got == [("acc-sw-3", "10.0.3.1"), ("app-11", "APP-11.corp.example"), ("10.0.9.9", None)]

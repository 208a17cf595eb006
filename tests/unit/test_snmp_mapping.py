"""Traps -> events: the spec's mapping, names for standard OIDs, unknown traps kept numeric; SNMP_V3_USERS."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.errors import InvalidEvent, InvalidInput
from app.snmp.engine import parse_v3_users
from app.snmp.mapping import trap_to_event

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
UPTIME = ["1.3.6.1.2.1.1.3.0", "TimeTicks", 1234]


def v2c(trap_oid: str, *varbinds) -> dict:
    return {"version": "v2c", "peer": "10.0.0.1", "pdu": "trap", "trap_oid": trap_oid,
            "varbinds": [UPTIME, ["1.3.6.1.6.3.1.1.4.1.0", "ObjectIdentifier", trap_oid], *varbinds]}  # fmt: skip


def test_v2c_link_down_is_a_connectivity_issue_with_interface_fields():
    trap = v2c("1.3.6.1.6.3.1.1.5.3", ["1.3.6.1.2.1.2.2.1.1.2", "Integer", 2], ["1.3.6.1.2.1.2.2.1.2.2", "OctetString", "Gi0/2"],
               ["1.3.6.1.2.1.2.2.1.8.2", "Integer", 2])  # fmt: skip
    event = trap_to_event(trap, received_at=NOW)
    assert (event["event_type"], event["severity"], event["host"]) == ("connectivity_issue", "high", "10.0.0.1")
    assert event["metadata"]["trap_name"] == "linkDown"
    assert event["metadata"]["varbinds"]["ifDescr.2"] == "Gi0/2"
    assert event["metadata"]["varbinds"]["ifOperStatus.2"] == "down"
    assert (event["metadata"]["ifIndex"], event["metadata"]["ifDescr"]) == (2, "Gi0/2")
    assert event["title"] == "linkDown on 10.0.0.1 ifIndex 2 (Gi0/2)"


@pytest.mark.parametrize(
    ("oid", "event_type", "severity"),
    [("1.3.6.1.6.3.1.1.5.4", "connectivity_restored", "info"), ("1.3.6.1.6.3.1.1.5.1", "system_restart", "medium"),
     ("1.3.6.1.6.3.1.1.5.2", "system_restart", "low"), ("1.3.6.1.6.3.1.1.5.5", "authentication_failure", "medium")],
)  # fmt: skip
def test_standard_traps_follow_the_spec_mapping(oid, event_type, severity):
    event = trap_to_event(v2c(oid), received_at=NOW)
    assert (event["event_type"], event["severity"]) == (event_type, severity)


def test_a_bgp_session_falling_back_is_a_connectivity_issue_of_its_router_keyed_by_the_neighbor():
    # BGP4-MIB bgpBackwardTransition as net-snmp's snmptrap sends it through a forwarder that keeps the router's own
    # address in snmpTrapAddress.0 (RFC 3584): the trap comes from the forwarder, it is about the router
    trap = v2c("1.3.6.1.2.1.15.7.2", ["1.3.6.1.6.3.18.1.3.0", "IpAddress", "10.2.0.1"],
               ["1.3.6.1.2.1.15.3.1.7.198.51.100.1", "IpAddress", "198.51.100.1"],
               ["1.3.6.1.2.1.15.3.1.2.198.51.100.1", "Integer", 1])  # fmt: skip
    event = trap_to_event(trap, received_at=NOW)
    assert (event["event_type"], event["severity"], event["host"]) == ("connectivity_issue", "high", "10.2.0.1")
    assert (event["metadata"]["trap_name"], event["metadata"]["neighbor"]) == ("bgpBackwardTransition", "198.51.100.1")
    assert event["metadata"]["varbinds"]["bgpPeerState.198.51.100.1"] == "idle"
    assert event["title"] == "bgpBackwardTransition on 10.2.0.1 neighbor 198.51.100.1"
    # RFC 4273's notification coming back is the session restored
    up = trap_to_event(v2c("1.3.6.1.2.1.15.0.1", ["1.3.6.1.2.1.15.3.1.7.198.51.100.1", "IpAddress", "198.51.100.1"]),
                       received_at=NOW)  # fmt: skip
    assert (up["event_type"], up["metadata"]["neighbor"], up["host"]) == (
        "connectivity_restored",
        "198.51.100.1",
        "10.0.0.1",
    )
    # And a UPS on battery is named, not left numeric
    assert trap_to_event(v2c("1.3.6.1.2.1.33.2.1"), received_at=NOW)["metadata"]["trap_name"] == "upsTrapOnBattery"


def test_a_v1_generic_trap_uses_the_agent_address_and_maps_like_v2():
    trap = {"version": "v1", "peer": "10.0.0.9", "pdu": "trapv1", "enterprise": "1.3.6.1.4.1.9", "agent_address": "192.0.2.10",
            "generic_trap": 2, "specific_trap": 0, "uptime": 5, "varbinds": [["1.3.6.1.2.1.2.2.1.1.3", "Integer", 3]]}  # fmt: skip
    event = trap_to_event(trap, received_at=NOW)
    assert (event["event_type"], event["host"], event["metadata"]["trap_oid"]) == (
        "connectivity_issue",
        "192.0.2.10",
        "1.3.6.1.6.3.1.1.5.3",
    )


def test_an_unknown_trap_keeps_its_numeric_oids():
    trap = v2c("1.3.6.1.4.1.99999.0.7", ["1.3.6.1.4.1.99999.1.1.0", "OctetString", "x"])
    event = trap_to_event(trap, received_at=NOW)
    assert (event["event_type"], event["severity"], event["metadata"]["trap_name"]) == ("snmp_trap", "medium", None)
    assert event["metadata"]["varbinds"]["1.3.6.1.4.1.99999.1.1.0"] == "x"
    v1 = {"version": "v1", "peer": "p", "enterprise": "1.3.6.1.4.1.99999", "agent_address": "0.0.0.0", "generic_trap": 6,
          "specific_trap": 7, "varbinds": []}  # fmt: skip
    assert trap_to_event(v1, received_at=NOW)["metadata"]["trap_oid"] == "1.3.6.1.4.1.99999.0.7"


def test_a_trap_without_a_trap_oid_is_invalid():
    with pytest.raises(InvalidEvent):
        trap_to_event({"version": "v2c", "varbinds": [UPTIME]}, received_at=NOW)


def test_v3_users_parse_with_every_protocol_and_an_optional_engine_id():
    users = parse_v3_users(
        "alice:SHA:authpass123:AES:privpass123,bob:MD5:a1234567:DES:p1234567:0x8000000001020304,mon:noAuth::noPriv:"
    )
    assert [(u.name, u.auth, u.priv, u.engine_id) for u in users] == [
        ("alice", "SHA", "AES", None), ("bob", "MD5", "DES", "8000000001020304"), ("mon", "NOAUTH", "NOPRIV", None),
    ]  # fmt: skip


@pytest.mark.parametrize(
    "bad", ["u:SHA1:authpass123:AES:privpass123", "u:SHA:short:AES:privpass123", "u:noAuth::AES:privpass123", "u"]
)
def test_bad_v3_user_entries_are_refused(bad):
    with pytest.raises(InvalidInput):
        parse_v3_users(bad)

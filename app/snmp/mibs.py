"""Names of the standard OIDs that traps carry (SNMPv2-MIB, IF-MIB, RFC 3584, BGP4-MIB, UPS-MIB), compiled to a table.

# PERF: a dict lookup per varbind instead of loading MIB modules; the names are
# those of the MIB files, so nothing is fetched or compiled at run time.
"""

from __future__ import annotations

#: Notification OIDs (SNMPv2-MIB snmpTraps) -> name.
TRAPS = {
    "1.3.6.1.6.3.1.1.5.1": "coldStart",
    "1.3.6.1.6.3.1.1.5.2": "warmStart",
    "1.3.6.1.6.3.1.1.5.3": "linkDown",
    "1.3.6.1.6.3.1.1.5.4": "linkUp",
    "1.3.6.1.6.3.1.1.5.5": "authenticationFailure",
    "1.3.6.1.6.3.1.1.5.6": "egpNeighborLoss",
    # BGP4-MIB: a peer's session established, or fallen back from established (RFC 1657's and RFC 4273's OIDs)
    "1.3.6.1.2.1.15.7.1": "bgpEstablished",
    "1.3.6.1.2.1.15.7.2": "bgpBackwardTransition",
    "1.3.6.1.2.1.15.0.1": "bgpEstablishedNotification",
    "1.3.6.1.2.1.15.0.2": "bgpBackwardTransNotification",
    # UPS-MIB (RFC 1628)
    "1.3.6.1.2.1.33.2.1": "upsTrapOnBattery",
    "1.3.6.1.2.1.33.2.2": "upsTrapTestCompleted",
    "1.3.6.1.2.1.33.2.3": "upsTrapAlarmEntryAdded",
    "1.3.6.1.2.1.33.2.4": "upsTrapAlarmEntryRemoved",
}

#: SNMPv1 generic-trap numbers -> the SNMPv2 notification OID (RFC 3584 §3.1).
V1_GENERIC = {i: f"1.3.6.1.6.3.1.1.5.{i + 1}" for i in range(6)}

#: Object OIDs (without instance) -> name.
OBJECTS = {
    "1.3.6.1.2.1.1.1": "sysDescr",
    "1.3.6.1.2.1.1.2": "sysObjectID",
    "1.3.6.1.2.1.1.3": "sysUpTime",
    "1.3.6.1.2.1.1.4": "sysContact",
    "1.3.6.1.2.1.1.5": "sysName",
    "1.3.6.1.2.1.1.6": "sysLocation",
    "1.3.6.1.6.3.1.1.4.1": "snmpTrapOID",
    "1.3.6.1.6.3.1.1.4.3": "snmpTrapEnterprise",
    "1.3.6.1.6.3.18.1.3": "snmpTrapAddress",
    "1.3.6.1.6.3.18.1.4": "snmpTrapCommunity",
    "1.3.6.1.2.1.2.2.1.1": "ifIndex",
    "1.3.6.1.2.1.2.2.1.2": "ifDescr",
    "1.3.6.1.2.1.2.2.1.3": "ifType",
    "1.3.6.1.2.1.2.2.1.4": "ifMtu",
    "1.3.6.1.2.1.2.2.1.5": "ifSpeed",
    "1.3.6.1.2.1.2.2.1.6": "ifPhysAddress",
    "1.3.6.1.2.1.2.2.1.7": "ifAdminStatus",
    "1.3.6.1.2.1.2.2.1.8": "ifOperStatus",
    "1.3.6.1.2.1.31.1.1.1.1": "ifName",
    "1.3.6.1.2.1.31.1.1.1.18": "ifAlias",
    # BGP4-MIB bgpPeerTable, indexed by the peer's address
    "1.3.6.1.2.1.15.3.1.2": "bgpPeerState",
    "1.3.6.1.2.1.15.3.1.7": "bgpPeerRemoteAddr",
    "1.3.6.1.2.1.15.3.1.14": "bgpPeerLastError",
}

#: Enumerations of IF-MIB objects.
ENUMS = {
    "bgpPeerState": {1: "idle", 2: "connect", 3: "active", 4: "opensent", 5: "openconfirm", 6: "established"},
    "ifAdminStatus": {1: "up", 2: "down", 3: "testing"},
    "ifOperStatus": {
        1: "up",
        2: "down",
        3: "testing",
        4: "unknown",
        5: "dormant",
        6: "notPresent",
        7: "lowerLayerDown",
    },
}


def object_name(oid: str) -> tuple[str | None, str]:
    """(name, instance suffix) of an object OID; (None, oid) when it is not a known object."""
    prefix = oid
    while "." in prefix:
        name = OBJECTS.get(prefix)
        if name is not None:
            return name, oid[len(prefix) + 1 :]
        prefix = prefix.rsplit(".", 1)[0]
    return None, oid


def display_name(oid: str) -> str:
    """``ifIndex.2`` for a known object, the numeric OID otherwise."""
    name, instance = object_name(oid)
    if name is None:
        return oid
    return f"{name}.{instance}" if instance else name

"""A decoded trap (from :class:`app.snmp.engine.TrapEngine`) -> an event of the one schema."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..errors import InvalidEvent
from ..events.schema import TITLE_MAX, make_event
from .mibs import ENUMS, TRAPS, V1_GENERIC, display_name, object_name

#: Trap name -> (event_type, severity), after the service specification.
TRAP_EVENTS = {
    "linkDown": ("connectivity_issue", "high"),
    "linkUp": ("connectivity_restored", "info"),
    "coldStart": ("system_restart", "medium"),
    "warmStart": ("system_restart", "low"),
    "authenticationFailure": ("authentication_failure", "medium"),
    # A BGP session is a link of its router: it goes down and comes up (keyed by the peer, as an interface is)
    "bgpBackwardTransition": ("connectivity_issue", "high"),
    "bgpBackwardTransNotification": ("connectivity_issue", "high"),
    "bgpEstablished": ("connectivity_restored", "info"),
    "bgpEstablishedNotification": ("connectivity_restored", "info"),
    "upsTrapOnBattery": ("power_issue", "high"),
}


def _trap_oid(trap: dict[str, Any]) -> str:
    if trap.get("version") == "v1":
        generic = trap.get("generic_trap")
        if isinstance(generic, int) and not isinstance(generic, bool) and generic in V1_GENERIC and generic != 6:
            return V1_GENERIC[generic]
        enterprise, specific = _text(trap, "enterprise"), trap.get("specific_trap")
        if enterprise is None or not isinstance(specific, int) or isinstance(specific, bool):
            raise InvalidEvent(
                "a v1 enterprise trap has an enterprise OID and a specific-trap number", field="enterprise"
            )
        return f"{enterprise}.0.{specific}"  # RFC 3584 §3.1
    oid = trap.get("trap_oid")
    if not oid:
        raise InvalidEvent("the notification has no snmpTrapOID.0 varbind", field="trap_oid")
    if not isinstance(oid, str):
        raise InvalidEvent("snmpTrapOID.0 is an OBJECT IDENTIFIER", field="trap_oid")
    return oid


def _text(trap: dict[str, Any], key: str) -> str | None:
    """The trap's ``key`` when it is text (a peer, an agent address); ``None`` when it is absent.

    Raises:
      InvalidEvent: the key holds something else (the receiver writes these as strings).
    """
    value = trap.get(key)
    if value is None or isinstance(value, str):
        return value or None
    raise InvalidEvent(f"{key} is a string", field=key)


def _varbinds(trap: dict[str, Any]) -> list[tuple[str, Any]]:
    """(OID, value) of each varbind the receiver wrote as ``[oid, type name, value]``.

    Raises:
      InvalidEvent: the list, or one varbind, is not of that shape (naming ``varbinds[i]``).
    """
    varbinds = trap.get("varbinds")
    if not isinstance(varbinds, list):
        raise InvalidEvent("a trap carries a list of varbinds", field="varbinds")
    decoded = []
    for i, varbind in enumerate(varbinds):
        if not (isinstance(varbind, list | tuple) and len(varbind) == 3 and isinstance(varbind[0], str)):
            raise InvalidEvent("a varbind is [OID, type, value]", field=f"varbinds[{i}]")
        decoded.append((varbind[0], varbind[2]))
    return decoded


def trap_to_event(trap: dict[str, Any], *, received_at: datetime) -> dict[str, Any]:
    """Map a decoded trap to event fields; unknown traps keep their numeric OIDs.

    Raises:
      InvalidEvent: the trap lacks what every trap has (a varbind list, a trap OID), or a part of it
        is not of the shape the receiver writes (naming it: ``varbinds[2]``, ``peer``).
    """
    decoded = _varbinds(trap)
    trap_oid = _trap_oid(trap)
    trap_name = TRAPS.get(trap_oid)
    varbinds: dict[str, Any] = {}
    interface: dict[str, Any] = {}
    #: snmpTrapAddress.0: the agent's address as a proxy or NAT forwarding a v2c/v3 trap keeps it (RFC 3584 §3.1).
    forwarded: str | None = None
    for oid, value in decoded:
        name, instance = object_name(oid)
        if name in ENUMS and isinstance(value, int):
            value = ENUMS[name].get(value, value)
        varbinds[display_name(oid)] = value
        if name and name.startswith("if"):
            interface[name] = value
            if instance:
                interface.setdefault("ifIndex", int(instance) if instance.isdigit() else instance)
        elif name and name.startswith("bgpPeer") and instance:
            interface.setdefault("neighbor", instance)  # the bgpPeerTable's index is the peer's address
        elif name == "snmpTrapAddress" and isinstance(value, str):
            forwarded = value
    peer = _text(trap, "peer")
    host = _text(trap, "agent_address") if trap.get("version") == "v1" else forwarded
    host = host if host and host != "0.0.0.0" else peer
    version = _text(trap, "version")
    event_type, severity = TRAP_EVENTS.get(trap_name or "", ("snmp_trap", "medium"))
    label = trap_name or trap_oid
    title = f"{label} on {host}"
    if "ifIndex" in interface:
        title += f" ifIndex {interface['ifIndex']}"
        if interface.get("ifDescr") or interface.get("ifName"):
            title += f" ({interface.get('ifDescr') or interface.get('ifName')})"
    elif "neighbor" in interface:
        title += f" neighbor {interface['neighbor']}"
    metadata = {
        "version": version,
        "pdu": trap.get("pdu"),
        "trap_oid": trap_oid,
        "trap_name": trap_name,
        "varbinds": varbinds,
        **interface,
    }
    for key in ("user", "enterprise", "generic_trap", "specific_trap", "uptime"):
        if trap.get(key) is not None:
            metadata[key] = trap[key]
    return make_event(
        source_type="snmp",
        source=peer,
        event_type=event_type,
        severity=severity,
        host=host,
        service=None,
        title=title[:TITLE_MAX],  # an ifDescr may be 64 KiB; the varbinds keep it whole
        description=None,
        occurred_at=received_at,
        metadata=metadata,
        tags=["snmp", version or "snmp"],
    )

"""A decoded trap (from :class:`app.snmp.engine.TrapEngine`) -> an event of the one schema."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..errors import InvalidEvent
from ..events.schema import make_event
from .mibs import ENUMS, TRAPS, V1_GENERIC, display_name, object_name

#: Trap name -> (event_type, severity), after the service specification.
TRAP_EVENTS = {
    "linkDown": ("connectivity_issue", "high"),
    "linkUp": ("connectivity_restored", "info"),
    "coldStart": ("system_restart", "medium"),
    "warmStart": ("system_restart", "low"),
    "authenticationFailure": ("authentication_failure", "medium"),
}


def _trap_oid(trap: dict[str, Any]) -> str:
    if trap.get("version") == "v1":
        generic = trap.get("generic_trap")
        if generic in V1_GENERIC and generic != 6:
            return V1_GENERIC[generic]
        return f"{trap.get('enterprise')}.0.{trap.get('specific_trap')}"  # RFC 3584 §3.1
    oid = trap.get("trap_oid")
    if not oid:
        raise InvalidEvent("the notification has no snmpTrapOID.0 varbind", field="trap_oid")
    return str(oid)


def trap_to_event(trap: dict[str, Any], *, received_at: datetime) -> dict[str, Any]:
    """Map a decoded trap to event fields; unknown traps keep their numeric OIDs.

    Raises:
      InvalidEvent: the trap lacks what every trap has (a varbind list, a trap OID).
    """
    if not isinstance(trap.get("varbinds"), list):
        raise InvalidEvent("a trap carries a list of varbinds", field="varbinds")
    trap_oid = _trap_oid(trap)
    trap_name = TRAPS.get(trap_oid)
    varbinds: dict[str, Any] = {}
    interface: dict[str, Any] = {}
    for oid, _kind, value in trap["varbinds"]:
        name, instance = object_name(oid)
        if name in ENUMS and isinstance(value, int):
            value = ENUMS[name].get(value, value)
        varbinds[display_name(oid)] = value
        if name and name.startswith("if"):
            interface[name] = value
            if instance:
                interface.setdefault("ifIndex", int(instance) if instance.isdigit() else instance)
    host = trap.get("agent_address") if trap.get("version") == "v1" else None
    host = host if host and host != "0.0.0.0" else trap.get("peer")
    event_type, severity = TRAP_EVENTS.get(trap_name or "", ("snmp_trap", "medium"))
    label = trap_name or trap_oid
    title = f"{label} on {host}"
    if "ifIndex" in interface:
        title += f" ifIndex {interface['ifIndex']}"
        if interface.get("ifDescr") or interface.get("ifName"):
            title += f" ({interface.get('ifDescr') or interface.get('ifName')})"
    metadata = {
        "version": trap.get("version"),
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
        source=trap.get("peer"),
        event_type=event_type,
        severity=severity,
        host=host,
        service=None,
        title=title,
        description=None,
        occurred_at=received_at,
        metadata=metadata,
        tags=["snmp", trap.get("version") or "snmp"],
    )

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
}
#: What an unknown trap becomes.
UNKNOWN_EVENT = ("snmp_trap", "medium")
#: snmpTrapAddress.0 (RFC 3584): the original agent of a trap forwarded by a proxy.
TRAP_ADDRESS = "1.3.6.1.6.3.18.1.3.0"
#: Keys of the decoded trap copied into the event's metadata when present.
_COPIED = ("peer", "pdu", "user", "engine_id", "security_level", "enterprise", "agent_address", "generic_trap",
           "specific_trap", "uptime")  # fmt: skip
#: Longest description kept, in characters.
DESCRIPTION_MAX = 4000


def _trap_oid(trap: dict[str, Any]) -> str:
    if trap.get("version") == "v1":
        generic = trap.get("generic_trap")
        if generic in V1_GENERIC:
            return V1_GENERIC[generic]
        return f"{trap.get('enterprise')}.0.{trap.get('specific_trap')}"  # RFC 3584 section 3.1
    oid = trap.get("trap_oid")
    if not oid:
        raise InvalidEvent("the notification has no snmpTrapOID.0 varbind", field="trap_oid")
    return str(oid)


def _host(trap: dict[str, Any], varbinds: list[list[Any]]) -> str | None:
    """The agent the trap is about: v1's agent-addr, a proxy's snmpTrapAddress.0, else the sender."""
    address = trap.get("agent_address") if trap.get("version") == "v1" else None
    if not address or address == "0.0.0.0":
        address = next((v[2] for v in varbinds if v[0] == TRAP_ADDRESS), None)
    return str(address) if address and address != "0.0.0.0" else trap.get("peer")


def _read_varbinds(varbinds: list[list[Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(values by display name, the interface fields: ifIndex, ifDescr, ifOperStatus, ...)."""
    named: dict[str, Any] = {}
    interface: dict[str, Any] = {}
    for entry in varbinds:
        if not isinstance(entry, list | tuple) or len(entry) != 3:
            raise InvalidEvent("a varbind is [oid, type, value]", field="varbinds")
        oid, _kind, value = entry
        name, instance = object_name(str(oid))
        if name in ENUMS and isinstance(value, int):
            value = ENUMS[name].get(value, value)
        named[display_name(str(oid))] = value
        if name and name.startswith("if"):
            interface[name] = value
            if instance:
                interface.setdefault("ifIndex", int(instance) if instance.isdigit() else instance)
    return named, interface


def trap_to_event(trap: dict[str, Any], *, received_at: datetime) -> dict[str, Any]:
    """Map a decoded trap to event fields; unknown traps keep their numeric OIDs.

    Parameters:
      trap: What :meth:`app.snmp.engine.TrapEngine.feed` returned.
      received_at: When the receiver got it (the trap's occurred_at).

    Returns:
      The event dict (:func:`app.events.schema.make_event`); ``fingerprint`` is
      left to the normalizer.

    Raises:
      InvalidEvent: the trap lacks what every trap has (a varbind list, a trap OID).
    """
    varbinds = trap.get("varbinds")
    if not isinstance(varbinds, list):
        raise InvalidEvent("a trap carries a list of varbinds", field="varbinds")
    trap_oid = _trap_oid(trap)
    trap_name = TRAPS.get(trap_oid)
    named, interface = _read_varbinds(varbinds)
    host = _host(trap, varbinds)
    event_type, severity = TRAP_EVENTS.get(trap_name or "", UNKNOWN_EVENT)
    label = trap_name or trap_oid
    title = f"{label} on {host}"
    if "ifIndex" in interface:
        title += f" ifIndex {interface['ifIndex']}"
        if interface.get("ifDescr") or interface.get("ifName"):
            title += f" ({interface.get('ifDescr') or interface.get('ifName')})"
    shown = ", ".join(f"{k}={v}" for k, v in named.items() if k.partition(".")[0] not in ("sysUpTime", "snmpTrapOID"))
    description = f"SNMP {trap.get('version')} {trap.get('pdu') or 'trap'} {label} from {trap.get('peer')}"
    description += f": {shown}" if shown else ""
    metadata = {"version": trap.get("version"), "trap_oid": trap_oid, "trap_name": trap_name, "varbinds": named}
    metadata.update((key, trap[key]) for key in _COPIED if trap.get(key) is not None)
    metadata.update(interface)
    return make_event(
        source_type="snmp",
        source=trap.get("peer") or host,
        event_type=event_type,
        severity=severity,
        host=host,
        service=None,
        title=title[:TITLE_MAX],
        description=description[:DESCRIPTION_MAX],
        occurred_at=received_at,
        metadata=metadata,
        tags=["snmp", str(trap.get("version") or "snmp")],
        fingerprint=None,
    )

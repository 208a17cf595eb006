"""Items as the receivers make them for the correlation tests: webhooks and SNMP traps at seconds after :data:`T0`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.events.envelope import make_item
from app.ids import new_id

#: The instant the correlation tests' items are received from (a fixed one: their windows are in seconds after it).
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
LINK_DOWN, LINK_UP = "1.3.6.1.6.3.1.1.5.3", "1.3.6.1.6.3.1.1.5.4"


def at(seconds: float) -> float:
    """The epoch time ``seconds`` after :data:`T0`."""
    return (T0 + timedelta(seconds=seconds)).timestamp()


def webhook(host: str | None, title: str, t: float, severity: str = "high", service: str | None = None) -> dict:
    """A generic webhook's item about ``host``, received ``t`` seconds after :data:`T0`."""
    payload = {
        "source": "x",
        "host": host,
        "title": title,
        "severity": severity,
        **({"service": service} if service else {}),
    }
    return make_item(id=new_id(), source_type="webhook", received_at=at(t), payload=payload)


def trap(device: str, oid: str, t: float, if_index: int = 1) -> dict:
    """An SNMPv2c trap ``oid`` (linkDown, linkUp ...) from ``device`` about interface ``if_index``."""
    payload = {"version": "v2c", "peer": device, "pdu": "trap", "trap_oid": oid,
               "varbinds": [["1.3.6.1.6.3.1.1.4.1.0", "ObjectIdentifier", oid], [f"1.3.6.1.2.1.2.2.1.1.{if_index}", "Integer", if_index]]}  # fmt: skip
    return make_item(id=new_id(), source_type="snmp", received_at=at(t), payload=payload, source=device)

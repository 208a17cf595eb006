"""SNMPv3 messages built with pysnmp/pyasn1 for the trap engine's tests (net-snmp will not send the odd ones)."""

from __future__ import annotations

from typing import Any

from pyasn1.codec.ber import encoder
from pysnmp.proto.api import v2c
from pysnmp.proto.mpmod.rfc3412 import ScopedPDU, SNMPv3Message
from pysnmp.proto.secmod.rfc3414.service import UsmSecurityParameters

#: sysUpTime.0 and snmpTrapOID.0 = coldStart: what every notification starts with.
COLD_START = [
    ((1, 3, 6, 1, 2, 1, 1, 3, 0), v2c.TimeTicks(1)),
    ((1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0), v2c.ObjectIdentifier((1, 3, 6, 1, 6, 3, 1, 1, 5, 1))),
]


def v3_message(pdu: Any, varbinds: list[tuple[tuple[int, ...], Any]], engine_id: bytes, *, user: bytes, flags: bytes,
               msg_id: int, boots: int = 0, engine_time: int = 0, auth_params: bytes = b"") -> bytes:  # fmt: skip
    """``pdu`` (a fresh pysnmp PDU) with ``varbinds`` in a plaintext SNMPv3 message from ``engine_id``, unsigned.

    Parameters:
      flags: ``msgFlags`` (``b"\\x01"`` authNoPriv, ``b"\\x04"`` reportable, ``b"\\x00"`` noAuthNoPriv).
      auth_params: ``msgAuthenticationParameters``: twelve zero bytes for a message to be signed after.
    """
    v2c.apiPDU.set_defaults(pdu)
    v2c.apiPDU.set_varbinds(pdu, varbinds)
    scoped = ScopedPDU()
    scoped["contextEngineId"] = engine_id
    scoped["contextName"] = b""
    scoped["data"].setComponentByType(pdu.tagSet, pdu)
    params = UsmSecurityParameters()
    params["msgAuthoritativeEngineId"] = engine_id
    params["msgAuthoritativeEngineBoots"] = boots
    params["msgAuthoritativeEngineTime"] = engine_time
    params["msgUserName"] = user
    params["msgAuthenticationParameters"] = auth_params
    params["msgPrivacyParameters"] = b""
    msg = SNMPv3Message()
    msg["msgVersion"] = 3
    header = msg["msgGlobalData"]
    header["msgID"] = msg_id
    header["msgMaxSize"] = 65507
    header["msgFlags"] = flags
    header["msgSecurityModel"] = 3
    msg["msgSecurityParameters"] = encoder.encode(params)
    msg["msgData"]["plaintext"] = scoped
    return bytes(encoder.encode(msg))

"""SNMPv3 messages the engine must refuse, built with pysnmp/pyasn1 (net-snmp will not send them)."""

from __future__ import annotations

from pyasn1.codec.ber import encoder
from pysnmp.proto import rfc1905
from pysnmp.proto.api import v2c
from pysnmp.proto.mpmod.rfc3412 import ScopedPDU, SNMPv3Message
from pysnmp.proto.secmod.rfc3414.service import UsmSecurityParameters


def empty_user_inform(engine_id: bytes = b"") -> bytes:
    pdu = rfc1905.InformRequestPDU()
    v2c.apiPDU.set_defaults(pdu)
    v2c.apiPDU.set_varbinds(
        pdu,
        [
            ((1, 3, 6, 1, 2, 1, 1, 3, 0), v2c.TimeTicks(1)),
            ((1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0), v2c.ObjectIdentifier((1, 3, 6, 1, 6, 3, 1, 1, 5, 1))),
        ],
    )
    scoped = ScopedPDU()
    scoped["contextEngineId"] = engine_id
    scoped["contextName"] = b""
    scoped["data"].setComponentByType(pdu.tagSet, pdu)
    params = UsmSecurityParameters()
    params["msgAuthoritativeEngineId"] = engine_id
    params["msgAuthoritativeEngineBoots"] = 0
    params["msgAuthoritativeEngineTime"] = 0
    params["msgUserName"] = b""
    params["msgAuthenticationParameters"] = b""
    params["msgPrivacyParameters"] = b""
    msg = SNMPv3Message()
    msg["msgVersion"] = 3
    header = msg["msgGlobalData"]
    header["msgID"] = 42
    header["msgMaxSize"] = 65507
    header["msgFlags"] = b"\x04"
    header["msgSecurityModel"] = 3
    msg["msgSecurityParameters"] = encoder.encode(params)
    msg["msgData"]["plaintext"] = scoped
    return encoder.encode(msg)


def test_an_inform_with_no_user_is_neither_acknowledged_nor_accepted():
    from app.snmp.engine import TrapEngine

    # Given an engine, and a v3 INFORM with an empty user name (no authentication), to us and to nobody
    sent: list[bytes] = []
    engine = TrapEngine(communities=[], v3_users=[], send=lambda data, addr: sent.append(data))
    # When both arrive
    results = [
        engine.feed(empty_user_inform(), ("127.0.0.1", 9)),
        engine.feed(empty_user_inform(engine.engine_id), ("127.0.0.1", 9)),
    ]
    # Then nothing is accepted, nothing is answered, and both are counted as rejected
    assert results == [None, None]
    assert sent == []
    assert engine.stats["rejected_auth"] == 2 and engine.stats["informs_acked"] == 0

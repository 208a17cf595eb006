"""SNMPv3 messages the engine must refuse, built with pysnmp/pyasn1 (net-snmp will not send them)."""

from __future__ import annotations

from pysnmp.proto import rfc1905

from tests.snmpv3 import COLD_START, v3_message


def empty_user_inform(engine_id: bytes = b"") -> bytes:
    return v3_message(rfc1905.InformRequestPDU(), COLD_START, engine_id, user=b"", flags=b"\x04", msg_id=42)


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

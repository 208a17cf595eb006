"""SNMPv3 engine ids are learned only from messages that authenticated; the rest cost little and keep nothing.

The traps are built here with pysnmp/pyasn1 and signed with pysnmp's own HMAC code, so a
forged one differs from a genuine one only by its key.
"""

from __future__ import annotations

import functools
import json
import os

from pysnmp.entity import config
from pysnmp.proto import rfc1902, rfc1905
from pysnmp.proto.api import v2c

from app.snmp.engine import TrapEngine
from app.snmp.usm import V3User
from tests.snmpv3 import COLD_START, v3_message

ALICE = V3User("alice", "SHA", "authpass123")
NOBODY = V3User("nobody")  # noAuthNoPriv: nothing proves who sent it


def v3_trap(engine_id: bytes, *, user: str = "alice", auth_key: str | None = "authpass123", marker: str = "m") -> bytes:
    """An SNMPv2 trap in an SNMPv3 message from ``engine_id``: authNoPriv signed with ``auth_key`` (SHA), or noAuth."""
    marked = [*COLD_START, ((1, 3, 6, 1, 2, 1, 1, 5, 0), v2c.OctetString(marker))]
    flags, auth_params = (b"\x01", b"\x00" * 12) if auth_key else (b"\x00", b"")
    whole = v3_message(rfc1905.SNMPv2TrapPDU(), marked, engine_id, user=user.encode(), flags=flags, msg_id=7, boots=1,
                       engine_time=100, auth_params=auth_params)  # fmt: skip
    if not auth_key:
        return whole
    sha = config.AUTH_SERVICES[config.USM_AUTH_HMAC96_SHA]
    key = sha.localize_key(master_key(auth_key), rfc1902.OctetString(engine_id))
    return bytes(sha.authenticate_outgoing_message(key, whole))


@functools.cache
def master_key(pass_phrase: str) -> rfc1902.OctetString:
    return config.AUTH_SERVICES[config.USM_AUTH_HMAC96_SHA].hash_passphrase(rfc1902.OctetString(pass_phrase))


def random_engine_id() -> bytes:
    return b"\x80\x00\x1f\x88\x04" + os.urandom(8)


def pysnmp_knows(engine: TrapEngine, engine_id: bytes, user: str) -> bool:
    """Whether pysnmp's USM table has a row for (engine id, user): what the forged traps used to add."""
    (entry,) = engine._engine.get_mib_builder().import_symbols("SNMP-USER-BASED-SM-MIB", "usmUserEntry")
    index = entry.getInstIdFromIndices(rfc1902.OctetString(engine_id), rfc1902.OctetString(user))
    try:
        entry.getNode(entry.name + (2,) + index)
    except Exception:  # noqa: BLE001 - pysnmp's NoSuchInstanceError and friends: no row
        return False
    return True


def test_forged_v3_traps_with_random_engine_ids_store_nothing_and_a_genuine_one_is_learned(tmp_path):
    # Given an engine with a user "alice" (SHA) and a state file for learned engine ids
    state = tmp_path / "engine-ids.json"
    engine = TrapEngine(communities=[], v3_users=[ALICE], send=lambda data, addr: None, state_file=str(state))
    forged_ids = [random_engine_id() for _ in range(300)]
    forged = [v3_trap(e, auth_key="not-the-key") for e in forged_ids]
    # When 300 traps for alice arrive from random engine ids, signed with a wrong key
    results = [engine.feed(datagram, ("192.0.2.9", 162)) for datagram in forged]
    # Then none is accepted, none is written to the state file nor set up in pysnmp, and all are counted
    assert results == [None] * 300
    assert not state.exists()
    assert engine.table.learned == frozenset()
    # ... nor cost a key setup each (12.8 ms each before: 3.8 s for 300): no user row exists for them
    assert not any(pysnmp_knows(engine, e, "alice") for e in forged_ids)
    assert engine.stats["rejected_auth"] == 300 and engine.stats["engine_ids_learned"] == 0
    # When a genuine trap arrives from a new engine id
    genuine = random_engine_id()
    trap = engine.feed(v3_trap(genuine, marker="genuine"), ("192.0.2.10", 162))
    # Then it is accepted, and its engine id is learned and persisted (and only it)
    assert trap is not None and trap["user"] == "alice"
    assert ["1.3.6.1.2.1.1.5.0", "OctetString", "genuine"] in trap["varbinds"]
    assert json.loads(state.read_text()) == [[genuine.hex(), "alice"]]
    assert pysnmp_knows(engine, genuine, "alice")


def test_a_learned_engine_id_survives_a_restart_and_forged_ones_do_not(tmp_path):
    # Given an engine that learned one engine id from a genuine trap, and saw forged ones
    state = tmp_path / "engine-ids.json"
    first = TrapEngine(communities=[], v3_users=[ALICE], send=lambda data, addr: None, state_file=str(state))
    genuine = random_engine_id()
    assert first.feed(v3_trap(genuine), ("192.0.2.10", 162)) is not None
    for _ in range(20):
        first.feed(v3_trap(random_engine_id(), auth_key="wrong-key-1"), ("192.0.2.9", 162))
    # When the receiver restarts
    second = TrapEngine(communities=[], v3_users=[ALICE], send=lambda data, addr: None, state_file=str(state))
    # Then it knows the genuine engine id, and only it
    assert second.table.learned == frozenset({(genuine, "alice")})
    assert pysnmp_knows(second, genuine, "alice")
    assert second.feed(v3_trap(genuine, marker="again"), ("192.0.2.10", 162)) is not None


def test_a_trap_claiming_no_authentication_for_a_user_with_a_key_is_refused_before_pysnmp():
    # Given alice, who has an authentication key
    engine = TrapEngine(communities=[], v3_users=[ALICE], send=lambda data, addr: None)
    engine_id = random_engine_id()
    # When a noAuthNoPriv trap names her from a new engine id
    result = engine.feed(v3_trap(engine_id, auth_key=None), ("192.0.2.9", 162))
    # Then it is refused, and pysnmp never set her up for that engine id
    assert result is None and engine.stats["rejected_auth"] == 1
    assert not pysnmp_knows(engine, engine_id, "alice")


def test_engine_ids_of_a_user_without_authentication_are_bounded_and_rate_limited():
    # Given a noAuth user, at most 8 of its engine ids in memory, and 20 new ones a second (on a still clock:
    # the traps arrive "at once" however slowly this machine feeds them)
    engine = TrapEngine(
        communities=[],
        v3_users=[NOBODY],
        send=lambda data, addr: None,
        max_unauthenticated=8,
        unauthenticated_per_s=20.0,
        clock=lambda: 1000.0,
    )
    ids = [random_engine_id() for _ in range(200)]
    # When 200 traps arrive at once, each from a new engine id
    results = [engine.feed(v3_trap(e, user="nobody", auth_key=None), ("192.0.2.9", 162)) for e in ids]
    # Then the first ones (the burst) are accepted, the rest refused and counted as rate-limited
    accepted = [r for r in results if r is not None]
    assert len(accepted) == 20
    assert engine.stats["rejected_rate"] == 200 - len(accepted)
    # ... pysnmp holds only the 8 most recent, and nothing is learned for good
    admitted = [e for e, r in zip(ids, results, strict=True) if r is not None]
    assert [pysnmp_knows(engine, e, "nobody") for e in admitted[-8:]] == [True] * 8
    assert not any(pysnmp_knows(engine, e, "nobody") for e in admitted[:-8])
    assert engine.table.learned == frozenset()


def test_an_undecodable_datagram_is_logged_short_and_once_per_interval(caplog):
    # Given an engine, and a 20-byte v1 datagram whose PDU is garbage (its error repr is ~46 KB)
    engine = TrapEngine(communities=["public"], v3_users=[], send=lambda data, addr: None)
    garbage = b"\x30\x12\x02\x01\x01\x04\x06public\xa4\x05\x02\x01\x01\x30\x00"
    assert len(garbage) == 20
    # When it arrives 50 times from one peer
    with caplog.at_level("INFO", logger="app.snmp.engine"):
        for _ in range(50):
            assert engine.feed(garbage, ("192.0.2.66", 162)) is None
    # Then every one is counted, but one short line is logged
    lines = [r.getMessage() for r in caplog.records if "undecodable" in r.getMessage()]
    assert engine.stats["decode_errors"] == 50
    assert len(lines) == 1 and len(lines[0]) < 400, [len(line) for line in lines]

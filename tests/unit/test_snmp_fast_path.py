"""The trap engine's fast path (:mod:`app.snmp.fast`) decides every datagram as pysnmp's path does.

Two engines, one with the fast path and one without, are fed the same datagrams: traps net-snmp's
``snmptrap`` encodes (v1, v2c with every common value type, v3 with each authentication and privacy
protocol), pysnmp-encoded ones of every value type, and the same cut or with a byte changed. Their
results and counters must be equal. And a v3 message below its user's security level is refused by both.
"""

from __future__ import annotations

import shutil
import socket
import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.snmp.engine import TrapEngine, parse_v3_users
from tests import services
from tests.unit.test_fuzz_decoders import COMMUNITY, FUZZ, datagrams

ENGINE_ID = "0x8000000001020377"
USERS = ("sha:SHA:authpass123:AES:privpass123,md5:MD5:authpass123:DES:privpass123,"
         "sha512:SHA512:authpass123:AES256:privpass123,sha256:SHA256:authpass123:AES192:privpass123,"
         "sha3des:SHA:authpass123:3DES:privpass123,authonly:SHA:authpass123")  # fmt: skip
#: (user, snmptrap's security options) for each protocol pair.
V3 = [
    ("sha", ["-l", "authPriv", "-a", "SHA", "-A", "authpass123", "-x", "AES", "-X", "privpass123"]),
    ("md5", ["-l", "authPriv", "-a", "MD5", "-A", "authpass123", "-x", "DES", "-X", "privpass123"]),
    ("sha512", ["-l", "authPriv", "-a", "SHA-512", "-A", "authpass123", "-x", "AES-256", "-X", "privpass123"]),
    ("sha256", ["-l", "authPriv", "-a", "SHA-256", "-A", "authpass123", "-x", "AES-192", "-X", "privpass123"]),
    ("authonly", ["-l", "authNoPriv", "-a", "SHA", "-A", "authpass123"]),
]
#: Varbinds of every type snmptrap writes: integer, string, hex string, OID, IP address, counter, gauge, timeticks.
VARBINDS = ["1.3.6.1.2.1.2.2.1.1.7", "i", "-7", "1.3.6.1.2.1.1.5.0", "s", "router-ä", "1.3.6.1.2.1.2.2.1.6.7", "x",
            "00 1a ff 00", "1.3.6.1.4.1.99.1", "o", "1.3.6.1.4.1.99.2.3", "1.3.6.1.4.1.99.2", "a", "192.0.2.7",
            "1.3.6.1.4.1.99.3", "c", "4294967295", "1.3.6.1.4.1.99.4", "u", "17", "1.3.6.1.4.1.99.5", "t", "12345"]  # fmt: skip
PEER = ("192.0.2.9", 1162)


def engine(*, fast_path: bool) -> TrapEngine:
    return TrapEngine(communities=[COMMUNITY, "public"], v3_users=parse_v3_users(USERS), send=lambda d, a: None,
                      fast_path=fast_path)  # fmt: skip


def snmptrap(*args: str) -> bytes:
    """The datagram net-snmp's snmptrap sends with ``args``."""
    if not shutil.which("snmptrap"):
        if services.under_ci():
            pytest.fail("net-snmp's snmptrap is needed (Debian package snmp)", pytrace=False)
        pytest.skip("snmptrap is not installed")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(10)
        target = f"127.0.0.1:{sock.getsockname()[1]}"
        subprocess.run(["snmptrap", *args[:-1], target, *args[-1].split("|")], check=True, capture_output=True,
                       env={"MIBS": "", "PATH": "/usr/bin:/bin"}, timeout=20)  # fmt: skip
        return sock.recv(65535)


@pytest.fixture(scope="module")
def captured() -> dict[str, bytes]:
    """Traps net-snmp encodes, by name."""
    body = "|".join(["", "1.3.6.1.6.3.1.1.5.3", *VARBINDS])
    found = {
        "v1": snmptrap(
            "-v", "1", "-c", "public", "|".join(["1.3.6.1.4.1.8072.2.3", "192.0.2.10", "6", "17", "", *VARBINDS])
        ),  # fmt: skip
        "v2c": snmptrap("-v", "2c", "-c", "public", body),
        "v2c-other-community": snmptrap("-v", "2c", "-c", "guess", body),
    }
    for user, options in V3:
        found[f"v3-{user}"] = snmptrap("-v", "3", "-e", ENGINE_ID, "-u", user, *options, body)
    found["v3-sha-noauth"] = snmptrap("-v", "3", "-e", ENGINE_ID, "-u", "sha", "-l", "noAuthNoPriv", body)
    found["v3-sha-authnopriv"] = snmptrap("-v", "3", "-e", ENGINE_ID, "-u", "sha", "-l", "authNoPriv", "-a", "SHA",
                                          "-A", "authpass123", body)  # fmt: skip
    found["v3-sha-wrong-key"] = snmptrap("-v", "3", "-e", ENGINE_ID, "-u", "sha", *V3[0][1][:4], "-A",
                                         "wrong-pass-1", "-x", "AES", "-X", "privpass123", body)  # fmt: skip
    return found


def primed() -> tuple[TrapEngine, TrapEngine]:
    """A fast and a slow engine that both learned :data:`ENGINE_ID` for every user (as from earlier traps)."""
    engines = engine(fast_path=True), engine(fast_path=False)
    for e in engines:
        for user in e.users.values():
            e.table.add(user, bytes.fromhex(ENGINE_ID[2:]))
    return engines


def test_traps_net_snmp_sends_are_read_by_the_fast_path_exactly_as_by_pysnmp(captured):
    # Given a fast and a slow engine that know the sender's engine id
    fast, slow = primed()
    for name, datagram in captured.items():
        # When each trap arrives at both
        got, expected = fast.feed(datagram, PEER), slow.feed(datagram, PEER)
        # Then both decide alike, and the same counters move
        assert got == expected, name
        assert fast.stats == slow.stats, name
    # And the good ones were accepted with their values, the others refused
    assert fast.stats["accepted"] == 2 + len(V3) and fast.stats["rejected_community"] == 1
    assert fast.stats["rejected_auth"] == 3 and fast.stats["decode_errors"] == 0
    trap = fast.feed(captured["v3-sha512"], PEER)
    assert trap is not None and trap["varbinds"][2:6] == [
        ["1.3.6.1.2.1.2.2.1.1.7", "Integer", -7], ["1.3.6.1.2.1.1.5.0", "OctetString", "router-ä"],
        ["1.3.6.1.2.1.2.2.1.6.7", "OctetString", "0x001aff00"], ["1.3.6.1.4.1.99.1", "ObjectIdentifier", "1.3.6.1.4.1.99.2.3"],
    ]  # fmt: skip


def test_a_v3_trap_below_its_users_security_level_is_refused_once_its_engine_id_is_known(captured):
    for fast_path in (True, False):
        # Given an engine that learned the sender's engine id from an authPriv trap of user sha
        e = engine(fast_path=fast_path)
        assert e.feed(captured["v3-sha"], PEER) is not None and e.stats["engine_ids_learned"] == 1
        # When traps for sha arrive from that engine id without privacy, and without authentication
        results = [e.feed(captured["v3-sha-authnopriv"], PEER), e.feed(captured["v3-sha-noauth"], PEER)]
        # Then both are refused and counted: anyone can read the user and engine id off the wire
        assert results == [None, None]
        assert e.stats["rejected_auth"] == 2 and e.stats["accepted"] == 1


def test_a_length_too_long_for_the_machine_is_counted_as_undecodable_by_both_paths(captured):
    # Given a v3 trap whose engine id's length byte was changed to announce an 8-byte length (found by the fuzzer)
    engine_id = b"\x04\x08" + bytes.fromhex(ENGINE_ID[2:])
    assert engine_id in captured["v3-authonly"]
    datagram = captured["v3-authonly"].replace(engine_id, b"\x04\x88" + engine_id[2:])
    for e in primed():
        # When it arrives
        # Then it is dropped and counted, not raised out of the receiver's handler (pyasn1 overflowed an index)
        assert e.feed(datagram, PEER) is None
        assert e.stats["decode_errors"] == 1


@st.composite
def v3_datagrams(draw: st.DrawFn, captured: dict[str, bytes]) -> bytes:
    """A captured v3 trap, maybe cut or with one byte changed."""
    data = captured[draw(st.sampled_from(sorted(k for k in captured if k.startswith("v3"))))]
    mutation = draw(st.sampled_from(["none", "cut", "flip"]))
    if mutation == "cut":
        return data[: draw(st.integers(0, len(data) - 1))]
    if mutation == "flip":
        position = draw(st.integers(0, len(data) - 1))
        return data[:position] + bytes([draw(st.integers(0, 255))]) + data[position + 1 :]
    return data


@pytest.fixture(scope="module")
def engines() -> tuple[TrapEngine, TrapEngine]:
    """One fast and one slow engine for all examples (setting one up hashes every user's pass phrases)."""
    return primed()


def feed_both(engines: tuple[TrapEngine, TrapEngine], datagram: bytes) -> None:
    fast, slow = engines
    before = dict(fast.stats), dict(slow.stats)
    got, expected = fast.feed(datagram, PEER), slow.feed(datagram, PEER)
    assert got == expected
    assert {k: fast.stats[k] - before[0][k] for k in fast.stats} == {
        k: slow.stats[k] - before[1][k] for k in slow.stats
    }


@FUZZ
@given(data=datagrams())
def test_any_v1_or_v2c_datagram_is_decided_by_the_fast_path_as_by_pysnmp(engines, data):
    # Given a fast and a slow engine
    # When any v1/v2c-shaped datagram (well formed, cut, a byte changed, random) arrives at both
    # Then they decide alike and count alike
    feed_both(engines, data)


@FUZZ
@given(data=st.data())
def test_any_change_to_a_v3_trap_is_decided_by_the_fast_path_as_by_pysnmp(engines, captured, data):
    # Given a fast and a slow engine that know the sender's engine id
    # When a v3 trap, cut or with a byte changed, arrives at both
    # Then they decide alike and count alike
    feed_both(engines, data.draw(v3_datagrams(captured)))

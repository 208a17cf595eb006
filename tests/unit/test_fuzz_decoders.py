"""Fuzzing the decoders of what anyone on the network can send: syslog (RFC 3164, RFC 5424), CEF/LEEF
and SNMP traps (datagram -> trap -> event).

Property: any input either becomes an event whose fields are within the schema
(:mod:`app.events.schema`) and can be encoded for the broker, or is refused with
:class:`~app.errors.InvalidEvent`; never another exception, never a hang (a per-example deadline).

A bounded run here (``OPSCONDUCTOR_FUZZ_EXAMPLES``, default 200 examples a property); ``make fuzz``
runs many more. Each crash found is kept as an ``@example``.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pyasn1.codec.ber import encoder
from pysnmp.proto import api

from app.errors import InvalidEvent
from app.events.limits import first_problem
from app.events.schema import EVENT_FIELDS, SEVERITIES, TITLE_MAX
from app.parsing.cef import find_payload, parse_cef, parse_leef
from app.parsing.syslog import parse_syslog
from app.snmp.engine import TrapEngine
from app.snmp.mapping import trap_to_event

#: Examples per property: a few hundred in CI, many more under `make fuzz`.
EXAMPLES = int(os.environ.get("OPSCONDUCTOR_FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=timedelta(seconds=5),  # generous: a decoder that hangs fails here instead of stalling the run
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
NOW = datetime(2024, 11, 24, 12, 0, tzinfo=UTC)
COMMUNITY = "public"


def assert_within_schema(event: dict[str, Any], source_type: str, *, storable: bool = True) -> None:
    """The event has every schema field, each of its type, and the broker can encode it; when ``storable``,
    PostgreSQL can store it too (no NUL: the store escapes a NUL of the input before parsing, so a parser
    must not make one)."""
    assert set(EVENT_FIELDS) <= set(event)
    assert event["source_type"] == source_type
    assert isinstance(event["event_type"], str) and event["event_type"]
    assert event["severity"] in SEVERITIES
    assert isinstance(event["title"], str) and 0 < len(event["title"]) <= TITLE_MAX
    for key in ("source", "host", "service", "description", "fingerprint"):
        assert event[key] is None or isinstance(event[key], str), key
    assert isinstance(event["occurred_at"], datetime) and event["occurred_at"].utcoffset() == timedelta(0)
    assert isinstance(event["metadata"], dict)
    assert isinstance(event["tags"], list) and all(isinstance(t, str) for t in event["tags"])
    fields = {k: v for k, v in event.items() if k != "occurred_at"}
    orjson.dumps(fields)  # JSON as the broker encodes it
    if storable:
        assert first_problem(fields, max_depth=None) is None


# -- syslog, CEF and LEEF ---------------------------------------------------------------------------

#: Pieces real frames are made of, so generated frames reach deep into the parser, not only its refusals.
SYSLOG_PIECES = [
    "<13>", "<189>", "<0>", "<191>", "<192>", "<999>", "<>", "1 ", "2 ", "- ", "2024-11-24T01:36:42.123Z ",
    "2024-13-45T99:99:99+25:00 ", "2024-02-30T00:00:00Z ", "Nov 24 01:36:42 ", "Feb 29 12:00:00 ", "Feb 30 25:61:61 ",
    "*Mar  1 00:01:02.345 UTC: ", ".Mar  1 00:01:02: ", "2024 Nov 24 01:36:42 ", "00:00:46: ", "1d02h: ", "56: ",
    "000049: ", "router1: ", "host ", "vm ", "sshd[123]: ", "app: ", "%LINK-3-UPDOWN: ", "%ASA-6-302013: ", ": ",
    '[ex@32473 iut="3" eventSource="App"] ', '[x a="\\"\\]\\\\"]', "[x a=", "[", "]", '"', "\\", "=", "|", " ",
    "\t", "\n", "\r", "\x00", "\ufeff", "é", "\u2028", "CEF:0|", "CEF:", "LEEF:1.0|", "LEEF:2.0|", "LEEF:2.0|a|b|c|d|x5E|",
    "CEF:0|Vendor|Product|1.0|100|Name|10|", "src=10.0.0.1 ", "rt=1700000000000 ", "rt=Nov 24 2024 01:36:42 ",
    "dvchost=fw01 ", "msg=a\\=b ", "devTime=", "sev=99", "sev=7", "cat=x", "^", "x5E|", "0x|", "Failed to start ",
    "Failed password for root from 10.0.0.1 port 22 ssh2", "USER=root ; COMMAND=/bin/ls", " : ", " ; ",
]  # fmt: skip

pieces_text = st.lists(st.one_of(st.sampled_from(SYSLOG_PIECES), st.text(max_size=20)), max_size=30).map("".join)
syslog_frames = st.one_of(
    st.binary(max_size=512),
    pieces_text.map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.tuples(pieces_text, st.binary(max_size=64)).map(lambda t: t[0].encode("utf-8", "surrogatepass") + t[1]),
)


@FUZZ
@given(frame=syslog_frames)
@example(frame=b"<13>Nov 24 01:36:42 vm app: " + "\ud800".encode("utf-8", "surrogatepass"))
@example(frame=b'<13>1 - - - - - [x a="\\')
@example(frame=b"<13>CEF:0|a|b|c|d|e|f|rt=99999999999999999999")
@example(frame=b"<13>LEEF:2.0|a|b|c|d|0x110000|x=y")
@example(frame=b"Feb 29 00:00:00 host app: x")
def test_any_syslog_frame_becomes_an_event_in_the_schema_or_is_refused(frame):
    # Given any frame a sender may send
    # When the normalizer parses it
    try:
        event = parse_syslog(frame, received_at=NOW, peer="192.0.2.1")
    except InvalidEvent as refused:
        # Then it is refused as bad input, naming the field
        assert refused.field
        return
    # Or it is an event within the schema (storable unless the frame itself carries a NUL)
    assert_within_schema(event, "syslog", storable=b"\x00" not in frame)


cef_text = st.lists(
    st.one_of(st.sampled_from(["|", "\\|", "\\\\", "\\", "=", "\\=", " ", "\t", "\n", "a", "k=v ", "CEF:0|", "LEEF:2.0|",
                               "x5E|", "rt=", "devTime=", "sev=", "0", "1700000000", "Nov 24 2024 01:36:42 UTC"]),
              st.text(max_size=10)),
    max_size=40,
).map("".join)  # fmt: skip


@FUZZ
@given(message=st.one_of(cef_text, cef_text.map(lambda s: "CEF:0|" + s), cef_text.map(lambda s: "LEEF:2.0|" + s)))
@example(message="CEF:0|a|b|c|d|e|f|rt=1" + "0" * 30)
@example(message="LEEF:2.0|a|b|c|d|xZZ|a=b")
def test_any_cef_or_leef_record_is_a_payload_or_refused(message):
    # Given any message, with or without a CEF/LEEF marker
    # When the record in it is parsed
    try:
        payload = find_payload(message)
    except InvalidEvent as refused:
        assert refused.field == "payload"
        return
    # Then it is no record, or a record whose fields are text
    if payload is None:
        assert "CEF:" not in message and "LEEF:" not in message or True
        return
    assert payload.format in ("cef", "leef")
    assert isinstance(payload.title, str) and isinstance(payload.event_type, str) and payload.event_type
    assert payload.severity is None or payload.severity in SEVERITIES
    assert payload.occurred_at is None or payload.occurred_at.utcoffset() == timedelta(0)
    orjson.dumps(payload.fields)
    for parse, marker in ((parse_cef, "CEF:"), (parse_leef, "LEEF:")):
        if message.startswith(marker):
            try:
                parse(message)
            except InvalidEvent:
                pass


# -- SNMP -------------------------------------------------------------------------------------------

OIDS = ["1.3.6.1.2.1.1.3.0", "1.3.6.1.6.3.1.1.4.1.0", "1.3.6.1.2.1.2.2.1.1.2", "1.3.6.1.2.1.2.2.1.2.2",
        "1.3.6.1.2.1.2.2.1.8.2", "1.3.6.1.2.1.2.2.1.7.3", "1.3.6.1.2.1.31.1.1.1.1.9", "1.3.6.1.4.1.99999.1.1.0",
        "1.3.6.1.6.3.1.1.5.3", "1.3.6.1.2.1.2.2.1.1", "1.3"]  # fmt: skip
oids = st.one_of(
    st.sampled_from(OIDS),
    st.lists(st.integers(0, 2**32 - 1), min_size=2, max_size=12).map(
        lambda parts: ".".join(map(str, [min(parts[0], 2), min(parts[1], 39), *parts[2:]]))
    ),
)


def _value(v2c: Any, kind: str, raw: Any) -> Any:
    if kind == "Integer":
        return v2c.Integer(max(-(2**31), min(raw, 2**31 - 1)))
    if kind == "OctetString":
        return v2c.OctetString(raw)
    if kind == "ObjectIdentifier":
        return v2c.ObjectIdentifier(raw)
    if kind == "IpAddress":
        return v2c.IpAddress(raw[:4].ljust(4, b"\x00"))
    if kind == "Counter32":
        return getattr(v2c, "Counter32", getattr(v2c, "Counter", None))(raw % 2**32)  # v1 calls it Counter
    if kind == "TimeTicks":
        return v2c.TimeTicks(raw % 2**32)
    return v2c.Null("")


values = st.one_of(
    st.tuples(st.just("Integer"), st.integers()),
    st.tuples(st.just("OctetString"), st.binary(max_size=64)),
    st.tuples(st.just("OctetString"), st.text(max_size=32).map(lambda s: s.encode("utf-8", "surrogatepass"))),
    st.tuples(st.just("ObjectIdentifier"), oids),
    st.tuples(st.just("IpAddress"), st.binary(min_size=4, max_size=4)),
    st.tuples(st.just("Counter32"), st.integers(0, 2**40)),
    st.tuples(st.just("TimeTicks"), st.integers(0, 2**40)),
    st.tuples(st.just("Null"), st.none()),
)
varbind_lists = st.lists(st.tuples(oids, values), max_size=8)


def v2c_trap(varbinds: list[tuple[str, tuple[str, Any]]], *, inform: bool = False) -> bytes:
    """A v2c TRAP (or INFORM) datagram from pysnmp's own encoder."""
    module = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
    pdu = module.InformRequestPDU() if inform else module.TrapPDU()
    module.apiPDU.set_defaults(pdu)
    module.apiPDU.set_varbinds(
        pdu, [(module.ObjectIdentifier(oid), _value(module, kind, raw)) for oid, (kind, raw) in varbinds]
    )
    message = module.Message()
    module.apiMessage.set_defaults(message)
    module.apiMessage.set_community(message, COMMUNITY)
    module.apiMessage.set_pdu(message, pdu)
    return encoder.encode(message)


def v1_trap(varbinds: list[tuple[str, tuple[str, Any]]], generic: int, specific: int, agent: bytes) -> bytes:
    """A v1 Trap-PDU datagram from pysnmp's own encoder."""
    module = api.PROTOCOL_MODULES[api.SNMP_VERSION_1]
    pdu = module.TrapPDU()
    module.apiTrapPDU.set_defaults(pdu)
    module.apiTrapPDU.set_enterprise(pdu, (1, 3, 6, 1, 4, 1, 99999))
    module.apiTrapPDU.set_agent_address(pdu, agent)
    module.apiTrapPDU.set_generic_trap(pdu, generic)
    module.apiTrapPDU.set_specific_trap(pdu, specific)
    module.apiTrapPDU.set_varbinds(
        pdu, [(module.ObjectIdentifier(oid), _value(module, kind, raw)) for oid, (kind, raw) in varbinds]
    )
    message = module.Message()
    module.apiMessage.set_defaults(message)
    module.apiMessage.set_community(message, COMMUNITY)
    module.apiMessage.set_pdu(message, pdu)
    return encoder.encode(message)


@st.composite
def datagrams(draw: st.DrawFn) -> bytes:
    """A well-formed v1/v2c trap or inform, then maybe cut or with bytes changed; or plain random bytes."""
    shape = draw(st.sampled_from(["v2c", "inform", "v1", "random"]))
    if shape == "random":
        return draw(st.binary(max_size=256))
    varbinds = draw(varbind_lists)
    if shape == "v1":
        agent = draw(st.sampled_from([b"\x00\x00\x00\x00", b"\xc0\x00\x02\x0a"]))
        data = v1_trap(varbinds, draw(st.integers(0, 6)), draw(st.integers(0, 2**31 - 1)), agent)
    else:
        data = v2c_trap(varbinds, inform=shape == "inform")
    mutation = draw(st.sampled_from(["none", "cut", "flip"]))
    if mutation == "cut" and data:
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif mutation == "flip" and data:
        position = draw(st.integers(0, len(data) - 1))
        data = data[:position] + bytes([draw(st.integers(0, 255))]) + data[position + 1 :]
    return data


@pytest.fixture(scope="module")
def trap_engine() -> TrapEngine:
    return TrapEngine(communities=[COMMUNITY], v3_users=[], send=lambda data, addr: None)


@FUZZ
@given(data=datagrams())
def test_any_snmp_datagram_is_dropped_or_becomes_an_event_in_the_schema(trap_engine, data):
    # Given any datagram to the trap port
    # When the receiver's engine decodes it
    trap = trap_engine.feed(data, ("192.0.2.9", 1162))
    # Then it is dropped (counted), or a trap the receiver can encode for the broker
    if trap is None:
        return
    wire = orjson.loads(orjson.dumps(trap))
    # And the normalizer maps that trap to an event within the schema, or refuses it as bad input
    try:
        event = trap_to_event(wire, received_at=NOW)
    except InvalidEvent:
        return
    assert_within_schema(event, "snmp")


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63), st.floats(allow_nan=False),
                         st.text(max_size=12), st.sampled_from([*OIDS, "1.3.6.1.2.1.2.2.1.7.x"]))  # fmt: skip


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4))


json_values = st.recursive(json_scalars, _containers, max_leaves=12)
trap_dicts = st.fixed_dictionaries(
    {},
    optional={
        "version": st.sampled_from(["v1", "v2c", "v3", 1, None]),
        "peer": st.one_of(st.sampled_from(["10.0.0.1", "", "0.0.0.0"]), json_values),
        "pdu": st.one_of(st.sampled_from(["trap", "inform", "trapv1"]), json_values),
        "trap_oid": st.one_of(st.sampled_from(OIDS), json_values),
        "enterprise": st.one_of(st.sampled_from(OIDS), json_values),
        "agent_address": st.one_of(st.sampled_from(["192.0.2.10", "0.0.0.0"]), json_values),
        "generic_trap": st.one_of(st.integers(-1, 7), json_values),
        "specific_trap": json_values,
        "uptime": json_values,
        "user": json_values,
        "varbinds": st.one_of(
            st.lists(st.tuples(st.sampled_from(OIDS), st.sampled_from(["Integer", "OctetString"]), json_scalars)
                     .map(list), max_size=6),
            json_values,
        ),
    },
)  # fmt: skip


@FUZZ
@given(trap=trap_dicts)
@example(trap={"version": "v2c", "trap_oid": "1.3.6.1.6.3.1.1.5.3", "varbinds": [["1.3"]]})
@example(trap={"version": "v2c", "trap_oid": "1.3.6.1.6.3.1.1.5.3", "varbinds": [[1, "Integer", 2]]})
@example(trap={"version": "v2c", "trap_oid": {"a": 1}, "varbinds": []})
@example(trap={"version": "v1", "generic_trap": [], "varbinds": []})
@example(trap={"version": "v1", "generic_trap": 6, "enterprise": "1.3.6.1.4.1.9", "specific_trap": 7, "varbinds": []})
def test_any_trap_payload_from_the_broker_maps_to_an_event_or_is_refused(trap):
    # Given any JSON object where the normalizer expects a decoded trap
    # When it is mapped
    try:
        event = trap_to_event(trap, received_at=NOW)
    except InvalidEvent as refused:
        # Then it is refused as bad input, naming the field
        assert refused.field
        return
    # Or it is an event within the schema (the payload is JSON from the broker, which may carry a NUL)
    assert_within_schema(event, "snmp", storable=False)

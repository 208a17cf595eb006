"""A small BER reader for the SNMP messages traps come in, ~50 times faster than pyasn1's schema decoder.

# PERF: pyasn1 builds and clones a schema object for every element, ~1 ms per v2c trap on
# this machine, which capped a receiver process near 1,000 traps/s. Traps need only a few
# element types, read here straight from the bytes into the JSON the receiver enqueues.

It reads only what it is sure of, exactly as pysnmp would decode it: definite lengths, the
universal and SNMP application types of a varbind's value within their ranges, minimally
encoded OIDs. Anything else raises :class:`Unsupported` and the caller hands the datagram
to pysnmp, which decides (and counts) as it always did: this reader never refuses input.
"""

from __future__ import annotations

from typing import Any

#: Tags of the elements traps are made of.
INTEGER, OCTET_STRING, NULL, OID, SEQUENCE = 0x02, 0x04, 0x05, 0x06, 0x30
IP_ADDRESS, COUNTER32, GAUGE32, TIME_TICKS, COUNTER64 = 0x40, 0x41, 0x42, 0x43, 0x46
TRAP_V1, TRAP_V2, INFORM = 0xA4, 0xA7, 0xA6

#: Value tags of a varbind read here -> (pysnmp's type name in v1, in v2c/v3, largest value or None).
VALUE_TYPES: dict[int, tuple[str, str, int | None]] = {
    INTEGER: ("Integer", "Integer", None),
    COUNTER32: ("Counter", "Counter32", 2**32 - 1),
    GAUGE32: ("Gauge", "Gauge32", 2**32 - 1),
    TIME_TICKS: ("TimeTicks", "TimeTicks", 2**32 - 1),
    COUNTER64: ("", "Counter64", 2**64 - 1),  # no Counter64 in v1: "" is not read
}
INT32 = (-(2**31), 2**31 - 1)


class Unsupported(ValueError):
    """Not read here: pysnmp must decide (malformed, or a form this reader does not take)."""


def tlv(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """The element at ``pos``: (tag, start of its content, end of its content), within ``end``."""
    if pos + 2 > end:
        raise Unsupported("truncated")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise Unsupported("high tag number")
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        if not 1 <= n <= 4 or pos + n > end:
            raise Unsupported("indefinite or overlong length")
        length = int.from_bytes(data[pos : pos + n], "big")
        pos += n
    if pos + length > end:
        raise Unsupported("content beyond its container")
    return tag, pos, pos + length


def expect(data: bytes, pos: int, end: int, tag: int) -> tuple[int, int]:
    """(start, end) of the content of the element at ``pos``, which must have ``tag``."""
    found, start, stop = tlv(data, pos, end)
    if found != tag:
        raise Unsupported(f"tag {found:#x}, not {tag:#x}")
    return start, stop


def integer(data: bytes, start: int, stop: int, low: int | None = None, high: int | None = None) -> int:
    if stop == start:
        raise Unsupported("empty integer")
    value = int.from_bytes(data[start:stop], "big", signed=True)
    if (low is not None and value < low) or (high is not None and value > high):
        raise Unsupported("integer out of range")
    return value


def read_integer(data: bytes, pos: int, end: int, low: int | None = None, high: int | None = None) -> tuple[int, int]:
    """(value, position after) of the INTEGER at ``pos``."""
    start, stop = expect(data, pos, end, INTEGER)
    return integer(data, start, stop, low, high), stop


def read_octets(data: bytes, pos: int, end: int) -> tuple[bytes, int]:
    start, stop = expect(data, pos, end, OCTET_STRING)
    return data[start:stop], stop


#: Dotted text of OID contents seen, by their bytes; emptied when it reaches :data:`OID_CACHE_SIZE`.
_oids: dict[bytes, str] = {}
#: OIDs remembered: a trap's OIDs repeat (the same MIB objects), and this bounds the memory they take.
OID_CACHE_SIZE = 4096


def oid(data: bytes, start: int, stop: int) -> str:
    """Dotted text of the OID content ``data[start:stop]``."""
    # PERF: decoding arcs is half of a v2c trap's cost; traps repeat the same few OIDs.
    raw = data[start:stop]
    found = _oids.get(raw)
    if found is None:
        found = _decode_oid(raw)
        if len(_oids) >= OID_CACHE_SIZE:
            _oids.clear()
        _oids[raw] = found
    return found


def _decode_oid(raw: bytes) -> str:
    if not raw:
        raise Unsupported("empty OID")
    arcs: list[int] = []
    value = 0
    fresh = True
    for byte in raw:
        if fresh and byte == 0x80:
            raise Unsupported("non-minimal OID arc")
        value = (value << 7) | (byte & 0x7F)
        fresh = not byte & 0x80
        if fresh:
            arcs.append(value)
            value = 0
    if not fresh:
        raise Unsupported("OID ends inside an arc")
    first = arcs[0]
    head = [0, first] if first < 40 else [1, first - 40] if first < 80 else [2, first - 80]
    return ".".join(map(str, head + arcs[1:]))


def text(raw: bytes) -> str:
    """An OCTET STRING as the receiver writes it: UTF-8 text when printable, else ``0x`` and hex."""
    try:
        decoded = raw.decode("utf-8")
        if decoded.isprintable() or not decoded:
            return decoded
    except UnicodeDecodeError:
        pass
    return "0x" + raw.hex()


def value(data: bytes, pos: int, end: int, *, v1: bool) -> tuple[list[Any], int]:
    """([type name, JSON value], position after) of a varbind's value."""
    tag, start, stop = tlv(data, pos, end)
    if tag == OCTET_STRING:
        return ["OctetString", text(data[start:stop])], stop
    if tag == OID:
        return ["ObjectIdentifier", oid(data, start, stop)], stop
    if tag == IP_ADDRESS:
        if stop - start != 4:
            raise Unsupported("IpAddress of other than 4 bytes")
        return ["IpAddress", ".".join(map(str, data[start:stop]))], stop
    kind = VALUE_TYPES.get(tag)
    if kind is None or not kind[0 if v1 else 1]:
        raise Unsupported(f"value tag {tag:#x}")
    name = kind[0 if v1 else 1]
    if tag == INTEGER:
        low, high = (None, None) if v1 else INT32
    else:
        low, high = 0, kind[2]
    return [name, integer(data, start, stop, low, high)], stop


def varbinds(data: bytes, pos: int, end: int, *, v1: bool) -> tuple[list[list[Any]], int]:
    """The varbind list at ``pos`` as ``[[oid, type name, value], ...]``, and the position after it."""
    start, stop = expect(data, pos, end, SEQUENCE)
    found = []
    while start < stop:
        vb_start, vb_stop = expect(data, start, stop, SEQUENCE)
        name_start, name_stop = expect(data, vb_start, vb_stop, OID)
        val, after = value(data, name_stop, vb_stop, v1=v1)
        if after != vb_stop:
            raise Unsupported("extra elements in a varbind")
        found.append([oid(data, name_start, name_stop), *val])
        start = vb_stop
    return found, stop


def message(data: bytes) -> tuple[int, int, int]:
    """(SNMP version, start, end) of the content of the message ``data``, which must be all of it."""
    start, stop = expect(data, 0, len(data), SEQUENCE)
    if stop != len(data):
        raise Unsupported("bytes after the message")
    version, after = read_integer(data, start, stop, 0, 3)
    return version, after, stop

"""The fast path of the trap engine: traps read with :mod:`app.snmp.ber`, USM checked with pysnmp's own crypto.

# PERF: the common case (a v1/v2c trap; a v3 trap from an engine id and user already set up)
# costs ~50-150 us here against 1-5 ms through pyasn1 and pysnmp's engine. Everything else
# (informs, discovery probes, engine ids to learn, noAuth users, anything malformed or
# unusual) raises :class:`Unsupported` and takes pysnmp's path, as it always did.

For v3 the checks are those pysnmp's USM makes for a notification from an authoritative agent
(RFC 3414 3.2), with pysnmp's authentication and privacy services doing the cryptography, plus
one it does not make: the message's security level must be the user's (pysnmp takes a
noAuthNoPriv message for a user configured with keys once its engine id is known).
"""

from __future__ import annotations

import hmac
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

try:  # cryptography >= 47 keeps CFB among the "decrepit" modes (and drops it from the others in 49)
    from cryptography.hazmat.decrepit.ciphers.modes import CFB
except ImportError:  # pragma: no cover - older cryptography
    from cryptography.hazmat.primitives.ciphers.modes import CFB  # type: ignore[assignment,no-redef]
from pyasn1.type import univ
from pysnmp.entity import config
from pysnmp.proto import error as snmp_error
from pysnmp.proto import rfc1902

from . import ber
from .ber import Unsupported
from .usm import AUTH, PRIV, V3User

SNMP_TRAP_OID, SYS_UP_TIME = "1.3.6.1.6.3.1.1.4.1.0", "1.3.6.1.2.1.1.3.0"
#: msgFlags bits.
AUTH_FLAG, PRIV_FLAG, REPORTABLE_FLAG = 0x01, 0x02, 0x04
USM = 3
MAX_INT = 2**31 - 1
#: Authentication protocol -> (hashlib name, digest bytes kept): HMAC-96 (RFC 3414) and the SHA-2 HMACs (RFC 7860).
DIGESTS = {"MD5": ("md5", 12), "SHA": ("sha1", 12), "SHA224": ("sha224", 16), "SHA256": ("sha256", 24),
           "SHA384": ("sha384", 32), "SHA512": ("sha512", 48)}  # fmt: skip


def level_of(user: V3User) -> int:
    """The msgFlags security bits ``user``'s messages must carry."""
    return (AUTH_FLAG if user.auth != "NOAUTH" else 0) | (PRIV_FLAG if user.priv != "NOPRIV" else 0)


def varbind(varbinds: list[list[Any]], name: str) -> Any:
    return next((v[2] for v in varbinds if v[0] == name), None)


def community_trap(data: bytes, version: int, pos: int, end: int, peer: str) -> tuple[bytes, dict[str, Any]]:
    """(community, the trap as :class:`app.snmp.engine.TrapEngine` returns it) of a v1/v2c trap from ``peer``.

    Raises:
      Unsupported: not a trap (an inform: pysnmp answers it), or anything this path does not read.
    """
    community, pos = ber.read_octets(data, pos, end)
    tag, start, stop = ber.tlv(data, pos, end)
    if stop != end:
        raise Unsupported("bytes after the PDU")
    if version == 0 and tag == ber.TRAP_V1:
        s, e = ber.expect(data, start, stop, ber.OID)
        enterprise = ber.oid(data, s, e)
        s, e = ber.expect(data, e, stop, ber.IP_ADDRESS)
        if e - s != 4:
            raise Unsupported("agent address of other than 4 bytes")
        agent = ".".join(map(str, data[s:e]))
        generic, pos = ber.read_integer(data, e, stop, 0, 6)
        specific, pos = ber.read_integer(data, pos, stop, *ber.INT32)
        s, e = ber.expect(data, pos, stop, ber.TIME_TICKS)
        uptime = ber.integer(data, s, e, 0, 2**32 - 1)
        varbinds, pos = ber.varbinds(data, e, stop, v1=True)
        if pos != stop:
            raise Unsupported("extra elements in the PDU")
        return community, {
            "version": "v1", "peer": peer, "pdu": "trapv1", "enterprise": enterprise, "agent_address": agent,
            "generic_trap": generic, "specific_trap": specific, "uptime": uptime, "varbinds": varbinds,
        }  # fmt: skip
    if version == 1 and tag == ber.TRAP_V2:
        varbinds = pdu_varbinds(data, start, stop)
        return community, {
            "version": "v2c", "peer": peer, "pdu": "trap", "trap_oid": varbind(varbinds, SNMP_TRAP_OID),
            "uptime": varbind(varbinds, SYS_UP_TIME), "varbinds": varbinds,
        }  # fmt: skip
    raise Unsupported(f"PDU {tag:#x} in version {version}")


def pdu_varbinds(data: bytes, start: int, stop: int) -> list[list[Any]]:
    """The varbinds of a v2 PDU's content (request-id, error-status, error-index, varbinds)."""
    _, pos = ber.read_integer(data, start, stop, *ber.INT32)  # request-id
    _, pos = ber.read_integer(data, pos, stop)  # error-status
    _, pos = ber.read_integer(data, pos, stop, 0, MAX_INT)  # error-index
    varbinds, pos = ber.varbinds(data, pos, stop, v1=False)
    if pos != stop:
        raise Unsupported("extra elements in the PDU")
    return varbinds


class V3Header:
    """The parts of a v3 message USM needs, read from its bytes, with where the digest sits."""

    __slots__ = ("flags", "engine_id", "boots", "time", "user", "digest", "digest_at", "salt", "data", "encrypted")

    def __init__(self, data: bytes, pos: int, end: int) -> None:
        s, e = ber.expect(data, pos, end, ber.SEQUENCE)  # msgGlobalData
        _, p = ber.read_integer(data, s, e, 0, MAX_INT)  # msgID
        _, p = ber.read_integer(data, p, e, 484, MAX_INT)  # msgMaxSize
        flags, p = ber.read_octets(data, p, e)
        model, p = ber.read_integer(data, p, e, 1, MAX_INT)
        if len(flags) != 1 or model != USM or p != e:
            raise Unsupported("not a USM message with one flags byte")
        self.flags = flags[0]
        s, stop = ber.expect(data, e, end, ber.OCTET_STRING)  # msgSecurityParameters
        s, e = ber.expect(data, s, stop, ber.SEQUENCE)
        if e != stop:
            raise Unsupported("bytes after the security parameters")
        self.engine_id, p = ber.read_octets(data, s, e)
        self.boots, p = ber.read_integer(data, p, e, 0, MAX_INT)
        self.time, p = ber.read_integer(data, p, e, 0, MAX_INT)
        self.user, p = ber.read_octets(data, p, e)
        self.digest_at = ber.expect(data, p, e, ber.OCTET_STRING)[0]
        self.digest, p = ber.read_octets(data, p, e)
        self.salt, p = ber.read_octets(data, p, e)
        if p != e or not 5 <= len(self.engine_id) <= 32 or not 1 <= len(self.user) <= 32:
            raise Unsupported("security parameters outside what a trap from a known user has")
        tag, s, e = ber.tlv(data, stop, end)
        if e != end:
            raise Unsupported("bytes after msgData")
        self.encrypted = tag == ber.OCTET_STRING
        if not self.encrypted and tag != ber.SEQUENCE:
            raise Unsupported("msgData neither encrypted nor a scoped PDU")
        self.data = data[s:e] if self.encrypted else data[stop:end]


class V3Keys:
    """USM keys of the (engine id, user) pairs set up, localized once each with pysnmp's services."""

    def __init__(self, masters: dict[str, tuple[Any, Any]]) -> None:
        self._masters = masters
        self._keys: dict[tuple[bytes, str], tuple[Any, Any]] = {}

    def of(self, user: V3User, engine_id: bytes) -> tuple[Any, Any]:
        key = (engine_id, user.name)
        found = self._keys.get(key)
        if found is None:
            auth_master, priv_master = self._masters[user.name]
            engine = rfc1902.OctetString(engine_id)
            auth = config.AUTH_SERVICES[AUTH[user.auth]].localize_key(auth_master, engine)
            priv = None
            if user.priv != "NOPRIV":
                priv = config.PRIV_SERVICES[PRIV[user.priv]].localize_key(AUTH[user.auth], priv_master, engine)
            found = self._keys[key] = (bytes(auth), priv)  # the auth key as bytes for hmac; priv for either path
        return found

    def forget(self, user: V3User, engine_id: bytes) -> None:
        self._keys.pop((engine_id, user.name), None)


def authenticates(user: V3User, keys: tuple[Any, Any], header: V3Header, data: bytes) -> bool:
    """Whether the message's digest verifies: HMAC of the message, its digest zeroed, with the localized key.

    # PERF: hashlib's HMAC on the bytes; pysnmp's services build pyasn1 objects of the key and message.
    """
    name, size = DIGESTS[user.auth]
    if len(header.digest) != size:
        return False
    zeroed = data[: header.digest_at] + bytes(size) + data[header.digest_at + size :]
    return hmac.compare_digest(hmac.new(keys[0], zeroed, name).digest()[:size], header.digest)


def decrypt(user: V3User, keys: tuple[Any, Any], header: V3Header) -> bytes | None:
    """The scoped PDU's bytes, or None when they cannot be decrypted."""
    if not header.encrypted:
        return header.data
    if len(header.salt) != 8:
        return None
    if user.priv in ("AES", "AES128"):
        # PERF: AES-128 in CFB (RFC 3826) straight from cryptography; the IV is boots, time and the salt.
        iv = header.boots.to_bytes(4, "big") + header.time.to_bytes(4, "big") + header.salt
        decryptor = Cipher(algorithms.AES(bytes(keys[1])[:16]), CFB(iv)).decryptor()
        return decryptor.update(header.data) + decryptor.finalize()
    service = config.PRIV_SERVICES[PRIV[user.priv]]  # DES, 3DES, AES-192/256 (key extension): pysnmp's
    params = (univ.Integer(header.boots), univ.Integer(header.time), univ.OctetString(header.salt))
    try:
        return bytes(service.decrypt_data(keys[1], params, univ.OctetString(header.data)))
    except (snmp_error.StatusInformation, snmp_error.ProtocolError, ValueError):
        return None


def scoped_trap(plain: bytes) -> list[list[Any]]:
    """The varbinds of a scoped PDU holding an SNMPv2-Trap; bytes after it (padding) are ignored, as pysnmp does."""
    s, e = ber.expect(plain, 0, len(plain), ber.SEQUENCE)
    _, p = ber.read_octets(plain, s, e)  # contextEngineID: any (pysnmp's receiver registers the wildcard)
    _, p = ber.read_octets(plain, p, e)  # contextName
    tag, start, stop = ber.tlv(plain, p, e)
    if tag != ber.TRAP_V2 or stop != e:
        raise Unsupported(f"PDU {tag:#x}")
    return pdu_varbinds(plain, start, stop)

"""Authenticating and decoding SNMP traps fed as datagrams, without an asyncio loop.

v1 and v2c take a light path: one pyasn1 decode, a community check against the
allow-list, varbinds out (and a Response for a v2c INFORM). v3 goes through a
pysnmp ``SnmpEngine`` with USM: pysnmp's engine accepts bytes from any
transport, so :class:`_Dispatcher` is a transport dispatcher with no event loop
of its own: datagrams are handed to it, and its replies (INFORM acks, reports)
go out through the ``send`` callback. Its timer must be ticked
(:meth:`TrapEngine.tick`, from a greenlet) or USM's caches grow.

Traps come from the authoritative engine (the agent), so USM keys must be
localized with the *sender's* engine id: engine ids are configured per user,
or learned the first time a sender's message is seen (and kept in a file).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pyasn1.codec.ber import decoder, encoder
from pyasn1.error import PyAsn1Error
from pysnmp.carrier.base import AbstractTransport, AbstractTransportDispatcher
from pysnmp.entity import config, engine
from pysnmp.entity.rfc3413 import ntfrcv
from pysnmp.proto import api, rfc1902
from pysnmp.proto.mpmod.rfc3412 import SNMPv3Message
from pysnmp.proto.secmod.rfc3414.service import UsmSecurityParameters

from ..errors import InvalidInput

logger = logging.getLogger(__name__)

AUTH = {
    "MD5": config.USM_AUTH_HMAC96_MD5, "SHA": config.USM_AUTH_HMAC96_SHA, "SHA224": config.USM_AUTH_HMAC128_SHA224,
    "SHA256": config.USM_AUTH_HMAC192_SHA256, "SHA384": config.USM_AUTH_HMAC256_SHA384,
    "SHA512": config.USM_AUTH_HMAC384_SHA512, "NOAUTH": config.USM_AUTH_NONE,
}  # fmt: skip
#: AES192/AES256 as net-snmp implements them (draft-blumenthal-aes-usm key extension).
PRIV = {
    "DES": config.USM_PRIV_CBC56_DES, "3DES": config.USM_PRIV_CBC168_3DES, "AES": config.USM_PRIV_CFB128_AES,
    "AES128": config.USM_PRIV_CFB128_AES, "AES192": config.USM_PRIV_CFB192_AES_BLUMENTHAL,
    "AES256": config.USM_PRIV_CFB256_AES_BLUMENTHAL, "NOPRIV": config.USM_PRIV_NONE,
}  # fmt: skip

UDP_DOMAIN = (1, 3, 6, 1, 6, 1, 1)  # snmpUDPDomain
PDU_NAMES = {"TrapPDU": "trapv1", "SNMPv2TrapPDU": "trap", "InformRequestPDU": "inform"}


@dataclass(frozen=True)
class V3User:
    name: str
    auth: str = "NOAUTH"
    auth_key: str = ""
    priv: str = "NOPRIV"
    priv_key: str = ""
    engine_id: str | None = None  # hex, when configured


def parse_v3_users(text: str) -> list[V3User]:
    """``user:AUTH:authkey:PRIV:privkey[:engineid-hex]`` comma-separated (``SNMP_V3_USERS``).

    Raises:
      InvalidInput: an unknown protocol, or a key shorter than 8 characters (RFC 3414).
    """
    users = []
    for entry in filter(None, (e.strip() for e in text.split(","))):
        parts = entry.split(":")
        if len(parts) < 2:
            raise InvalidInput(
                f"SNMP_V3_USERS entry {parts[0]!r} needs user:AUTH:authkey:PRIV:privkey", field="SNMP_V3_USERS"
            )
        parts += [""] * (6 - len(parts))
        name, auth, auth_key, priv, priv_key, engine_id = parts[:6]
        auth, priv = (auth or "noAuth").upper(), (priv or "noPriv").upper()
        if auth not in AUTH or priv not in PRIV:
            raise InvalidInput(f"SNMP_V3_USERS {name!r}: unknown protocol {auth}/{priv}", field="SNMP_V3_USERS")
        for proto, key in ((auth, auth_key), (priv, priv_key)):
            if proto not in ("NOAUTH", "NOPRIV") and len(key) < 8:
                raise InvalidInput(f"SNMP_V3_USERS {name!r}: keys are at least 8 characters", field="SNMP_V3_USERS")
        if auth == "NOAUTH" and priv != "NOPRIV":
            raise InvalidInput(f"SNMP_V3_USERS {name!r}: privacy needs authentication", field="SNMP_V3_USERS")
        users.append(V3User(name, auth, auth_key, priv, priv_key, engine_id.lower().removeprefix("0x") or None))
    return users


def value_json(value: Any) -> tuple[str, Any]:
    """(type name, JSON value) of a pyasn1 varbind value."""
    kind = type(value).__name__
    if isinstance(value, rfc1902.ObjectIdentifier | api.v2c.ObjectIdentifier):
        return kind, str(value)
    if isinstance(value, rfc1902.IpAddress) or kind == "IpAddress":
        return kind, ".".join(str(b) for b in value.asOctets())
    if isinstance(value, rfc1902.OctetString | api.v2c.OctetString):
        raw = value.asOctets()
        try:
            text = raw.decode("utf-8")
            if text.isprintable() or not text:
                return kind, text
        except UnicodeDecodeError:
            pass
        return kind, "0x" + raw.hex()
    try:
        return kind, int(value)
    except (TypeError, ValueError):
        return kind, value.prettyPrint()


def varbinds_json(varbinds: Any) -> list[list[Any]]:
    return [[str(oid), *value_json(val)] for oid, val in varbinds]


class _Transport(AbstractTransport):
    """A transport that only sends, through a callback; receiving is done by our gevent server."""

    SUPPORTED_DOMAINS = (UDP_DOMAIN,)

    def __init__(self, send: Callable[[bytes, tuple[str, int]], None]) -> None:
        self._send = send

    def send_message(self, outgoingMessage: bytes, transportAddress: Any) -> None:  # noqa: N803 - pysnmp's API
        self._send(bytes(outgoingMessage), (transportAddress[0], transportAddress[1]))

    def close_transport(self) -> None:
        pass


class _Dispatcher(AbstractTransportDispatcher):
    """pysnmp's dispatcher without a loop: we push datagrams in and tick its timer."""

    def __init__(self, send: Callable[[bytes, tuple[str, int]], None]) -> None:
        super().__init__()
        self.transport = _Transport(send)
        self.register_transport(UDP_DOMAIN, self.transport)

    def feed(self, data: bytes, peer: tuple[str, int]) -> None:
        self._callback_function(self.transport, peer, data)

    def run_dispatcher(self, timeout: float = 0.0) -> None:
        pass


class TrapEngine:
    """Authenticate and decode traps and informs.

    Parameters:
      communities: v1/v2c community allow-list (``SNMP_COMMUNITIES``).
      v3_users: USM users (``SNMP_V3_USERS``).
      send: Sends a reply datagram (INFORM acknowledgements, USM reports).
      state_file: Where learned engine ids are kept across restarts (optional).
    """

    def __init__(
        self,
        *,
        communities: list[str] | tuple[str, ...],
        v3_users: list[V3User],
        send: Callable[[bytes, tuple[str, int]], None],
        state_file: str | None = None,
    ) -> None:
        self.communities = {c.encode() for c in communities}
        self.users = {u.name.encode(): u for u in v3_users}
        self.send = send
        self.state_file = state_file
        self.stats = {"received": 0, "accepted": 0, "rejected_community": 0, "rejected_auth": 0, "decode_errors": 0,
                      "informs_acked": 0}  # fmt: skip
        self._engine = engine.SnmpEngine()
        self._dispatcher = _Dispatcher(send)
        self._engine.register_transport_dispatcher(self._dispatcher)
        self._known: set[tuple[bytes, bytes]] = set()
        self._result: dict[str, Any] | None = None
        self._to_us = False
        #: Our own engine id: INFORM senders discover it and localize keys with it.
        self.engine_id = self._engine.snmpEngineID.asOctets()
        for user in v3_users:
            self._add_user(user, self.engine_id)
            if user.engine_id:
                self._add_user(user, bytes.fromhex(user.engine_id))
        for engine_id, name in self._load_state():
            if name in self.users:
                self._add_user(self.users[name], engine_id)
        ntfrcv.NotificationReceiver(self._engine, self._on_v3_notification)

    # -- v3 -----------------------------------------------------------------

    def _add_user(self, user: V3User, engine_id: bytes) -> None:
        key = (engine_id, user.name.encode())
        if key in self._known:
            return
        config.add_v3_user(
            self._engine,
            user.name,
            AUTH[user.auth],
            user.auth_key or None,
            PRIV[user.priv],
            user.priv_key or None,
            securityEngineId=rfc1902.OctetString(engine_id),
        )
        self._known.add(key)

    def _load_state(self) -> list[tuple[bytes, bytes]]:
        if not self.state_file or not os.path.exists(self.state_file):
            return []
        with open(self.state_file) as f:
            return [(bytes.fromhex(e), n.encode()) for e, n in json.load(f)]

    def _save_state(self) -> None:
        if not self.state_file:
            return
        tmp = self.state_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(sorted([e.hex(), n.decode()] for e, n in self._known), f)
        os.replace(tmp, self.state_file)

    def _learn(self, data: bytes) -> str | None:
        """Read the sender's engine id and user from the v3 header; add the user for that engine id.

        Returns the user name, ``""`` for an engine-id discovery probe (an INFORM
        sender asking for our engine id), or None for a user we do not know.
        """
        message, _ = decoder.decode(data, asn1Spec=SNMPv3Message())
        params, _ = decoder.decode(message["msgSecurityParameters"].asOctets(), asn1Spec=UsmSecurityParameters())
        engine_id = params["msgAuthoritativeEngineId"].asOctets()
        name = params["msgUserName"].asOctets()
        if not name or not engine_id:
            # Only a discovery probe (RFC 5343: an empty request) goes on to pysnmp, which
            # answers it with a Report; a notification with no user is never acknowledged.
            return "" if not self._is_notification(message) else None
        user = self.users.get(name)
        if user is None:
            return None
        self._to_us = engine_id == self.engine_id  # authoritative is us: an INFORM
        if self._to_us:
            return user.name
        if user.engine_id and user.engine_id != engine_id.hex():
            return None  # configured for another engine only
        if (engine_id, name) not in self._known:
            self._add_user(user, engine_id)
            logger.info("Learned SNMP engine id %s for user %r.", engine_id.hex(), user.name)
            self._save_state()
        return user.name

    @staticmethod
    def _is_notification(message: Any) -> bool:
        try:
            scoped = message["msgData"].getComponent()
            pdu = scoped["data"].getComponent() if hasattr(scoped, "__getitem__") else None
        except (PyAsn1Error, KeyError, AttributeError, TypeError):
            return False
        return type(pdu).__name__ in ("InformRequestPDU", "SNMPv2TrapPDU")

    def _on_v3_notification(
        self, snmp_engine, state_reference, context_engine_id, context_name, varbinds, cb_ctx
    ) -> None:
        self._result = {"varbinds": varbinds_json(varbinds)}

    def _feed_v3(self, data: bytes, peer: tuple[str, int]) -> dict[str, Any] | None:
        user = self._learn(data)
        if user is None:
            self.stats["rejected_auth"] += 1
            return None
        self._result = None
        self._dispatcher.feed(data, peer)  # pysnmp answers discovery probes and INFORMs through send
        result, self._result = self._result, None
        if user == "":
            return None
        if result is None:
            self.stats["rejected_auth"] += 1
            logger.warning(
                "Dropped an SNMPv3 message from %s for user %r: authentication or decryption failed.", peer[0], user
            )
            return None
        varbinds = result["varbinds"]
        trap_oid = next((v[2] for v in varbinds if v[0] == "1.3.6.1.6.3.1.1.4.1.0"), None)
        if self._to_us:
            self.stats["informs_acked"] += 1
        return {
            "version": "v3",
            "user": user,
            "peer": peer[0],
            "pdu": "inform" if self._to_us else "trap",
            "trap_oid": trap_oid,
            "varbinds": varbinds,
        }

    # -- v1 / v2c -------------------------------------------------------------

    def _feed_community(self, version: int, data: bytes, peer: tuple[str, int]) -> dict[str, Any] | None:
        module = api.PROTOCOL_MODULES[version]
        message, _ = decoder.decode(data, asn1Spec=module.Message())
        if module.apiMessage.get_community(message).asOctets() not in self.communities:
            self.stats["rejected_community"] += 1
            return None
        pdu = module.apiMessage.get_pdu(message)
        kind = PDU_NAMES.get(type(pdu).__name__)
        if kind is None:
            self.stats["decode_errors"] += 1
            return None
        if kind == "trapv1":
            trap = module.apiTrapPDU
            return {
                "version": "v1", "peer": peer[0], "pdu": kind,
                "enterprise": str(trap.get_enterprise(pdu)),
                "agent_address": ".".join(str(b) for b in trap.get_agent_address(pdu).asOctets()),
                "generic_trap": int(trap.get_generic_trap(pdu)), "specific_trap": int(trap.get_specific_trap(pdu)),
                "uptime": int(trap.get_timestamp(pdu)), "varbinds": varbinds_json(trap.get_varbinds(pdu)),
            }  # fmt: skip
        varbinds = varbinds_json(module.apiPDU.get_varbinds(pdu))
        if kind == "inform":
            response = module.apiMessage.get_response(message)
            module.apiPDU.set_varbinds(module.apiMessage.get_pdu(response), module.apiPDU.get_varbinds(pdu))
            self.send(encoder.encode(response), peer)
            self.stats["informs_acked"] += 1
        trap_oid = next((v[2] for v in varbinds if v[0] == "1.3.6.1.6.3.1.1.4.1.0"), None)
        uptime = next((v[2] for v in varbinds if v[0] == "1.3.6.1.2.1.1.3.0"), None)
        return {
            "version": "v2c",
            "peer": peer[0],
            "pdu": kind,
            "trap_oid": trap_oid,
            "uptime": uptime,
            "varbinds": varbinds,
        }

    # -- public ---------------------------------------------------------------

    def feed(self, data: bytes, peer: tuple[str, int]) -> dict[str, Any] | None:
        """One datagram in; the decoded trap out, or None when it is rejected (and counted)."""
        self.stats["received"] += 1
        try:
            version = int(api.decodeMessageVersion(data))
            if version in api.PROTOCOL_MODULES:
                trap = self._feed_community(version, data, peer)
            elif version == 3:
                trap = self._feed_v3(data, peer)
            else:
                raise ValueError(f"SNMP version {version}")
        except (PyAsn1Error, ValueError, KeyError, IndexError, TypeError) as e:
            self.stats["decode_errors"] += 1
            logger.info("Dropped an undecodable SNMP datagram from %s: %s", peer[0], e)
            return None
        if trap is not None:
            self.stats["accepted"] += 1
        return trap

    def tick(self, now: float | None = None) -> None:
        """Drive pysnmp's timers (cache expiry); call every ~0.5 s."""
        self._dispatcher.handle_timer_tick(now if now is not None else time.time())

"""Authenticating and decoding SNMP traps fed as datagrams, without an asyncio loop.

v1 and v2c take a light path: one pyasn1 decode, a community check against the
allow-list, varbinds out (and a Response for a v2c INFORM). v3 goes through a
pysnmp ``SnmpEngine`` with USM: pysnmp's engine accepts bytes from any
transport, so :class:`_Dispatcher` is a transport dispatcher with no event loop
of its own: datagrams are handed to it, and its replies (INFORM acks, reports)
go out through the ``send`` callback. Its timer must be ticked
(:meth:`TrapEngine.tick`, from a greenlet) or USM's caches grow.

Traps come from the authoritative engine (the agent), so USM keys must be
localized with the *sender's* engine id: :class:`app.snmp.usm.UserTable` knows
the configured ones and learns a new one only from a message that authenticated.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from pyasn1.codec.ber import decoder, encoder
from pyasn1.error import PyAsn1Error
from pysnmp.carrier.base import AbstractTransport, AbstractTransportDispatcher
from pysnmp.entity import engine
from pysnmp.entity.rfc3413 import ntfrcv
from pysnmp.proto import api, rfc1902
from pysnmp.proto.mpmod.rfc3412 import SNMPv3Message
from pysnmp.proto.secmod.rfc3414.service import UsmSecurityParameters

from ..ratelimit import LogLimiter, shorten
from . import ber, fast
from .ber import Unsupported
from .usm import (  # noqa: F401 - AUTH, PRIV and parse_v3_users are imported from here too
    AUTH,
    LIMITED,
    PRIV,
    REFUSED,
    TRIAL,
    UserTable,
    V3User,
    parse_v3_users,
)

logger = logging.getLogger(__name__)

UDP_DOMAIN = (1, 3, 6, 1, 6, 1, 1)  # snmpUDPDomain
PDU_NAMES = {"TrapPDU": "trapv1", "SNMPv2TrapPDU": "trap", "InformRequestPDU": "inform"}


def value_json(value: Any) -> tuple[str, Any]:
    """(type name, JSON value) of a pyasn1 varbind value."""
    kind = type(value).__name__
    if isinstance(value, rfc1902.ObjectIdentifier | api.v2c.ObjectIdentifier):
        return kind, str(value)
    if isinstance(value, rfc1902.IpAddress) or kind == "IpAddress":
        return kind, ".".join(str(b) for b in value.asOctets())
    if isinstance(value, rfc1902.OctetString | api.v2c.OctetString) or kind == "OctetString":  # v1's is pyasn1's
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
      state_file: Where engine ids learned from authenticated messages are kept across restarts (optional).
      max_unauthenticated: Engine ids of ``noAuth`` users held in memory (see :class:`UserTable`).
      unauthenticated_per_s: New engine ids of ``noAuth`` users set up per second.
      clock: Seconds, for that rate (default ``time.monotonic``).
      fast_path: Read the common traps with :mod:`app.snmp.fast` (False: everything through pyasn1 and pysnmp,
        which the tests compare it with).
    """

    def __init__(
        self,
        *,
        communities: list[str] | tuple[str, ...],
        v3_users: list[V3User],
        send: Callable[[bytes, tuple[str, int]], None],
        state_file: str | None = None,
        max_unauthenticated: int | None = None,
        unauthenticated_per_s: float | None = None,
        clock: Callable[[], float] | None = None,
        fast_path: bool = True,
    ) -> None:
        self.communities = {c.encode() for c in communities}
        self.users = {u.name.encode(): u for u in v3_users}
        self.send = send
        self.stats = {"received": 0, "accepted": 0, "rejected_community": 0, "rejected_auth": 0, "decode_errors": 0,
                      "informs_acked": 0, "rejected_rate": 0, "engine_ids_learned": 0}  # fmt: skip
        self._engine = engine.SnmpEngine()
        self._dispatcher = _Dispatcher(send)
        self._engine.register_transport_dispatcher(self._dispatcher)
        limits: dict[str, Any] = {"max_unauthenticated": max_unauthenticated,
                                  "unauthenticated_per_s": unauthenticated_per_s, "clock": clock}  # fmt: skip
        self.table = UserTable(
            self._engine, v3_users, state_file=state_file, **{k: v for k, v in limits.items() if v is not None}
        )
        self._log = LogLimiter(logger)
        self._result: dict[str, Any] | None = None
        self._to_us = False
        self._trial: tuple[V3User, bytes] | None = None
        #: Our own engine id: INFORM senders discover it and localize keys with it.
        self.engine_id = self._engine.snmpEngineID.asOctets()
        for user in v3_users:
            self.table.add(user, self.engine_id)
            if user.engine_id:
                self.table.add(user, bytes.fromhex(user.engine_id))
        self.table.load({u.name: u for u in v3_users})
        self.fast_path = fast_path
        self._keys = fast.V3Keys(self.table.masters)
        ntfrcv.NotificationReceiver(self._engine, self._on_v3_notification)

    # -- v3 -----------------------------------------------------------------

    def _learn(self, data: bytes, peer: str) -> str | None:
        """Read the sender's engine id and user from the v3 header; may the message go on to pysnmp?

        A new engine id is set up on trial only when the message authenticates with the
        user's key (:meth:`UserTable.admit`), and kept only when pysnmp accepts it.

        Returns the user name, ``""`` for an engine-id discovery probe (an INFORM
        sender asking for our engine id), or None for a message refused here (counted).
        """
        user, refusal = self._admit(data, peer)
        if refusal == "rejected_auth":
            self._log.log(logging.WARNING, peer, "Dropped an SNMPv3 message from %s: unknown user, engine id or key.",
                          peer)  # fmt: skip
        if refusal:
            self.stats[refusal] += 1
            return None
        return user

    def _admit(self, data: bytes, peer: str) -> tuple[str, str | None]:
        """(user name, None) or ("", the counter of the refusal)."""
        self._trial = None
        message, _ = decoder.decode(data, asn1Spec=SNMPv3Message())
        params, _ = decoder.decode(message["msgSecurityParameters"].asOctets(), asn1Spec=UsmSecurityParameters())
        engine_id = params["msgAuthoritativeEngineId"].asOctets()
        name = params["msgUserName"].asOctets()
        if not name or not engine_id:
            # Only a discovery probe (RFC 5343: an empty request) goes on to pysnmp, which
            # answers it with a Report; a notification with no user is never acknowledged.
            return ("", None) if not self._is_notification(message) else ("", "rejected_auth")
        user = self.users.get(name)
        if user is None:
            return "", "rejected_auth"
        self._to_us = engine_id == self.engine_id  # authoritative is us: an INFORM
        if self._to_us:
            return user.name, None  # pysnmp checks the level of messages to its own engine id (RFC 3414 3.2.5)
        need = fast.level_of(user)
        if message["msgGlobalData"]["msgFlags"].asOctets()[:1] and (
            message["msgGlobalData"]["msgFlags"].asOctets()[0] & need != need
        ):
            # pysnmp would take a message below the user's level (noAuthNoPriv for a user with keys) from an
            # engine id it knows: anyone who saw the user and engine id in clear could forge traps.
            return "", "rejected_auth"
        if user.engine_id and user.engine_id != engine_id.hex():
            return "", "rejected_auth"  # configured for another engine only
        verdict = self.table.admit(user, engine_id, data, message, params, peer)
        if verdict == LIMITED:
            return "", "rejected_rate"
        if verdict == REFUSED:
            return "", "rejected_auth"
        if verdict == TRIAL:
            self._trial = (user, engine_id)
        return user.name, None

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
        user = self._learn(data, peer[0])
        if user is None:
            return None  # counted and logged by _learn
        self._result = None
        self._dispatcher.feed(data, peer)  # pysnmp answers discovery probes and INFORMs through send
        result, self._result = self._result, None
        if self._trial is not None:
            trial, self._trial = self._trial, None
            if result is None:
                self.table.discard(*trial)
            else:
                self.table.confirm(*trial)
                self.stats["engine_ids_learned"] += 1
        if user == "":
            return None
        if result is None:
            self.stats["rejected_auth"] += 1
            self._log.log(
                logging.WARNING, peer[0],
                "Dropped an SNMPv3 message from %s for user %r: authentication or decryption failed.", peer[0], user,
            )  # fmt: skip
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

    # -- the fast path ----------------------------------------------------------

    def _feed_fast(self, data: bytes, peer: tuple[str, int]) -> dict[str, Any] | None:
        """The trap, or None for a community not allowed.

        Raises:
          Unsupported: pysnmp's path must decide.
        """
        version, pos, end = ber.message(data)
        if version in (0, 1):
            community, trap = fast.community_trap(data, version, pos, end, peer[0])
            if community not in self.communities:
                self.stats["rejected_community"] += 1
                return None
            return trap
        if version != 3:
            raise Unsupported(f"version {version}")
        header = fast.V3Header(data, pos, end)
        user = self.users.get(header.user)
        if (
            user is None or user.auth == "NOAUTH" or header.engine_id == self.engine_id
            or not self.table.has(user, header.engine_id)
            or header.flags & 0x07 != fast.level_of(user)  # another level, or a report wanted on failure
        ):  # fmt: skip
            raise Unsupported("not a trap from a user and engine id set up, at the user's level")
        keys = self._keys.of(user, header.engine_id)
        plain = fast.decrypt(user, keys, header) if fast.authenticates(user, keys, header, data) else None
        if plain is None:
            raise Unsupported("authentication or decryption failed")  # pysnmp's path counts and logs it
        varbinds = fast.scoped_trap(plain)
        return {"version": "v3", "user": user.name, "peer": peer[0], "pdu": "trap",
                "trap_oid": fast.varbind(varbinds, fast.SNMP_TRAP_OID), "varbinds": varbinds}  # fmt: skip

    # -- public ---------------------------------------------------------------

    def feed(self, data: bytes, peer: tuple[str, int]) -> dict[str, Any] | None:
        """One datagram in; the decoded trap out, or None when it is rejected (and counted)."""
        self.stats["received"] += 1
        if self.fast_path:
            try:
                trap = self._feed_fast(data, peer)
            except Unsupported:
                pass  # PERF: the exception is the rare case (informs, probes, new engine ids, bad input)
            else:
                if trap is not None:
                    self.stats["accepted"] += 1
                return trap
        try:
            version = int(api.decodeMessageVersion(data))
            if version in api.PROTOCOL_MODULES:
                trap = self._feed_community(version, data, peer)
            elif version == 3:
                trap = self._feed_v3(data, peer)
            else:
                raise ValueError(f"SNMP version {version}")
        except (PyAsn1Error, ValueError, KeyError, IndexError, TypeError, OverflowError) as e:
            # OverflowError: pyasn1 on a length of 8 bytes. The error's text can hold pysnmp's whole schema (tens of KB): logged short and rarely.
            self.stats["decode_errors"] += 1
            self._log.log(
                logging.INFO, peer[0], "Dropped an undecodable SNMP datagram from %s: %s", peer[0], shorten(e)
            )
            return None
        if trap is not None:
            self.stats["accepted"] += 1
        return trap

    def tick(self, now: float | None = None) -> None:
        """Drive pysnmp's timers (cache expiry); call every ~0.5 s."""
        self._dispatcher.handle_timer_tick(now if now is not None else time.time())

"""Authenticating and decoding SNMP traps fed as datagrams, without an asyncio loop.

:class:`TrapEngine` takes one datagram at a time from whatever server reads the
socket (the receiver's gevent ``DatagramServer``) and returns the trap as a
JSON-ready dict, or None when it is rejected (and counted in ``stats``):

- v1/v2c: the community is checked against the allow-list and the message is
  read with :mod:`app.snmp.ber`; a v2c INFORM is acknowledged with a Response.
- v3 traps (the sender is the authoritative engine): :class:`app.snmp.usm.Usm`
  checks the HMAC with keys localized for the sender's engine id, configured
  or learned on first sight, checks the time window and decrypts.
- v3 messages for *our* engine id (INFORMs, and the engine-id discovery and
  time-sync probes an INFORM sender makes first) go through a pysnmp
  ``SnmpEngine``, which knows how to answer them: its transport dispatcher here
  has no loop of its own; datagrams are pushed in, replies leave through
  ``send``, and :meth:`TrapEngine.tick` drives its timers.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from pyasn1.codec.ber import encoder
from pyasn1.error import PyAsn1Error
from pysnmp.carrier.base import AbstractTransport, AbstractTransportDispatcher
from pysnmp.entity import config, engine
from pysnmp.entity.rfc3413 import ntfrcv
from pysnmp.error import PySnmpError
from pysnmp.proto import rfc1902

from . import ber
from .usm import AUTH, LEVELS, PRIV, Rejected, Usm, V3User, parse_v3_users, read_header

__all__ = ["TrapEngine", "V3User", "parse_v3_users"]

logger = logging.getLogger(__name__)

Send = Callable[[bytes, tuple[str, int]], None]

UDP_DOMAIN = (1, 3, 6, 1, 6, 1, 1)  # snmpUDPDomain
SNMP_TRAP_OID = "1.3.6.1.6.3.1.1.4.1.0"
SYS_UP_TIME = "1.3.6.1.2.1.1.3.0"
#: A peer's rejected datagrams are logged at most once in this many seconds.
WARN_EVERY_S = 60.0
#: Newly learned engine ids are written to the state file at most this often, in seconds.
SAVE_EVERY_S = 5.0
#: pysnmp errorIndication names that are protocol steps of an INFORM sender, not failures.
_SYNC_STEPS = frozenset({"unknownEngineID", "notInTimeWindow"})
_NOTIFICATIONS = {ber.TRAP_V2: "trap", ber.INFORM_REQUEST: "inform"}


def read_pdu(data: bytes, pos: int, end: int) -> tuple[str, int, list[list[Any]], int]:
    """A v2 notification PDU (SNMPv2-Trap or InformRequest).

    Returns:
      ``(kind, request id, varbinds, offset of the VarBindList TLV)``.

    Raises:
      ber.BerError: another PDU type, or malformed.
    """
    tag, start, stop = ber.header(data, pos, end)
    kind = _NOTIFICATIONS.get(tag)
    if kind is None:
        raise ber.BerError(f"PDU type 0x{tag:02x} is not a notification")
    request_id, at = ber.read_integer(data, start, stop)
    _status, at = ber.read_integer(data, at, stop)
    _index, list_at = ber.read_integer(data, at, stop)
    list_start, list_stop = ber.expect(data, list_at, stop, ber.SEQUENCE)
    return kind, request_id, ber.varbinds(data, list_start, list_stop), list_at


def _v2_trap(version: str, peer: str, kind: str, varbinds: list[list[Any]]) -> dict[str, Any]:
    trap_oid = next((v[2] for v in varbinds if v[0] == SNMP_TRAP_OID), None)
    uptime = next((v[2] for v in varbinds if v[0] == SYS_UP_TIME), None)
    return {"version": version, "peer": peer, "pdu": kind, "trap_oid": trap_oid, "uptime": uptime, "varbinds": varbinds}


class _Transport(AbstractTransport):
    """pysnmp's side of the socket: it only sends, through a callback."""

    SUPPORTED_DOMAINS = (UDP_DOMAIN,)

    def __init__(self, send: Send) -> None:
        self._send = send

    def send_message(self, outgoingMessage: bytes, transportAddress: Any) -> None:  # noqa: N803 - pysnmp's API
        self._send(bytes(outgoingMessage), (transportAddress[0], transportAddress[1]))

    def close_transport(self) -> None:
        pass


class _Dispatcher(AbstractTransportDispatcher):
    """A pysnmp transport dispatcher with no event loop: datagrams are pushed in, timers ticked from outside."""

    def __init__(self, send: Send) -> None:
        super().__init__()
        self.transport = _Transport(send)
        self.register_transport(UDP_DOMAIN, self.transport)

    def feed(self, data: bytes, peer: tuple[str, int]) -> None:
        self._callback_function(self.transport, peer, data)

    def run_dispatcher(self, timeout: float = 0.0) -> None:
        raise NotImplementedError("datagrams are fed by TrapEngine.feed; there is no loop to run")


class _Authoritative:
    """pysnmp as the authoritative engine: answers discovery and time-sync probes, acknowledges v3 INFORMs."""

    def __init__(self, users: list[V3User], engine_id: bytes | None, send: Send) -> None:
        self.snmp = engine.SnmpEngine(rfc1902.OctetString(engine_id) if engine_id else None)
        self.dispatcher = _Dispatcher(send)
        self.snmp.register_transport_dispatcher(self.dispatcher)
        self.engine_id: bytes = self.snmp.snmpEngineID.asOctets()
        for user in users:  # keys localized with our own engine id: the INFORM sender discovered it
            config.add_v3_user(
                self.snmp, user.name, AUTH[user.auth], user.auth_key or None, PRIV[user.priv], user.priv_key or None
            )
        ntfrcv.NotificationReceiver(self.snmp, self._on_notification)
        self.snmp.observer.register_observer(self._on_failure, "rfc3412.prepareDataElements:sm-failure")
        self._pdu: Any = None
        self._failure = ""

    def _on_notification(self, snmp_engine: Any, state_reference: Any, *args: Any) -> None:
        self._pdu = snmp_engine.observer.get_execution_context("rfc3412.receiveMessage:request")["pdu"]

    def _on_failure(self, snmp_engine: Any, execpoint: str, variables: dict[str, Any], cb_ctx: Any) -> None:
        self._failure = str(variables["statusInformation"].get("errorIndication", ""))

    def feed(self, data: bytes, peer: tuple[str, int]) -> tuple[bytes | None, str]:
        """Returns (the notification PDU's BER encoding, or None; pysnmp's errorIndication, or "")."""
        self._pdu, self._failure = None, ""
        try:
            self.dispatcher.feed(data, peer)  # replies (reports, the INFORM's Response) go out through send
        except (PyAsn1Error, PySnmpError) as e:
            raise ber.BerError(f"pysnmp: {e}") from None
        pdu, self._pdu = self._pdu, None
        return (encoder.encode(pdu) if pdu is not None else None), self._failure


class TrapEngine:
    """Authenticate and decode traps and informs, one datagram at a time.

    Parameters:
      communities: The v1/v2c community allow-list (``SNMP_COMMUNITIES``).
      v3_users: The USM users (``SNMP_V3_USERS``, see :func:`parse_v3_users`).
      send: Sends a reply datagram to an address: INFORM acknowledgements and
        the USM reports of engine-id discovery. Called from :meth:`feed`.
      engine_id: This receiver's own snmpEngineID, which v3 INFORM senders
        discover; give every process behind one port the same one. None: pysnmp
        makes one up per process.
      state_file: Where the (engine id, user) pairs that sent authentic v3 traps
        are recorded, so they are known at the next start (optional).
      max_engines: How many sender engine ids are kept (keys and clocks).
    """

    def __init__(
        self,
        *,
        communities: list[str] | tuple[str, ...],
        v3_users: list[V3User],
        send: Send,
        engine_id: bytes | None = None,
        state_file: str | None = None,
        max_engines: int = 10_000,
    ) -> None:
        self.communities = frozenset(c.encode() for c in communities)
        self.send = send
        self.state_file = state_file
        #: Counters since start: datagrams received, traps accepted, rejections and acknowledgements.
        self.stats = {"received": 0, "accepted": 0, "rejected_community": 0, "rejected_auth": 0, "decode_errors": 0,
                      "informs_acked": 0}  # fmt: skip
        self.usm = Usm(v3_users, max_engines=max_engines)
        self._authoritative = _Authoritative(v3_users, engine_id, send)
        #: Our own snmpEngineID (hex in logs): what INFORM senders localize their keys with.
        self.engine_id = self._authoritative.engine_id
        self._warned: dict[str, float] = {}
        self._unsaved_since: float | None = None
        self._load_state()

    # -- public ---------------------------------------------------------------

    def feed(self, data: bytes, peer: tuple[str, int]) -> dict[str, Any] | None:
        """Authenticate and decode one datagram.

        Parameters:
          data: The UDP payload.
          peer: The sender's (ip, port); replies go there.

        Returns:
          The trap as a JSON-serializable dict (``version``, ``peer``, ``pdu``,
          ``trap_oid``, ``uptime``, ``varbinds`` as ``[oid, type, value]``, and
          ``enterprise``/``agent_address``/``generic_trap``/``specific_trap``
          for v1, ``user``/``engine_id``/``security_level`` for v3), or None when
          it was rejected or was a protocol step, counted in :attr:`stats`.
        """
        self.stats["received"] += 1
        try:
            tag, start, end = ber.header(data, 0, len(data))
            if tag != ber.SEQUENCE or end != len(data):
                raise ber.BerError("not one SEQUENCE")
            version, pos = ber.read_integer(data, start, end)
            if version in (0, 1):
                trap = self._feed_community(version, data, pos, end, peer)
            elif version == 3:
                trap = self._feed_v3(data, peer)
            else:
                raise ber.BerError(f"SNMP version number {version}")
        except ber.BerError as e:
            self.stats["decode_errors"] += 1
            self._warn(peer, "Dropped an undecodable SNMP datagram from %s: %s", peer[0], e)
            return None
        except Rejected as e:
            self.stats["rejected_auth"] += 1
            self._warn(peer, "Dropped an SNMPv3 message from %s: %s.", peer[0], e)
            return None
        if trap is not None:
            self.stats["accepted"] += 1
        return trap

    def tick(self, now: float | None = None) -> None:
        """Drive pysnmp's timers and expire what is kept per sender; call it every ~0.5 s.

        Without it pysnmp's caches of INFORM exchanges and engine clocks are never emptied.
        """
        self._authoritative.dispatcher.handle_timer_tick(now if now is not None else time.time())
        self.usm.expire()
        if self._unsaved_since is not None and time.monotonic() - self._unsaved_since >= SAVE_EVERY_S:
            self.save_state()
        horizon = time.monotonic() - WARN_EVERY_S
        for peer in [p for p, at in self._warned.items() if at < horizon]:
            del self._warned[peer]

    # -- v1 / v2c ---------------------------------------------------------------

    def _feed_community(
        self, version: int, data: bytes, pos: int, end: int, peer: tuple[str, int]
    ) -> dict[str, Any] | None:
        community, pos = ber.read_octets(data, pos, end)
        if community not in self.communities:
            self.stats["rejected_community"] += 1
            self._warn(peer, "Dropped an SNMP v%d message from %s: unknown community.", version + 1, peer[0])
            return None
        if version == 0:
            return self._v1_trap(data, pos, end, peer[0])
        kind, request_id, varbinds, list_at = read_pdu(data, pos, end)
        if kind == "inform":
            pdu = ber.encode_integer(request_id) + b"\x02\x01\x00\x02\x01\x00" + data[list_at:end]  # noError, 0
            body = ber.encode_integer(version) + ber.encode(ber.OCTET_STRING, community)
            self.send(ber.encode(ber.SEQUENCE, body + ber.encode(ber.GET_RESPONSE, pdu)), peer)
            self.stats["informs_acked"] += 1
        return _v2_trap("v2c", peer[0], kind, varbinds)

    @staticmethod
    def _v1_trap(data: bytes, pos: int, end: int, peer: str) -> dict[str, Any]:
        start, stop = ber.expect(data, pos, end, ber.TRAP_V1)
        enterprise_start, enterprise_stop = ber.expect(data, start, stop, ber.OBJECT_IDENTIFIER)
        address_start, address_stop = ber.expect(data, enterprise_stop, stop, ber.IP_ADDRESS)
        generic, at = ber.read_integer(data, address_stop, stop)
        specific, at = ber.read_integer(data, at, stop)
        uptime_start, uptime_stop = ber.expect(data, at, stop, ber.TIMETICKS)
        list_start, list_stop = ber.expect(data, uptime_stop, stop, ber.SEQUENCE)
        return {
            "version": "v1", "peer": peer, "pdu": "trapv1",
            "enterprise": ber.oid(data, enterprise_start, enterprise_stop),
            "agent_address": ber.value(ber.IP_ADDRESS, data, address_start, address_stop)[1],
            "generic_trap": generic, "specific_trap": specific,
            "uptime": int.from_bytes(data[uptime_start:uptime_stop], "big"),
            "varbinds": ber.varbinds(data, list_start, list_stop),
        }  # fmt: skip

    # -- v3 -----------------------------------------------------------------------

    def _feed_v3(self, data: bytes, peer: tuple[str, int]) -> dict[str, Any] | None:
        head = read_header(data)
        if head.engine_id and head.engine_id != self.engine_id:
            user, scoped, learned = self.usm.unwrap(data, head)  # a trap: the sender is authoritative
            if learned:
                logger.info("Learned SNMP engine id %s for user %r from %s.", head.engine_id.hex(), user.name, peer[0])
                self._unsaved_since = self._unsaved_since or time.monotonic()
            level = head.flags & 3
            try:
                start, stop = ber.expect(scoped, 0, len(scoped), ber.SEQUENCE)  # DES padding may follow
                _context_engine, at = ber.read_octets(scoped, start, stop)
                _context_name, at = ber.read_octets(scoped, at, stop)
                kind, _, varbinds, _ = read_pdu(scoped, at, stop)
            except ber.BerError as e:
                if level == 3:  # authentic, but it does not decrypt to a ScopedPDU
                    raise Rejected(f"wrong privacy key for user {user.name!r}? ({e})") from None
                raise
            if kind != "trap":
                raise ber.BerError("an INFORM must be sent to the receiver's engine id")
        else:  # addressed to us: an INFORM, or its sender discovering our engine id and clock
            user_entry = self.usm.users.get(head.user)
            if head.user and user_entry is None:
                raise Rejected(f"unknown user {head.user!r}")
            level = head.flags & 3
            if user_entry is not None and level != user_entry.level:
                raise Rejected(f"{LEVELS.get(level)} message for {LEVELS[user_entry.level]} user {head.user!r}")
            pdu, failure = self._authoritative.feed(data, peer)
            if pdu is None:
                if failure and failure not in _SYNC_STEPS and head.user:
                    raise Rejected(f"pysnmp: {failure}")
                return None
            assert user_entry is not None  # pysnmp accepted it, so the user is one of ours
            user = user_entry
            kind, _, varbinds, _ = read_pdu(pdu, 0, len(pdu))
            if kind == "inform":
                self.stats["informs_acked"] += 1
        trap = _v2_trap("v3", peer[0], kind, varbinds)
        trap.update(user=user.name, engine_id=head.engine_id.hex(), security_level=LEVELS[level])
        return trap

    # -- state and logs -----------------------------------------------------------

    def _load_state(self) -> None:
        if not self.state_file or not os.path.exists(self.state_file):
            return
        try:
            with open(self.state_file) as f:
                pairs = [(bytes.fromhex(e), n.encode()) for e, n in json.load(f)]
        except (OSError, ValueError, TypeError) as e:
            logger.warning("Ignored the SNMP engine id file %r: %s", self.state_file, e)
            return
        for engine_id, name in pairs:
            user = self.usm.users.get(name)
            if user is not None and user.auth != "NOAUTH" and user.engine_id in (None, engine_id.hex()):
                self.usm.remember(engine_id, name, self.usm.localize(user, engine_id))

    def save_state(self) -> None:
        """Write the learned engine ids to ``state_file`` now (:meth:`tick` does it, batched)."""
        self._unsaved_since = None
        if not self.state_file:
            return
        tmp = f"{self.state_file}.{os.getpid()}.tmp"  # several processes may share the file
        try:
            with open(tmp, "w") as f:
                json.dump([[e.hex(), n.decode()] for e, n in self.usm.known()], f)
            os.replace(tmp, self.state_file)
        except OSError as e:
            logger.warning("Could not record SNMP engine ids in %r: %s", self.state_file, e)

    def _warn(self, peer: tuple[str, int], message: str, *args: Any) -> None:
        # A misconfigured or hostile sender must not flood the log: one line per peer a minute.
        now = time.monotonic()
        if now - self._warned.get(peer[0], -WARN_EVERY_S) >= WARN_EVERY_S:
            self._warned[peer[0]] = now
            logger.warning(message, *args)

"""SNMPv3 USM users per sender engine id: which pairs pysnmp knows, and how a new one is learned.

Traps come from the authoritative engine (the agent), so a user's keys are
localized with the *sender's* engine id: engine ids are configured per user,
or learned from a sender's first message. Anyone can put any engine id in a
datagram, so an engine id is learned (kept, and written to the state file) only
once a message from it authenticated: its HMAC is checked here with the user's
master key, which costs microseconds, before pysnmp is asked to set the user up
(milliseconds). A user without authentication (``noAuth``) proves nothing: its
engine ids are held in memory only, least recently used forgotten first, and
new ones are rate-limited.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pysnmp.entity import config
from pysnmp.proto import error as snmp_error
from pysnmp.proto import rfc1902

from ..errors import InvalidInput
from ..ratelimit import LogLimiter, TokenBucket

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

#: Engine ids of ``noAuth`` senders held in memory (pysnmp keeps a user row for each).
MAX_UNAUTHENTICATED_ENGINE_IDS = 256
#: New ``noAuth`` engine ids set up per second (pysnmp needs ~5 ms for each); more are refused and counted.
UNAUTHENTICATED_ENGINE_IDS_PER_S = 20.0

#: Verdicts of :meth:`UserTable.admit`.
KNOWN, TRIAL, REFUSED, LIMITED = "known", "trial", "refused", "limited"


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


class UserTable:
    """The (engine id, user) pairs set up in a pysnmp engine.

    Parameters:
      snmp_engine: The pysnmp ``SnmpEngine`` whose USM table is kept.
      users: Configured users.
      state_file: Where engine ids learned from authenticated messages are kept across restarts (optional).
      max_unauthenticated: ``noAuth`` engine ids held in memory.
      unauthenticated_per_s: New ``noAuth`` engine ids set up per second.
      clock: Seconds, for that rate (tests give a still one).
    """

    def __init__(
        self,
        snmp_engine: Any,
        users: list[V3User],
        *,
        state_file: str | None = None,
        max_unauthenticated: int = MAX_UNAUTHENTICATED_ENGINE_IDS,
        unauthenticated_per_s: float = UNAUTHENTICATED_ENGINE_IDS_PER_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = snmp_engine
        self.state_file = state_file
        self.max_unauthenticated = max_unauthenticated
        self._new_unauthenticated = TokenBucket(rate=unauthenticated_per_s, burst=unauthenticated_per_s, clock=clock)
        self._log = LogLimiter(logger)
        # PERF: the pass phrase -> master key step hashes 1 MB; done once per user, not per engine id.
        self._masters = {u.name: self._master_keys(u) for u in users}
        self._rows: set[tuple[bytes, str]] = set()  # configured, ours and learned: kept for good
        self._learned: set[tuple[bytes, str]] = set()  # learned from an authenticated message: persisted
        self._unauthenticated: OrderedDict[tuple[bytes, str], None] = OrderedDict()  # noAuth, least recent first

    @staticmethod
    def _master_keys(user: V3User) -> tuple[Any, Any]:
        auth = config.AUTH_SERVICES[AUTH[user.auth]]
        priv = config.PRIV_SERVICES[PRIV[user.priv]]
        auth_master = auth.hash_passphrase(rfc1902.OctetString(user.auth_key)) if user.auth != "NOAUTH" else None
        priv_master = (
            priv.hash_passphrase(AUTH[user.auth], rfc1902.OctetString(user.priv_key)) if user.priv != "NOPRIV" else None
        )
        return auth_master, priv_master

    # -- rows in pysnmp -----------------------------------------------------------

    def _add(self, user: V3User, engine_id: bytes) -> None:
        auth_master, priv_master = self._masters[user.name]
        config.add_v3_user(
            self._engine,
            user.name,
            AUTH[user.auth],
            auth_master,
            PRIV[user.priv],
            priv_master,
            securityEngineId=rfc1902.OctetString(engine_id),
            authKeyType=config.USM_KEY_TYPE_MASTER,
            privKeyType=config.USM_KEY_TYPE_MASTER,
        )

    def _remove(self, name: str, engine_id: bytes) -> None:
        config.delete_v3_user(self._engine, name, securityEngineId=rfc1902.OctetString(engine_id))

    def add(self, user: V3User, engine_id: bytes) -> None:
        """Set ``user`` up for ``engine_id`` for good (configured engine ids, our own)."""
        key = (engine_id, user.name)
        if key not in self._rows:
            self._add(user, engine_id)
            self._rows.add(key)

    @property
    def masters(self) -> dict[str, tuple[Any, Any]]:
        """Each user's (auth, priv) master keys, hashed from the pass phrases once."""
        return self._masters

    def has(self, user: V3User, engine_id: bytes) -> bool:
        return (engine_id, user.name) in self._rows

    @property
    def learned(self) -> frozenset[tuple[bytes, str]]:
        """(engine id, user name) pairs learned from authenticated messages (and loaded from the state file)."""
        return frozenset(self._learned)

    # -- learning -------------------------------------------------------------------

    def admit(self, user: V3User, engine_id: bytes, data: bytes, message: Any, params: Any, peer: str) -> str:
        """May the message ``data`` from ``engine_id`` for ``user`` go on to pysnmp?

        Returns:
          :data:`KNOWN` (the pair is set up), :data:`TRIAL` (it authenticated and is set up
          until pysnmp decides: call :meth:`confirm` or :meth:`discard`), :data:`REFUSED`
          (the HMAC does not verify, or no authentication where the user needs it) or
          :data:`LIMITED` (a new ``noAuth`` engine id over the rate).
        """
        key = (engine_id, user.name)
        if key in self._rows:
            return KNOWN
        if user.auth == "NOAUTH":
            return self._admit_unauthenticated(user, engine_id, peer)
        if not self._authenticates(user, engine_id, data, message, params):
            return REFUSED
        self._add(user, engine_id)
        return TRIAL

    def _authenticates(self, user: V3User, engine_id: bytes, data: bytes, message: Any, params: Any) -> bool:
        flags = message["msgGlobalData"]["msgFlags"].asOctets()
        if not flags or not flags[0] & 0x01:
            return False  # no authentication claimed: USM would take it as noAuthNoPriv
        service = config.AUTH_SERVICES[AUTH[user.auth]]
        local_key = service.localize_key(self._masters[user.name][0], rfc1902.OctetString(engine_id))
        try:
            service.authenticate_incoming_message(local_key, params["msgAuthenticationParameters"], data)
        except (snmp_error.StatusInformation, snmp_error.ProtocolError):
            return False
        return True

    def _admit_unauthenticated(self, user: V3User, engine_id: bytes, peer: str) -> str:
        key = (engine_id, user.name)
        if key in self._unauthenticated:
            self._unauthenticated.move_to_end(key)
            return KNOWN
        if not self._new_unauthenticated.take():
            self._log.log(
                logging.WARNING, peer, "Refused a new SNMPv3 engine id from %s for user %r: too many new ones per second.",
                peer, user.name,
            )  # fmt: skip
            return LIMITED
        self._add(user, engine_id)
        self._unauthenticated[key] = None
        while len(self._unauthenticated) > self.max_unauthenticated:
            (old_engine_id, old_name), _ = self._unauthenticated.popitem(last=False)
            self._remove(old_name, old_engine_id)
        return KNOWN

    def confirm(self, user: V3User, engine_id: bytes) -> None:
        """pysnmp accepted the message of a :data:`TRIAL`: keep the engine id and persist it."""
        key = (engine_id, user.name)
        self._rows.add(key)
        self._learned.add(key)
        logger.info("Learned SNMP engine id %s for user %r.", engine_id.hex(), user.name)
        self.save()

    def discard(self, user: V3User, engine_id: bytes) -> None:
        """pysnmp refused the message of a :data:`TRIAL` (decryption failed): forget the engine id."""
        self._remove(user.name, engine_id)

    # -- the state file -------------------------------------------------------------

    def load(self, users: dict[str, V3User]) -> None:
        """Set up the engine ids kept in the state file, for users still configured."""
        if not self.state_file or not os.path.exists(self.state_file):
            return
        with open(self.state_file) as f:
            pairs = [(bytes.fromhex(e), n) for e, n in json.load(f)]
        for engine_id, name in pairs:
            user = users.get(name)
            if user is not None and user.auth != "NOAUTH":
                self.add(user, engine_id)
                self._learned.add((engine_id, name))

    def save(self) -> None:
        if not self.state_file:
            return
        tmp = self.state_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(sorted([e.hex(), n] for e, n in self._learned), f)
        os.replace(tmp, self.state_file)

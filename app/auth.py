"""API keys: creation, hashing, roles and verification.

Keys are 32 random bytes (URL-safe base64, prefixed ``oc_``); only their SHA-256
is stored. A fast hash is right here: the key has 256 bits of entropy, so there
is nothing to brute-force, and every request verifies one.

A key belongs to a person (``person``, by default the key's name): two-person rules
compare persons, so one person's two keys never approve each other's requests.

The web tier keeps answering while the database is away: a key verified within
:data:`STALE_S` stays valid (see :class:`KeyStore`).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from . import audit
from .db import database, in_transaction
from .errors import DatabaseUnavailable
from .models import ApiKey
from .roles import ROLE_PERMISSIONS, ROLES

logger = logging.getLogger(__name__)


#: How long a verified key is trusted without asking the database again (revocation delay).
CACHE_TTL_S = 30.0
#: How long after its last verification a key stays valid while the database cannot be asked.
STALE_S = 3600.0
#: After the database failed to answer, how long keys are served from the cache without asking
#: it again (so an outage costs one failed connection per interval, not one per request).
OUTAGE_RETRY_S = 2.0
#: Cached verifications per process (known and unknown keys).
MAX_CACHED_KEYS = 10_000


@dataclass(frozen=True)
class Principal:
    """Who is calling: a key, its role, and the person who holds it (default: the key's name)."""

    key_id: int
    name: str
    role: str
    person: str = ""

    def __post_init__(self) -> None:
        if not self.person:
            object.__setattr__(self, "person", self.name)

    def may(self, permission: str) -> bool:
        return permission in ROLE_PERMISSIONS.get(self.role, frozenset())


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


#: :func:`hash_key` of the keys seen lately. PERF: a SHA-256 per request was ~2 % of accepting one event.
_digest = functools.lru_cache(maxsize=1024)(hash_key)


def generate_key() -> str:
    return "oc_" + secrets.token_urlsafe(32)


def create_key(*, role: str, name: str, key: str | None = None, actor: str = "cli", person: str | None = None) -> str:
    """Store a new key (or the given one) with ``role`` and return it in clear, once.

    Parameters:
      person: Who holds the key; None means the key's name (and keeps the person of an existing key).

    Raises:
      ValueError: ``role`` is not one of :data:`ROLES`, or ``person`` is blank.
    """
    if role not in ROLE_PERMISSIONS:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    if person is not None and not person.strip():
        raise ValueError("person must name someone")
    key = key or generate_key()
    update: dict[Any, Any] = {ApiKey.role: role, ApiKey.name: name, ApiKey.revoked_at: None}
    if person is not None:
        update[ApiKey.person] = person.strip()

    def work() -> None:
        ApiKey.insert(name=name, role=role, key_hash=hash_key(key), prefix=key[:10],
                      person=person.strip() if person else None).on_conflict(
            conflict_target=[ApiKey.key_hash], update=update,
        ).execute()  # fmt: skip
        key_id = ApiKey.get(ApiKey.key_hash == hash_key(key)).id
        audit.record(audit.Action.API_KEY_CREATED, actor=actor, subject=f"api_key:{key_id}",
                     details={"name": name, "role": role, "prefix": key[:10], "person": person or name})  # fmt: skip

    in_transaction(work)
    return key


class KeyStore:
    """Verifies bearer keys against the database, with a short in-process cache.

    A verified key is trusted for ``ttl_s`` without asking again (the delay before a revocation
    is seen). When the database cannot be asked, a key verified within the last ``stale_s``
    stays valid, so the web tier keeps accepting through an outage; a key not verified in that
    time (or never) is refused with :class:`DatabaseUnavailable` (503), and once the database
    answers again every key is checked against it, so revocations hold.
    """

    def __init__(self, *, ttl_s: float = CACHE_TTL_S, stale_s: float = STALE_S,
                 outage_retry_s: float = OUTAGE_RETRY_S) -> None:  # fmt: skip
        self._ttl_s, self._stale_s, self._outage_retry_s = ttl_s, stale_s, outage_retry_s
        #: digest -> (fresh until, valid while the database is away until, principal); monotonic seconds.
        self._cache: dict[str, tuple[float, float, Principal | None]] = {}
        self._lock = threading.Lock()
        #: digest -> the lock of the lookup in flight for it: one lookup per key at a time.
        self._lookups: dict[str, threading.Lock] = {}
        self._down_until = 0.0

    def verify(self, key: str) -> Principal | None:
        """Return the principal of ``key``, or None when it is unknown or revoked.

        Raises:
          DatabaseUnavailable: the database could not be asked and the key was not verified
            within the last ``stale_s`` seconds.
        """
        digest = _digest(key)
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and hit[0] > now:
            return hit[2]
        if now < self._down_until:
            return self._stale(hit, now, DatabaseUnavailable("the database is unavailable"))
        # When a key's entry expires, every request in flight with it misses at once (a web worker
        # holds dozens): one asks the database, the others wait for its answer rather than each
        # taking a pooled connection for the same row.
        with self._lock:
            lookup_lock = self._lookups.setdefault(digest, threading.Lock())
        with lookup_lock:
            hit, now = self._cache.get(digest), time.monotonic()
            if hit is not None and hit[0] > now:
                return hit[2]  # the lookup this request waited for answered
            if now < self._down_until:  # ... or found the database away
                return self._stale(hit, now, DatabaseUnavailable("the database is unavailable"))
            try:
                return self._lookup(digest, hit, now)
            finally:
                with self._lock:
                    if self._lookups.get(digest) is lookup_lock:
                        del self._lookups[digest]

    def _lookup(self, digest: str, hit: tuple[float, float, Principal | None] | None, now: float) -> Principal | None:
        """Ask the database for the key of ``digest`` and cache the answer."""

        def lookup() -> Principal | None:
            row = ApiKey.get_or_none((ApiKey.key_hash == digest) & ApiKey.revoked_at.is_null())
            return Principal(row.id, row.name, row.role, row.person or row.name) if row else None

        # The lookup hands back a connection it had to take: ingest requests keep none (ReleaseDatabase skips them).
        # A request that already held one (it is mid-work) keeps it.
        borrowed = database.obj is not None and database.is_closed()
        try:
            principal = in_transaction(lookup)
        except DatabaseUnavailable as e:
            self._down_until = now + self._outage_retry_s
            logger.warning("Cannot verify keys in the database (%s): keys verified in the last %.0f s stay valid.",
                           e, self._stale_s)  # fmt: skip
            return self._stale(hit, now, e)
        finally:
            if borrowed and not database.is_closed():
                database.close()
        with self._lock:
            if len(self._cache) >= MAX_CACHED_KEYS:
                # Unknown keys (anyone can send them) must not push out the keys an outage relies on.
                self._cache = {d: e for d, e in self._cache.items() if e[2] is not None and e[1] > now}
                if len(self._cache) >= MAX_CACHED_KEYS:
                    self._cache.clear()
            self._cache[digest] = (now + self._ttl_s, now + self._stale_s, principal)
        return principal

    def _stale(self, hit: tuple[float, float, Principal | None] | None, now: float, error: DatabaseUnavailable
               ) -> Principal:  # fmt: skip
        """The cached principal while the database is away, if it was verified recently enough."""
        if hit is None or hit[2] is None or hit[1] <= now:
            raise error
        return hit[2]

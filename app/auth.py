"""API keys: creation, hashing, roles and verification.

Keys are 32 random bytes (URL-safe base64, prefixed ``oc_``); only their SHA-256
is stored. A fast hash is right here: the key has 256 bits of entropy, so there
is nothing to brute-force, and every request verifies one.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from dataclasses import dataclass

from .db import in_transaction
from .models import ApiKey, AuditLog
from .roles import ROLE_PERMISSIONS, ROLES

logger = logging.getLogger(__name__)


#: How long a verified key is trusted without asking the database again (revocation delay).
CACHE_TTL_S = 30.0


@dataclass(frozen=True)
class Principal:
    """Who is calling."""

    key_id: int
    name: str
    role: str

    def may(self, permission: str) -> bool:
        return permission in ROLE_PERMISSIONS.get(self.role, frozenset())


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def generate_key() -> str:
    return "oc_" + secrets.token_urlsafe(32)


def create_key(*, role: str, name: str, key: str | None = None, actor: str = "cli") -> str:
    """Store a new key (or the given one) with ``role`` and return it in clear, once.

    Raises:
      ValueError: ``role`` is not one of :data:`ROLES`.
    """
    if role not in ROLE_PERMISSIONS:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    key = key or generate_key()

    def work() -> None:
        ApiKey.insert(name=name, role=role, key_hash=hash_key(key), prefix=key[:10]).on_conflict(
            conflict_target=[ApiKey.key_hash],
            update={ApiKey.role: role, ApiKey.name: name, ApiKey.revoked_at: None},
        ).execute()
        AuditLog.create(actor=actor, action="api_key.create", subject=name, details={"role": role, "prefix": key[:10]})

    in_transaction(work)
    return key


class KeyStore:
    """Verifies bearer keys against the database, with a short in-process cache."""

    def __init__(self, *, ttl_s: float = CACHE_TTL_S) -> None:
        self._ttl_s = ttl_s
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()

    def verify(self, key: str) -> Principal | None:
        """Return the principal of ``key``, or None when it is unknown or revoked.

        Raises:
          DatabaseUnavailable: the database could not be asked.
        """
        digest = hash_key(key)
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]

        def lookup() -> Principal | None:
            row = ApiKey.get_or_none((ApiKey.key_hash == digest) & ApiKey.revoked_at.is_null())
            return Principal(row.id, row.name, row.role) if row else None

        principal = in_transaction(lookup)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (now + self._ttl_s, principal)
        return principal

"""Console sign-in: server-side sessions opened with an API key, their cookie, and flash messages.

A person signs in once with an API key; the console then knows them by the ``oc_session``
cookie, which holds a random token whose SHA-256 is the session's row id (a copy of the table
signs nobody in). The session acts with the key's role, and the lookup joins the key, so
revoking a key ends its sessions at once. A session expires :data:`IDLE_HOURS` after it was
last used; every form it shows carries its CSRF token.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import falcon

from .. import audit
from ..auth import Principal
from ..db import in_transaction
from ..models import ApiKey, ConsoleSession
from ..models.console import delete_expired_sessions
from ..timeutil import now

logger = logging.getLogger(__name__)

#: The session cookie (HttpOnly, SameSite=Strict, Path=/console, Secure over HTTPS).
COOKIE = "oc_session"
#: The sign-in form's double-submit CSRF cookie (there is no session yet to tie a token to).
LOGIN_COOKIE = "oc_login_csrf"
#: Where the cookies are sent: the console only, never the API.
COOKIE_PATH = "/console"
#: Hours a session lives after its last use (sliding expiry).
IDLE_HOURS = 12
#: Seconds between two refreshes of a session's expiry; PERF: not one write per page view.
TOUCH_INTERVAL_S = 60
#: Roles that may sign in: the console shows things, so a key needs ``read``.
SIGN_IN_PERMISSION = "read"


@dataclass
class Signed:
    """A signed-in session as a request sees it."""

    digest: str
    principal: Principal
    csrf_token: str
    expires_at: datetime
    flashes: list[dict[str, str]] = field(default_factory=list)


def digest_of(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(principal: Principal, *, at: datetime | None = None) -> str:
    """Open a session for ``principal`` and return its token (the cookie's value), once.

    Expired sessions are deleted on the way (and by the clock every hour), so the table holds only live ones.
    """
    at = at or now()
    token = secrets.token_urlsafe(32)

    def work() -> None:
        delete_expired_sessions(at)
        ConsoleSession.create(id=digest_of(token), key_id=principal.key_id, csrf_token=secrets.token_urlsafe(32),
                              created_at=at, last_seen_at=at, expires_at=at + timedelta(hours=IDLE_HOURS))  # fmt: skip
        audit.record(audit.Action.CONSOLE_SESSION_STARTED, actor=_actor(principal), subject=f"api_key:{principal.key_id}",
                     details={"role": principal.role})  # fmt: skip

    in_transaction(work)
    logger.info("Console session started for key %r (%s).", principal.key_id, principal.role)
    return token


def find(token: str | None, *, at: datetime | None = None) -> Signed | None:
    """The live session of ``token``, its expiry slid forward; None when unknown, expired or its key revoked."""
    if not token:
        return None
    at = at or now()
    digest = digest_of(token)

    def work() -> Signed | None:
        row = (
            ConsoleSession.select(ConsoleSession, ApiKey)
            .join(ApiKey, on=(ConsoleSession.key_id == ApiKey.id))
            .where(ConsoleSession.id == digest, ConsoleSession.expires_at > at, ApiKey.revoked_at.is_null())
            .first()
        )
        if row is None:
            return None
        key = row.apikey
        expires_at = row.expires_at
        if (at - row.last_seen_at).total_seconds() >= TOUCH_INTERVAL_S:
            expires_at = at + timedelta(hours=IDLE_HOURS)
            ConsoleSession.update(last_seen_at=at, expires_at=expires_at).where(ConsoleSession.id == digest).execute()
        return Signed(digest=digest, principal=Principal(key.id, key.name, key.role, key.person or key.name),
                      csrf_token=row.csrf_token, expires_at=expires_at, flashes=list(row.flashes or []))  # fmt: skip

    return in_transaction(work)


def end(signed: Signed) -> None:
    """Sign out: the session's row is deleted, so its cookie opens nothing any more."""

    def work() -> None:
        ConsoleSession.delete().where(ConsoleSession.id == signed.digest).execute()
        audit.record(audit.Action.CONSOLE_SESSION_ENDED, actor=_actor(signed.principal),
                     subject=f"api_key:{signed.principal.key_id}")  # fmt: skip

    in_transaction(work)
    logger.info("Console session of key %r ended.", signed.principal.key_id)


def flash(signed: Signed | None, text: str, *, kind: str = "ok") -> None:
    """Show ``text`` on the next page this session sees (``kind``: ``ok`` or ``error``)."""
    if signed is None:
        return
    signed.flashes.append({"kind": kind, "text": text})
    in_transaction(lambda: ConsoleSession.update(flashes=signed.flashes).where(
        ConsoleSession.id == signed.digest).execute())  # fmt: skip


def take_flashes(signed: Signed | None) -> list[dict[str, str]]:
    """The messages waiting for this session, cleared (one write, only when there are some)."""
    if signed is None or not signed.flashes:
        return []
    taken, signed.flashes = signed.flashes, []
    in_transaction(lambda: ConsoleSession.update(flashes=None).where(ConsoleSession.id == signed.digest).execute())
    return taken


def tokens_match(given: Any, expected: str | None) -> bool:
    """Constant-time comparison of a form's CSRF token with the expected one."""
    return isinstance(given, str) and bool(given) and bool(expected) and hmac.compare_digest(given, expected or "")


def is_https(req: falcon.Request) -> bool:
    """Whether the browser talks HTTPS to us (directly, or to a proxy that says so in X-Forwarded-Proto)."""
    return req.forwarded_scheme == "https" or req.scheme == "https"


def set_cookie(req: falcon.Request, resp: falcon.Response, name: str, value: str, *, max_age_s: int | None) -> None:
    resp.set_cookie(name, value, max_age=max_age_s, path=COOKIE_PATH, secure=is_https(req), http_only=True,
                    same_site="Strict")  # fmt: skip


def clear_cookie(req: falcon.Request, resp: falcon.Response, name: str) -> None:
    resp.unset_cookie(name, path=COOKIE_PATH, same_site="Strict")


def _actor(principal: Principal) -> str:
    return f"key:{principal.key_id}:{principal.name}"

"""Expired console sessions are deleted by the clock's sweep, not only when someone signs in."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from app.auth import Principal
from app.console import session
from app.db import in_transaction
from app.models import ApiKey, ConsoleSession


def _sign_in(at: datetime) -> str:
    key = in_transaction(
        lambda: ApiKey.create(prefix="abcd1234", key_hash=secrets.token_hex(32), role="viewer", name="alice")
    )
    return session.start(Principal(key.id, "alice", "viewer", "alice"), at=at)


def _digests() -> set[str]:
    return {row.id for row in in_transaction(lambda: list(ConsoleSession.select()))}


def test_the_clock_deletes_expired_console_sessions_and_keeps_live_ones(stub_broker, sqlite_db):
    from app import clock
    from app.config import Settings

    # Given a session opened now and one opened more than IDLE_HOURS ago (signed in last: a sign-in prunes)
    live_token = _sign_in(datetime.now(UTC))
    expired = session.digest_of(_sign_in(datetime.now(UTC) - timedelta(hours=session.IDLE_HOURS + 1)))
    assert _digests() == {expired, session.digest_of(live_token)}
    # When the clock sweeps once, with nobody signing in (and no retention purge)
    clock.run(Settings(retention_days=0), interval_s=1, once=True)
    # Then only the live session is left, and it still signs its holder in
    assert _digests() == {session.digest_of(live_token)}
    assert session.find(live_token) is not None


def test_pruning_deletes_only_sessions_expired_at_the_instant_given(sqlite_db):
    from app.models.console import delete_expired_sessions

    # Given a session opened at t0 (it expires at t0 + IDLE_HOURS)
    t0 = datetime.now(UTC)
    digest = session.digest_of(_sign_in(t0))
    # When sessions are pruned a second before its expiry, then at it
    before = in_transaction(lambda: delete_expired_sessions(t0 + timedelta(hours=session.IDLE_HOURS, seconds=-1)))
    kept = _digests()
    at = in_transaction(lambda: delete_expired_sessions(t0 + timedelta(hours=session.IDLE_HOURS)))
    # Then it is kept by the first and deleted by the second
    assert (before, kept) == (0, {digest})
    assert (at, _digests()) == (1, set())

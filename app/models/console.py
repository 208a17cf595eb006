"""The web console's server-side sessions (``/console``)."""

from __future__ import annotations

from datetime import datetime

import peewee

from ..db import BaseModel, JSONField, TimestampField
from ..timeutil import now


class ConsoleSession(BaseModel):
    """A person signed in to the console with an API key; the cookie holds a token, the row its SHA-256.

    The session acts with its key's role: a revoked key ends its sessions (the lookup joins the
    key and requires it unrevoked). ``expires_at`` slides forward while the session is used.
    """

    #: SHA-256 (hex) of the random token in the ``oc_session`` cookie: a stolen table signs nobody in.
    id = peewee.CharField(max_length=64, primary_key=True)
    key_id = peewee.BigIntegerField(index=True)
    #: The token every form of this session carries (``csrf_token``).
    csrf_token = peewee.CharField(max_length=64)
    created_at = TimestampField(default=now)
    last_seen_at = TimestampField(default=now)
    expires_at = TimestampField(index=True)
    #: Messages to show on the next page (``[{"kind": "ok"|"error", "text": ...}]``), then cleared.
    flashes = JSONField(null=True)

    class Meta:
        schema = "ops"
        table_name = "console_sessions"


def delete_expired_sessions(at: datetime) -> int:
    """Delete the sessions expired at ``at`` (call inside a transaction); return how many went.

    Sign-in calls it, and so does the clock's hourly sweep, so a console nobody signs in to does
    not keep every past session (``expires_at`` is indexed: one range delete).
    """
    return int(ConsoleSession.delete().where(ConsoleSession.expires_at <= at).execute())

"""Tables the features need beyond the spec's schemas: API keys and the audit log."""

from __future__ import annotations

import re
from typing import Any

import peewee

from ..db import BaseModel, JSONField, TimestampField
from ..timeutil import now

#: How the web tier names a key in ``actor`` strings: ``key:<id>:<name>`` (see ``app.http.middleware``).
KEY_ACTOR = re.compile(r"key:(\d+):(.*)", re.DOTALL)


class ApiKey(BaseModel):
    """A bearer key; only its SHA-256 is stored."""

    id = peewee.BigAutoField()
    name = peewee.CharField(max_length=200)
    #: The person who holds the key (two-person rules compare persons, not keys); None: the key's name.
    person = peewee.CharField(max_length=200, null=True)
    role = peewee.CharField(max_length=20)
    key_hash = peewee.CharField(max_length=64, unique=True)
    prefix = peewee.CharField(max_length=12)
    created_at = TimestampField(default=now)
    revoked_at = TimestampField(null=True)

    class Meta:
        schema = "ops"
        table_name = "api_keys"


class AuditLog(BaseModel):
    """Append-only record of who did what, when and why."""

    id = peewee.BigAutoField()
    at = TimestampField(default=now, index=True)
    actor = peewee.CharField(max_length=200)
    #: The person behind ``actor`` (its key's person), filled on save when not given.
    person = peewee.CharField(max_length=200, null=True)
    action = peewee.CharField(max_length=100)
    subject = peewee.CharField(max_length=200, null=True)
    details = JSONField(null=True)

    class Meta:
        schema = "ops"
        table_name = "audit_log"

    def save(self, *args: Any, **kwargs: Any) -> Any:
        if self.person is None and self.actor:
            self.person = person_of(self.actor)
        return super().save(*args, **kwargs)


def person_of(actor: str) -> str:
    """The person behind an ``actor`` string (call inside a transaction).

    A key's actor (``key:<id>:<name>``) resolves to the person its row names, or to its name when
    it names none (or the row is gone); any other actor (``decider``, ``system:timeout``, ``cli``)
    is its own person.
    """
    match = KEY_ACTOR.fullmatch(actor)
    if match is None:
        return actor
    row = ApiKey.select(ApiKey.name, ApiKey.person).where(ApiKey.id == int(match.group(1))).first()
    if row is None:
        return match.group(2)
    return row.person or row.name


def key_revoked(actor: str) -> bool:
    """Whether ``actor`` is a key that has been revoked since (call inside a transaction)."""
    match = KEY_ACTOR.fullmatch(actor)
    if match is None:
        return False
    return ApiKey.select().where(ApiKey.id == int(match.group(1)), ApiKey.revoked_at.is_null(False)).exists()

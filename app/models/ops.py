"""Tables the features need beyond the spec's schemas: API keys and the audit log."""

from __future__ import annotations

import peewee

from ..db import BaseModel, JSONField, TimestampField
from .events import _now


class ApiKey(BaseModel):
    """A bearer key; only its SHA-256 is stored."""

    id = peewee.BigAutoField()
    name = peewee.CharField(max_length=200)
    role = peewee.CharField(max_length=20)
    key_hash = peewee.CharField(max_length=64, unique=True)
    prefix = peewee.CharField(max_length=12)
    created_at = TimestampField(default=_now)
    revoked_at = TimestampField(null=True)

    class Meta:
        schema = "ops"
        table_name = "api_keys"


class AuditLog(BaseModel):
    """Append-only record of who did what, when and why."""

    id = peewee.BigAutoField()
    at = TimestampField(default=_now, index=True)
    actor = peewee.CharField(max_length=200)
    action = peewee.CharField(max_length=100)
    subject = peewee.CharField(max_length=200, null=True)
    details = JSONField(null=True)

    class Meta:
        schema = "ops"
        table_name = "audit_log"

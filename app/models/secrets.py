"""Named secrets that templates use as ``{{ secret.NAME }}``: only their Fernet tokens are stored."""

from __future__ import annotations

import peewee

from ..db import BaseModel, TimestampField
from ..timeutil import now


class Secret(BaseModel):
    """One named secret, encrypted with the first of ``OPSCONDUCTOR_SECRET_KEYS``."""

    id = peewee.BigAutoField()
    name = peewee.CharField(max_length=100, unique=True)
    #: The Fernet token of the value (it carries its own timestamp and MAC).
    token = peewee.TextField()
    created_at = TimestampField(default=now)
    updated_at = TimestampField(default=now)
    updated_by = peewee.CharField(max_length=200, null=True)

    class Meta:
        schema = "ops"
        table_name = "secrets"

"""Tables of the signed approval links (:mod:`app.executions.links`): the key they are signed with
when no ``OPSCONDUCTOR_SECRET_KEYS`` is set, and the nonces of the links already used."""

from __future__ import annotations

import peewee

from ..db import BaseModel, TimestampField
from ..timeutil import now


class SigningKey(BaseModel):
    """A random key made once per database, for signatures that need one when no secret key is configured."""

    #: What the key signs (``approval_links``).
    purpose = peewee.CharField(max_length=50, primary_key=True)
    #: 32 random bytes, hex.
    key = peewee.CharField(max_length=64)
    created_at = TimestampField(default=now)

    class Meta:
        schema = "ops"
        table_name = "signing_keys"


class ApprovalLinkUse(BaseModel):
    """A link that has been used: its nonce is the key, so a link answers one approval once."""

    nonce = peewee.CharField(max_length=64, primary_key=True)
    approval_id = peewee.BigIntegerField(index=True)
    person = peewee.CharField(max_length=200)
    actor = peewee.CharField(max_length=200)
    #: Whether the link's use approved (else rejected).
    approved = peewee.BooleanField()
    used_at = TimestampField(default=now)

    class Meta:
        schema = "autonomous"
        table_name = "approval_link_uses"

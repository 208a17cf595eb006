"""Silences: time-bounded matchers whose events fire no rule (``rules.silences``)."""

from __future__ import annotations

import peewee

from ..db import BaseModel, JSONField, TimestampField
from ..timeutil import now


class Silence(BaseModel):
    """Events matching every one of ``matchers`` and arriving in [``starts_at``, ``ends_at``) fire no rule.

    A silence is never deleted: expiring one sets ``ends_at`` to the moment it was expired (and
    ``expired_at``/``expired_by``), so the events it silenced keep pointing at what silenced them.
    """

    id = peewee.BigAutoField()
    #: ``[{name, value, is_regex, is_equal}]``, as :func:`app.silences.matching.parse_matchers` returns them.
    matchers = JSONField()
    starts_at = TimestampField()
    ends_at = TimestampField(index=True)
    #: The actor that created it (``key:<id>:<name>``, ``cli``).
    created_by = peewee.CharField(max_length=200)
    #: The person behind ``created_by`` (the key's person).
    person = peewee.CharField(max_length=200, null=True)
    comment = peewee.TextField()
    created_at = TimestampField(default=now)
    updated_at = TimestampField(default=now)
    #: When an operator ended it before its time (None: it ran, or runs, to its ``ends_at``).
    expired_at = TimestampField(null=True)
    expired_by = peewee.CharField(max_length=200, null=True)

    class Meta:
        schema = "rules"
        table_name = "silences"

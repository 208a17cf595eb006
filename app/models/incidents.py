"""The operators' record of an incident: notes, status changes, assignments, merges and splits."""

from __future__ import annotations

import peewee

from ..db import BaseModel, JSONField, TimestampField
from ..timeutil import now


class IncidentActivity(BaseModel):
    """One thing a person (or the clock) did to an incident, shown on its timeline.

    ``kind`` is ``note`` (``text`` holds it), ``status`` (``from_status`` -> ``to_status``,
    ``text`` the comment), ``assignment``, ``merge`` or ``split`` (``details`` says which
    incidents and events, ``text`` the reason).
    """

    id = peewee.BigAutoField()
    incident_id = peewee.UUIDField()
    at = TimestampField(default=now)
    kind = peewee.CharField(max_length=20)
    #: Who did it, as the audit log names it (``key:<id>:<name>``, ``cli``, ``system:auto_resolve``).
    actor = peewee.CharField(max_length=200)
    #: The person behind ``actor``.
    person = peewee.CharField(max_length=200)
    from_status = peewee.CharField(max_length=20, null=True)
    to_status = peewee.CharField(max_length=20, null=True)
    text = peewee.TextField(null=True)
    details = JSONField(null=True)

    class Meta:
        schema = "events"
        table_name = "incident_activity"
        indexes = ((("incident_id", "at"), False),)

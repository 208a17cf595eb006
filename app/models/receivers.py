"""What the syslog and SNMP receiver processes last reported about themselves (``app.receivers.counters``)."""

from __future__ import annotations

import peewee

from ..db import BaseModel, JSONField, TimestampField


class ReceiverStat(BaseModel):
    """One receiver process's counters, upserted by that process every ``RECEIVER_REPORT_SECONDS``.

    A process is one row for its life (``process`` is new at each start); rows not updated for a day
    are deleted by the next report of any receiver.
    """

    id = peewee.BigAutoField()
    #: ``<hostname>:<pid>:<start in ms>``: unique over restarts, even when the kernel reuses a pid.
    process = peewee.CharField(max_length=300, unique=True)
    #: The process type: ``syslog``, ``snmptrap`` or ``all-in-one``.
    kind = peewee.CharField(max_length=40)
    hostname = peewee.CharField(max_length=255)
    pid = peewee.IntegerField()
    started_at = TimestampField()
    updated_at = TimestampField(index=True)
    #: Seconds between this process's reports: three missed ones make it stale.
    interval_s = peewee.FloatField()
    #: ``{component: {counter: n}}``, e.g. ``{"outbox": {"dropped_full": 0, ...}, "syslog": {"oversize": 2, ...}}``.
    counters = JSONField()

    class Meta:
        schema = "ops"
        table_name = "receiver_stats"

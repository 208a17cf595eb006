"""The correlator's decisions not yet written out (``events.correlation_decisions``)."""

from __future__ import annotations

import peewee

from ..db import BaseModel, TimestampField
from ..timeutil import now


class CorrelationDecision(BaseModel):
    """A batch's placements, decided under the correlator's lock and written out after it.

    The correlator decides a batch under its lock and commits the incidents it changed with this
    row; stamping the events with their incidents' ids and recording why (the bulk of a batch's
    writes) happens in a second transaction, outside the lock, which deletes the row. While the
    row exists its events count as correlated; whichever transaction deletes it writes it out,
    so a crash between the two (the message is redelivered) loses and repeats nothing.
    See :mod:`app.correlation.store`.
    """

    id = peewee.UUIDField(primary_key=True)
    decided_at = TimestampField(default=now)
    #: JSON object: event id -> incident id.
    assigned = peewee.TextField()
    #: JSON list of ``events.event_correlations`` rows (ids as strings).
    links = peewee.TextField()

    class Meta:
        schema = "events"
        table_name = "correlation_decisions"

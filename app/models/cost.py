"""The cost agent's monthly reports: each month's totals and findings, as its last run over the exports saw them."""

from __future__ import annotations

import peewee

from ..db import BaseModel, JSONField, TimestampField
from ..timeutil import now


class CostReport(BaseModel):
    """One cost agent's report of one month, replaced by each run (a month's export grows until it closes)."""

    id = peewee.BigAutoField()
    #: The cost agent's name (``ops.agents``): two agents over different exports keep their own reports.
    agent = peewee.CharField(max_length=63)
    #: ``YYYY-MM``.
    month = peewee.CharField(max_length=7)
    total_cost = peewee.DoubleField(default=0.0)
    #: Sum of the findings' estimated savings per month, in the exports' currency.
    estimated_monthly_savings = peewee.DoubleField(default=0.0)
    #: ``{"days", "by_service", "by_account", "findings", "problems"}`` (:mod:`app.agents.cost_reports`).
    report = JSONField(default=dict)
    generated_at = TimestampField(default=now)

    class Meta:
        schema = "ops"
        table_name = "cost_reports"
        indexes = ((("agent", "month"), True),)

"""``GET /api/v1/cost-optimization/reports``: the cost agents' monthly reports, as JSON or CSV.

Filters: ``month`` (``YYYY-MM``) and ``agent`` (a cost agent's name). ``?format=csv``, or an
``Accept`` header that prefers ``text/csv`` to JSON, answers CSV (one row per total, service,
account and finding; :data:`app.agents.cost_reports.CSV_COLUMNS`).
"""

from __future__ import annotations

import re

import falcon

from ...agents import cost_reports
from ...db import in_transaction
from ...errors import InvalidInput

CSV_TYPE = "text/csv; charset=utf-8"
_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


def _wants_csv(req: falcon.Request) -> bool:
    name = req.get_param("format")
    if name is not None:
        if name not in ("json", "csv"):
            raise InvalidInput(f"format is json or csv, not {name!r}", field="format")
        return name == "csv"
    return req.client_prefers(["application/json", "text/csv"]) == "text/csv"


class CostReports:
    """``GET``: every stored month, newest first, with totals by service and account, trends, findings and savings."""

    permissions = {"GET": "read"}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        month = req.get_param("month")
        if month is not None and not _MONTH.fullmatch(month):
            raise InvalidInput(f"month is YYYY-MM, not {month!r}", field="month")
        agent = req.get_param("agent")
        csv = _wants_csv(req)
        answered = in_transaction(lambda: cost_reports.reports(agent=agent, month=month))
        if csv:
            resp.content_type = CSV_TYPE
            resp.downloadable_as = f"cost-reports{'-' + month if month else ''}.csv"
            resp.text = cost_reports.as_csv(answered)
            return
        resp.media = {"reports": answered, "total_count": len(answered)}

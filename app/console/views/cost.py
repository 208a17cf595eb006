"""The cost page: spend per month as a bar chart, the month's totals and trends, and what to cut.

``GET /console/cost`` (``?month=YYYY-MM`` a month, else the newest; ``?agent=`` one cost agent's
reports). The reports are the cost agents' (:func:`app.agents.cost_reports.reports`, the same as
``GET /api/v1/cost-optimization/reports``); the chart is :mod:`app.console.cost_chart`, drawn
server-side as SVG.
"""

from __future__ import annotations

from typing import Any

import falcon
from markupsafe import Markup

from ...agents import cost_reports
from ...db import in_transaction
from ..cost_chart import render as draw
from ..page import Page
from ..render import render


class CostPage(Page):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        agent = req.get_param("agent") or None
        reports = in_transaction(lambda: cost_reports.reports(agent=agent))
        months = sorted({r["month"] for r in reports}, reverse=True)
        month = req.get_param("month") or (months[0] if months else None)
        shown = [r for r in reports if r["month"] == month]
        # the chart is built from escaped names only (cost_chart escapes every text)
        chart = Markup(draw(reports))  # noqa: S704
        render(req, resp, "cost.html", chart=chart, reports=reports, months=months, month=month, shown=shown,
               agent=agent)  # fmt: skip


def routes(deps: Any) -> list[tuple[Any, ...]]:
    return [("/console/cost", CostPage(deps))]

"""The cost agent's monthly reports: stored by its runs, read by ``GET /api/v1/cost-optimization/reports`` and the console.

A run replaces the reports of the months its exports cover (:func:`store`) and hands back the
findings no earlier report of that month had, so each finding becomes one event, not one per run.
Trends are worked out when read (:func:`reports`): each month against the month before it as
stored, in total and per service and account, so an export that only holds the current month
still shows how it moved. Functions that read or write run inside a transaction.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from ..models import CostReport
from ..present import iso
from .cost_analysis import Finding, cents

#: Columns of the CSV form: one row per total (month, service, account) and per finding.
CSV_COLUMNS = ("agent", "month", "row", "provider", "account", "service", "resource", "cost", "previous_cost",
               "change_pct", "estimated_monthly_savings", "severity", "title")  # fmt: skip
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def store(agent: str, totals: Mapping[str, Mapping[str, Any]], findings: Sequence[Finding],
          problems: Sequence[str], *, now: datetime) -> list[Finding]:  # fmt: skip
    """Replace ``agent``'s reports of the months in ``totals`` or ``findings``.

    Returns:
      The findings no stored report had yet (the ones to emit as events).
    """
    months = sorted(set(totals) | {f.month for f in findings})
    known: set[str] = set()
    for row in CostReport.select(CostReport.report).where(CostReport.agent == agent, CostReport.month.in_(months)):
        known.update(f["key"] for f in (row.report or {}).get("findings", ()))
    for month in months:
        mine = sorted((f for f in findings if f.month == month), key=lambda f: -f.estimated_monthly_savings)
        total = totals.get(month, {"total_cost": 0.0, "days": 0, "by_service": [], "by_account": []})
        savings = cents(sum(f.estimated_monthly_savings for f in mine))
        report = {"days": total["days"], "by_service": total["by_service"], "by_account": total["by_account"],
                  "findings": [f.as_json() for f in mine], "problems": list(problems)}  # fmt: skip
        CostReport.insert(agent=agent, month=month, total_cost=total["total_cost"], estimated_monthly_savings=savings,
                          report=report, generated_at=now).on_conflict(
            conflict_target=[CostReport.agent, CostReport.month],
            update={CostReport.total_cost: total["total_cost"], CostReport.estimated_monthly_savings: savings,
                    CostReport.report: report, CostReport.generated_at: now},
        ).execute()  # fmt: skip
    return [f for f in findings if f.key not in known]


def _change(cost: float, previous: float | None) -> dict[str, Any]:
    if previous is None:
        return {"previous_cost": None, "change": None, "change_pct": None}
    pct = round((cost - previous) / previous * 100, 1) if previous else None
    return {"previous_cost": previous, "change": cents(cost - previous), "change_pct": pct}


def _trend(row: CostReport, prior: CostReport | None) -> dict[str, Any]:
    """The month against the one before: in total, and per day of data (a month still running has fewer days)."""
    days = (row.report or {}).get("days") or 0
    daily = cents(row.total_cost / days) if days else None
    trend = {"previous_month": _previous(row.month), **_change(row.total_cost, prior.total_cost if prior else None),
             "daily_cost": daily, "previous_daily_cost": None, "daily_change_pct": None}  # fmt: skip
    prior_days = (prior.report or {}).get("days") if prior else None
    if prior is not None and prior_days and daily is not None:
        trend["previous_daily_cost"] = previous = cents(prior.total_cost / prior_days)
        trend["daily_change_pct"] = round((daily - previous) / previous * 100, 1) if previous else None
    return trend


def _with_trend(items: list[dict[str, Any]], before: list[dict[str, Any]] | None, by: str) -> list[dict[str, Any]]:
    earlier = {(i["provider"], i[by]): i["cost"] for i in before or ()}
    missing = None if before is None else 0.0
    return [{**i, **_change(i["cost"], earlier.get((i["provider"], i[by]), missing))} for i in items]


def _previous(month: str) -> str:
    year, number = (int(p) for p in month.split("-"))
    return f"{year - 1:04d}-12" if number == 1 else f"{year:04d}-{number - 1:02d}"


def reports(*, agent: str | None = None, month: str | None = None) -> list[dict[str, Any]]:
    """The stored reports, newest month first, each with its trend against the month before it."""
    query = CostReport.select().order_by(CostReport.agent, CostReport.month)
    if agent:
        query = query.where(CostReport.agent == agent)
    rows = list(query)
    by_key = {(r.agent, r.month): r for r in rows}
    answered = []
    for row in rows:
        if month and row.month != month:
            continue
        prior = by_key.get((row.agent, _previous(row.month)))
        body = row.report or {}
        before = None if prior is None else prior.report or {}
        answered.append({
            "agent": row.agent, "month": row.month, "generated_at": iso(row.generated_at),
            "total_cost": row.total_cost, "estimated_monthly_savings": row.estimated_monthly_savings,
            "days": body.get("days", 0),
            "trend": _trend(row, prior),
            "by_service": _with_trend(body.get("by_service", []), None if before is None else before.get("by_service", []), "service"),
            "by_account": _with_trend(body.get("by_account", []), None if before is None else before.get("by_account", []), "account"),
            "findings": body.get("findings", []), "problems": body.get("problems", []),
        })  # fmt: skip
    answered.sort(key=lambda r: (r["month"], r["agent"]), reverse=True)
    return answered


def csv_rows(answered: Sequence[Mapping[str, Any]]) -> Iterator[dict[str, Any]]:
    for r in answered:
        base = {"agent": r["agent"], "month": r["month"]}
        yield {**base, "row": "total", "cost": r["total_cost"], "previous_cost": r["trend"]["previous_cost"],
               "change_pct": r["trend"]["change_pct"], "estimated_monthly_savings": r["estimated_monthly_savings"]}  # fmt: skip
        for s in r["by_service"]:
            yield {**base, "row": "service", "provider": s["provider"], "service": s["service"], "cost": s["cost"],
                   "previous_cost": s["previous_cost"], "change_pct": s["change_pct"]}  # fmt: skip
        for a in r["by_account"]:
            yield {**base, "row": "account", "provider": a["provider"], "account": a["account"], "cost": a["cost"],
                   "previous_cost": a["previous_cost"], "change_pct": a["change_pct"]}  # fmt: skip
        for f in r["findings"]:
            yield {**base, "row": f["kind"], **{k: f[k] for k in ("provider", "account", "service", "resource", "cost",
                                                                "estimated_monthly_savings", "severity", "title")}}  # fmt: skip


def _cell(value: Any) -> Any:
    """Text that a spreadsheet would take for a formula gets a leading ``'`` (CSV injection); numbers stay numbers."""
    if value is None:
        return ""
    return "'" + value if isinstance(value, str) and value.startswith(_FORMULA_STARTS) else value


def as_csv(answered: Sequence[Mapping[str, Any]]) -> str:
    """The reports as CSV (:data:`CSV_COLUMNS`); empty cells where a column does not apply."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for row in csv_rows(answered):
        writer.writerow({k: _cell(v) for k, v in row.items()})
    return out.getvalue()

"""Monthly spend as a bar chart: a server-rendered SVG, one bar per month stacked by service.

Plain logic, no I/O: :func:`render` takes the cost reports (newest first, as
:func:`app.agents.cost_reports.reports` answers) and returns an ``<svg>`` element to inline in a
page (no library, nothing fetched by the browser). The :data:`TOP_SERVICES` costliest services
over the months shown get their own colour; the rest are stacked as "other". Every text is escaped.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

#: Services with their own colour; the others are summed as "other".
TOP_SERVICES = 6
#: Months drawn at most (the newest).
MAX_MONTHS = 24
#: Colour-blind-safe palette (Okabe-Ito), then grey for "other".
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00")
OTHER = "#999999"
#: Plot size and margins, in SVG user units (px at 100 %).
BAR_W, GAP, PLOT_H, LEFT, TOP, BOTTOM, LEGEND_ROW = 48, 24, 220, 70, 20, 40, 20


def _nice_max(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten at or above ``value`` (the axis' top)."""
    if value <= 0:
        return 1.0
    power = 10.0 ** (len(str(int(value))) - 1) if value >= 1 else 1.0
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def _label(name: str) -> str:
    return name if len(name) <= 28 else name[:27] + "…"


def stacks(reports: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[str], dict[str, dict[str, float]]]:
    """``(months oldest first, services in stack order, {month: {service: cost}})``, agents summed."""
    per_month: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for report in reports:
        for item in report["by_service"]:
            per_month[report["month"]][f"{item['provider']}/{item['service']}"] += item["cost"]
    months = sorted(per_month)[-MAX_MONTHS:]
    overall: dict[str, float] = defaultdict(float)
    for month in months:
        for service, cost in per_month[month].items():
            overall[service] += cost
    top = [s for s, _ in sorted(overall.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_SERVICES]]
    folded: dict[str, dict[str, float]] = {}
    for month in months:
        folded[month] = {s: per_month[month].get(s, 0.0) for s in top}
        rest = sum(c for s, c in per_month[month].items() if s not in top)
        if rest:
            folded[month]["other"] = rest
    services = top + (["other"] if any("other" in v for v in folded.values()) else [])
    return months, services, folded


def render(reports: Sequence[Mapping[str, Any]], *, currency: str = "") -> str:
    """The chart as an ``<svg>`` element (an empty string when there is no report)."""
    months, services, costs = stacks(reports)
    if not months:
        return ""
    colour = {s: PALETTE[i] if s != "other" else OTHER for i, s in enumerate(services)}
    top = _nice_max(max(sum(costs[m].values()) for m in months))
    width = LEFT + len(months) * (BAR_W + GAP) + GAP
    legend_y = TOP + PLOT_H + BOTTOM
    height = legend_y + LEGEND_ROW * len(services) + 10
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="cost-chart" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" aria-labelledby="cost-chart-title">'
             f'<title id="cost-chart-title">Spend per month, by service</title>']  # fmt: skip
    for i in range(5):  # gridlines and the axis' values
        value = top * i / 4
        y = TOP + PLOT_H - PLOT_H * i / 4
        parts.append(f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{width}" y2="{y:.1f}" stroke="currentColor" '
                     f'stroke-opacity="0.15"/><text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
                     f'fill="currentColor">{escape(currency)}{value:,.0f}</text>')  # fmt: skip
    for n, month in enumerate(months):
        x = LEFT + GAP + n * (BAR_W + GAP)
        total = sum(costs[month].values())
        y = TOP + PLOT_H
        parts.append(f'<g class="bar" data-month="{escape(month)}" data-total="{total:.2f}">')
        for service in services:
            cost = costs[month].get(service, 0.0)
            if cost <= 0:
                continue
            h = PLOT_H * cost / top
            y -= h
            parts.append(f'<rect x="{x}" y="{y:.1f}" width="{BAR_W}" height="{h:.1f}" fill="{colour[service]}" '
                         f'data-service="{escape(service)}"><title>{escape(month)} · {escape(service)}: '
                         f'{escape(currency)}{cost:,.2f}</title></rect>')  # fmt: skip
        parts.append(f'<text x="{x + BAR_W / 2}" y="{y - 4:.1f}" text-anchor="middle" font-size="11" '
                     f'fill="currentColor">{escape(currency)}{total:,.0f}</text>'
                     f'<text x="{x + BAR_W / 2}" y="{TOP + PLOT_H + 16}" text-anchor="middle" font-size="12" '
                     f'fill="currentColor">{escape(month)}</text></g>')  # fmt: skip
    for i, service in enumerate(services):
        y = legend_y + i * LEGEND_ROW
        parts.append(f'<g class="legend"><rect x="{LEFT}" y="{y}" width="12" height="12" fill="{colour[service]}"/>'
                     f'<text x="{LEFT + 18}" y="{y + 10}" font-size="12" fill="currentColor">'
                     f'{escape(_label(service))}</text></g>')  # fmt: skip
    parts.append("</svg>")
    return "".join(parts)

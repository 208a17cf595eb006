"""The cost page in a real chromium: a cost agent's reports (written by its run over the export fixtures)
drawn as a bar per month, the month's findings and trends, reached from the navigation."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from app.agents.base import AgentSettings
from app.agents.cost import CostAgent

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cost"


def test_the_cost_page_charts_each_month_and_lists_the_chosen_months_findings_and_trend(sign_in, shot, db):
    # Given a cost agent's run over an AWS CUR (October and November) and Kubernetes requests against use
    config = AgentSettings(name="cost-browser", kind="cost", automation_level="manual", approval_required=True,
                           integrations=({"type": "cost_export", "provider": "aws", "path": str(FIXTURES / "aws_cur2.csv")},
                                         {"type": "kubernetes_usage", "path": str(FIXTURES / "k8s_usage.csv")}))  # fmt: skip
    CostAgent(now=lambda: datetime(2026, 11, 22, tzinfo=UTC)).run(config)
    page = sign_in("viewer")

    # When a viewer follows the navigation to the cost page
    page.get_by_role("navigation", name="Console").get_by_role("link", name="Cost").click()
    page.wait_for_url(re.compile(r".*/console/cost"))
    assert page.locator("#cost-chart svg").count() == 1
    # (other tests' cost agents may have reports in this database: this agent's are picked)
    page.goto("/console/cost?agent=cost-browser")

    # Then the chart has a bar per month, oldest first, each with its total and stacked by service
    chart = page.locator("#cost-chart svg")
    assert chart.get_attribute("role") == "img"
    bars = chart.locator("g.bar")
    assert bars.evaluate_all("bars => bars.map(b => b.dataset.month)") == ["2026-10", "2026-11"]
    november_total = float(bars.nth(1).get_attribute("data-total"))
    assert chart.locator('g.bar[data-month="2026-11"] rect[data-service="aws/AmazonEC2"]').count() == 1
    assert chart.locator("g.bar rect").first.bounding_box()["height"] > 0
    # And the newest month is shown: its spend, its rise over October, and its findings with savings
    month = page.locator('section.cost-month[data-month="2026-11"]')
    assert f"{november_total:,.2f}" in month.inner_text()
    row = page.locator('#months tr[data-month="2026-11"]')
    assert row.get_attribute("data-agent") == "cost-browser"
    assert float(row.locator("td[data-change]").get_attribute("data-change")) > 0
    kinds = month.locator("table.findings tr[data-kind]").evaluate_all("rows => rows.map(r => r.dataset.kind)")
    assert sorted(set(kinds)) == ["cost_anomaly", "idle_resource", "oversized"]
    assert month.locator('table.findings tr[data-resource="k8s:shop/deployment/web"]').count() == 1
    assert shot(page, "november").stat().st_size > 0

    # When the viewer picks October, Then its section is shown instead
    page.locator('#months tr[data-month="2026-10"] a').click()
    page.wait_for_url(re.compile(r".*month=2026-10&agent=cost-browser"))
    assert page.locator('section.cost-month[data-month="2026-10"]').count() == 1
    assert page.locator('section.cost-month[data-month="2026-11"]').count() == 0
    assert "AmazonEC2" in page.locator("section.cost-month table.by-service").inner_text()

    # And an agent without reports gets the page's hint on how to get one, and no chart
    page.goto("/console/cost?agent=nobody")
    assert "cost_export" in page.locator("#no-reports").inner_text()
    assert page.locator("#cost-chart").count() == 0

"""The cost agent's logic on realistic exports of each provider (tests/fixtures/cost/): reading, anomalies,
idle and oversized resources, the monthly reports with their trends and CSV, and the console's chart."""

from __future__ import annotations

import csv
import gzip
import io
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from app.agents import registry
from app.agents.base import AgentSettings
from app.agents.cost import CostAgent, CostUnreadable, check_integration
from app.agents.cost_analysis import Spend, anomalies, idle_resources
from app.agents.cost_exports import ExportReader, files, rows
from app.agents.cost_reports import as_csv, reports
from app.agents.cost_workloads import Workloads
from app.console.cost_chart import render as chart
from app.db import in_transaction
from app.errors import InvalidInput

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cost"
AWS_ACCOUNT = "111122223333"
NAT = "arn:aws:ec2:us-east-1:111122223333:natgateway/nat-04a5b6c7d8e9f0a1b"


def spend_of(provider: str, *names: str) -> tuple[Spend, ExportReader]:
    reader, spend = ExportReader(provider), Spend()
    spend.add(reader.lines(p for name in names for p in files(FIXTURES / name)))
    return spend, reader


def cost_of(spend: Spend, month: str, service: str) -> float:
    return next(s["cost"] for s in spend.totals()[month]["by_service"] if s["service"] == service)


# --- reading each provider's export ------------------------------------------------------------------


def test_a_cur_2_export_is_read_into_monthly_totals_by_service_and_account_with_its_tax_line():
    # Given AWS CUR 2.0 lines from 2026-10-20 to 2026-11-21, with a tax line on November's first day
    spend, reader = spend_of("aws", "aws_cur2.csv")
    # Then every line is read, and each month is totalled per service and account
    assert reader.read == 332 and not reader.skipped
    totals = spend.totals()
    assert set(totals) == {"2026-10", "2026-11"} and totals["2026-11"]["days"] == 21
    assert [s["service"] for s in totals["2026-11"]["by_service"]] == ["AmazonEC2", "AmazonS3"]
    assert totals["2026-11"]["by_account"] == [{"provider": "aws", "account": AWS_ACCOUNT,
                                                "cost": totals["2026-11"]["total_cost"]}]  # fmt: skip
    # And the tax counts in the total but not in the daily series anomalies are looked for in
    first = spend.daily[("aws", AWS_ACCOUNT, "AmazonEC2")][date(2026, 11, 1)]
    second = spend.daily[("aws", AWS_ACCOUNT, "AmazonEC2")][date(2026, 11, 2)]
    assert abs(first - second) < 2


def test_legacy_cur_columns_are_read_and_a_line_with_no_number_for_its_cost_is_counted_not_dropped():
    spend, reader = spend_of("aws", "aws_cur_legacy.csv")
    assert reader.read == 9
    assert dict(reader.skipped) == {"aws_cur_legacy.csv: line_item_unblended_cost is no number": 1}
    assert spend.totals()["2026-09"]["total_cost"] == pytest.approx(3 * (24 * 0.25 + 24 * 0.0225))


def test_a_gcp_export_as_newline_delimited_json_nets_its_credits_and_its_csv_form_reads_the_same():
    spend, _ = spend_of("gcp", "gcp_billing.jsonl")
    # Compute Engine: 4 cores x 24 h x 0.0315, less a 0.60 sustained use discount, each of 14 days
    assert cost_of(spend, "2026-11", "Compute Engine") == pytest.approx(14 * (24 * 0.0315 * 4 - 0.6), abs=0.01)
    assert spend.totals()["2026-11"]["by_account"][0]["account"] == "shop-prod-4821"
    csv_spend, _ = spend_of("gcp", "gcp_billing.csv")
    # the CSV holds the first two days' six lines
    two_days = sum(c for s in spend.daily.values() for d, c in s.items() if d <= date(2026, 11, 2))
    assert csv_spend.totals()["2026-11"]["total_cost"] == pytest.approx(two_days, abs=0.01)


def test_a_gcp_csv_line_with_broken_credits_is_counted_by_its_reason(tmp_path):
    text = (FIXTURES / "gcp_billing.csv").read_text().splitlines()
    (tmp_path / "gcp.csv").write_text("\n".join([*text[:2], text[2].rsplit(",", 1)[0] + ',"[{oops"']) + "\n")
    reader = ExportReader("gcp")
    assert len(list(reader.lines([tmp_path / "gcp.csv"]))) == 1
    assert dict(reader.skipped) == {"gcp.csv: credits is not JSON": 1}


def test_azure_exports_in_current_and_older_columns_are_read():
    spend, _ = spend_of("azure", "azure_cost.csv")  # BOM, MM/DD/YYYY dates, CostInBillingCurrency
    assert cost_of(spend, "2026-11", "Virtual Machines") == pytest.approx(10 * 24 * 0.192)
    assert spend.totals()["2026-11"]["by_account"][0]["account"] == "8f3c2a1e-5b7d-4c9e-a1f2-3d4e5f6a7b8c"
    legacy, _ = spend_of("azure", "azure_cost_legacy.csv")  # PreTaxCost, UsageDateTime, SubscriptionGuid
    assert legacy.totals()["2026-08"]["total_cost"] == pytest.approx(14.4)


def test_gzip_and_directories_are_read_and_a_foreign_or_damaged_file_is_refused_naming_why(tmp_path):
    # Given a directory holding the CUR gzip-compressed
    (tmp_path / "cur").mkdir()
    with gzip.open(tmp_path / "cur" / "part-0001.csv.gz", "wb") as out:
        out.write((FIXTURES / "aws_cur2.csv").read_bytes())
    reader, spend = ExportReader("aws"), Spend()
    spend.add(reader.lines(files(tmp_path / "cur")))
    assert reader.read == 332
    # When a file that is no Parquet is named as one, Then reading names it (Parquet: test_agent_cost_parquet.py)
    (tmp_path / "cur" / "part-0002.snappy.parquet").write_bytes(b"PAR1")
    with pytest.raises(InvalidInput, match="part-0002.snappy.parquet is no readable Parquet file"):
        list(ExportReader("aws").lines(files(tmp_path / "cur")))
    # And an Azure file read as AWS names the column it lacks
    with pytest.raises(InvalidInput) as refused:
        list(ExportReader("aws").lines([FIXTURES / "azure_cost.csv"]))
    assert refused.value.field == "line_item_unblended_cost"
    with pytest.raises(InvalidInput) as unknown:
        ExportReader("oracle")
    assert unknown.value.field == "provider"


# --- anomalies ----------------------------------------------------------------------------------------


def test_the_spike_of_one_day_is_found_and_the_steady_services_are_not():
    spend, _ = spend_of("aws", "aws_cur2.csv")
    found = anomalies(spend.daily, {"anomaly_mad": 4})
    # Then the day 160 GPU instance-hours were started stands out, with its baseline and excess
    assert [(f.service, f.detail["day"]) for f in found] == [("AmazonEC2", "2026-11-18")]
    spike = found[0]
    assert spike.detail["excess_cost"] == pytest.approx(160.0, abs=3) and spike.severity == "high"
    assert spike.detail["baseline_median"] == pytest.approx(27.4, abs=1)


def test_a_steady_series_with_ordinary_noise_has_no_anomaly_and_a_threshold_set_higher_hides_a_spike():
    start = date(2026, 11, 1)
    steady = {("aws", "1", "AmazonRDS"): {start + timedelta(days=i): 100 + (i * 7919 % 13) - 6 for i in range(30)}}
    assert anomalies(steady, {}) == []
    spiked = {key: {**series, start + timedelta(days=29): 160.0} for key, series in steady.items()}
    assert len(anomalies(spiked, {"anomaly_mad": 4})) == 1
    assert anomalies(spiked, {"anomaly_mad": 40}) == []
    # And too short a history is no baseline
    last_days = start + timedelta(days=25)
    short = {key: {d: c for d, c in series.items() if d >= last_days} for key, series in spiked.items()}
    assert anomalies(short, {}) == []


def test_the_gcp_bigquery_spike_is_found():
    spend, _ = spend_of("gcp", "gcp_billing.jsonl")
    assert [(f.service, f.detail["day"]) for f in anomalies(spend.daily, {})] == [("BigQuery", "2026-11-12")]


# --- idle and oversized -----------------------------------------------------------------------------------


def test_resources_paid_for_with_no_metered_use_are_idle_and_those_in_use_or_only_billed_by_time_are_not():
    spend, _ = spend_of("aws", "aws_cur2.csv")
    idle = {(f.month, f.resource): f for f in idle_resources(spend, {})}
    # Then the NAT gateway that processed no byte and the Elastic IP billed as idle are found, each month
    assert set(idle) == {(m, r) for m in ("2026-10", "2026-11") for r in (NAT, "eipalloc-0f1e2d3c4b5a69788")}
    nat = idle[("2026-11", NAT)]
    assert nat.cost == pytest.approx(21 * 24 * 0.045)
    assert nat.estimated_monthly_savings == pytest.approx(30 * 24 * 0.045)
    # And a threshold above its cost leaves the Elastic IP out
    assert {f.resource for f in idle_resources(spend, {"idle_min_cost": 5})} == {NAT}
    # And Azure's application gateway that processed no data is idle, its VM (hours only) is not judged
    azure, _ = spend_of("azure", "azure_cost.csv")
    assert [f.resource.rsplit("/", 1)[-1] for f in idle_resources(azure, {})] == ["shop-agw"]


def test_kubernetes_workloads_requesting_far_more_than_they_use_are_oversized_and_an_unused_one_is_idle():
    workloads, skipped = Workloads(), {}
    workloads.add(rows(FIXTURES / "k8s_usage.csv"), skipped)
    found = {f.resource: f for f in workloads.findings({"oversize_ratio": 2.0, "headroom": 0.2})}
    assert not skipped and set(found) == {"k8s:shop/deployment/web", "k8s:shop/deployment/batch-old"}
    web, batch = found["k8s:shop/deployment/web"], found["k8s:shop/deployment/batch-old"]
    assert web.kind == "oversized" and batch.kind == "idle_resource"
    # web requests 2 cores and 4 GiB: right-sized to p95 x 1.2, with its cost priced at the defaults
    assert web.cost == pytest.approx(2 * 25.0 + 4 * 3.5)
    cpu, memory = web.detail["recommended_cpu_request"], web.detail["recommended_memory_request_gib"]
    assert cpu == pytest.approx(web.detail["cpu_p95"] * 1.2, abs=0.001)
    assert web.estimated_monthly_savings == pytest.approx(web.cost - (cpu * 25.0 + memory * 3.5), abs=0.05)
    assert batch.estimated_monthly_savings == pytest.approx(25.0 + 2 * 3.5)


def test_a_kubernetes_sample_with_a_bad_quantity_is_counted_as_skipped():
    workloads, skipped = Workloads(), {}
    workloads.add([{"timestamp": "2026-11-03T00:00:00Z", "namespace": "a", "kind": "Deployment", "name": "b",
                    "cpu_request": "lots", "cpu_usage": "1", "memory_request": "1Gi", "memory_usage": "1Gi"},
                   {"timestamp": "2026-11-03T00:00:00Z", "namespace": "a", "kind": "Deployment", "name": "b"}],
                  skipped)  # fmt: skip
    assert skipped == {"cpu_request is no quantity": 1, "cpu_request is missing": 1} and not workloads.by_month


# --- the agent's run, its reports and their CSV ---------------------------------------------------------------


def _config(*integrations, thresholds=None) -> AgentSettings:
    return AgentSettings(name="costs", kind="cost", automation_level="manual", approval_required=True,
                         thresholds=thresholds or {}, integrations=integrations)  # fmt: skip


def test_a_run_stores_a_report_per_month_emits_each_finding_once_and_reports_trends(any_db, tmp_path):
    shutil.copy(FIXTURES / "k8s_usage.csv", tmp_path / "usage.csv")
    config = _config({"type": "cost_export", "provider": "aws", "path": str(FIXTURES / "aws_cur2.csv")},
                     {"type": "kubernetes_usage", "path": str(tmp_path / "usage.csv")},
                     {"type": "cost_export", "provider": "gcp", "path": str(tmp_path / "missing")})  # fmt: skip
    agent = CostAgent(now=lambda: datetime(2026, 11, 22, tzinfo=UTC))
    # When it runs twice over the same exports
    first = agent.run(config)
    again = agent.run(config)
    # Then the first run's events name each finding, and the second has none new
    kinds = sorted(e.event_type for e in first)
    assert kinds == ["cost_anomaly", "idle_resource", "idle_resource", "idle_resource", "idle_resource",
                     "idle_resource", "oversized"]  # fmt: skip
    assert again == []
    assert first[0].event_type == "cost_anomaly"  # anomalies first, then the largest savings
    spike = next(e for e in first if e.event_type == "cost_anomaly")
    assert spike.resource == f"cost:aws:{AWS_ACCOUNT}/AmazonEC2" and spike.severity == "high"
    # And November's report has its totals, its findings with savings, the unreadable integration, and its trend
    november, october = in_transaction(reports)
    assert (november["month"], october["month"]) == ("2026-11", "2026-10")
    assert november["trend"]["previous_cost"] == october["total_cost"]
    assert november["trend"]["change_pct"] == pytest.approx(
        round((november["total_cost"] - october["total_cost"]) / october["total_cost"] * 100, 1)
    )
    # and per day of data: November's 21 days against October's 12
    assert november["trend"]["daily_cost"] == pytest.approx(november["total_cost"] / 21, abs=0.01)
    assert november["trend"]["previous_daily_cost"] == pytest.approx(october["total_cost"] / 12, abs=0.01)
    ec2 = next(s for s in november["by_service"] if s["service"] == "AmazonEC2")
    assert ec2["previous_cost"] == next(s["cost"] for s in october["by_service"] if s["service"] == "AmazonEC2")
    assert november["estimated_monthly_savings"] == pytest.approx(sum(f["estimated_monthly_savings"]
                                                                      for f in november["findings"]), abs=0.02)  # fmt: skip
    assert november["problems"] == [f"integrations[2]: no export at {str(tmp_path / 'missing')!r}"]
    assert in_transaction(lambda: reports(month="2026-10")) == [october]
    # And the CSV has a row per total, service, account and finding
    table = list(csv.DictReader(io.StringIO(as_csv([november]))))
    assert [r["row"] for r in table].count("total") == 1
    assert {r["row"] for r in table} == {"total", "service", "account", "cost_anomaly", "idle_resource", "oversized"}
    assert next(r for r in table if r["row"] == "oversized")["resource"] == "k8s:shop/deployment/web"


def test_a_cost_integration_is_checked_when_configured_naming_the_field():
    with pytest.raises(InvalidInput) as provider:
        check_integration({"type": "cost_export", "provider": "oracle", "path": "/x"}, "integrations[1]")
    assert provider.value.field == "integrations[1].provider"
    with pytest.raises(InvalidInput) as path:
        check_integration({"type": "kubernetes_usage"}, "integrations[0]")
    assert path.value.field == "integrations[0].path"
    check_integration({"type": "cost_export", "provider": "azure", "path": "exports/azure"}, "integrations[0]")
    # And the registry refuses such a configuration with that field named
    with pytest.raises(InvalidInput) as configured:
        registry.parse_config({"name": "costs", "type": "cost", "integrations": [
            {"type": "cost_export", "provider": "aws", "path": "cur"}, {"type": "cost_export", "path": "gcp"}]})  # fmt: skip
    assert configured.value.field == "integrations[1].provider"


def test_a_run_sends_at_most_max_events_the_report_keeping_every_finding(any_db):
    config = _config({"type": "cost_export", "provider": "aws", "path": str(FIXTURES / "aws_cur2.csv")},
                     thresholds={"max_events": 2})  # fmt: skip
    sent = CostAgent().run(config)
    assert [e.event_type for e in sent] == ["cost_anomaly", "idle_resource"]
    assert sent[1].data["resource"] == NAT  # the idle resource with the largest saving
    assert sum(len(r["findings"]) for r in in_transaction(reports)) == 5


def test_a_run_with_nothing_readable_fails_naming_why_and_status_says_what_is_missing(tmp_path):
    agent = CostAgent()
    with pytest.raises(CostUnreadable, match="no cost_export or kubernetes_usage integration"):
        agent.run(_config({"type": "kubernetes", "name": "prod"}))
    with pytest.raises(CostUnreadable, match="cur.parquet is no readable Parquet file"):
        (tmp_path / "cur.parquet").write_bytes(b"PAR1")
        agent.run(_config({"type": "cost_export", "provider": "aws", "path": str(tmp_path)}))
    assert agent.status(_config())["ready"] is False
    bad = agent.status(_config({"type": "cost_export", "provider": "ibm", "path": str(tmp_path)}))
    assert bad == {"ready": False, "reason": "integrations[0]: provider is one of aws, gcp, azure"}
    assert agent.status(_config({"type": "cost_export", "provider": "aws", "path": str(tmp_path)}))["ready"] is True


def test_a_formula_in_a_finding_is_defused_in_the_csv():
    report = {"agent": "a", "month": "2026-11", "total_cost": 1.0, "estimated_monthly_savings": 0.0,
              "trend": {"previous_cost": None, "change_pct": None}, "by_service": [], "by_account": [],
              "findings": [{"kind": "idle_resource", "provider": "aws", "account": "1", "service": "s", "resource": "=HYPERLINK(1)",
                            "cost": -1.5, "estimated_monthly_savings": 1.0, "severity": "low", "title": "t"}]}  # fmt: skip
    row = list(csv.DictReader(io.StringIO(as_csv([report]))))[1]
    assert row["resource"] == "'=HYPERLINK(1)" and row["cost"] == "-1.5"


# --- the console's chart ---------------------------------------------------------------------------------------


def test_the_chart_draws_a_bar_per_month_stacked_by_service_with_escaped_names():
    reports_ = [{"month": "2026-11", "by_service": [{"provider": "aws", "service": "<script>", "cost": 300.0},
                                                    {"provider": "gcp", "service": "BigQuery", "cost": 100.0}]},
                {"month": "2026-10", "by_service": [{"provider": "aws", "service": "<script>", "cost": 250.0}]}]  # fmt: skip
    svg = chart(reports_)
    assert svg.startswith("<svg") and "<script>" not in svg and "&lt;script&gt;" in svg
    assert svg.index('data-month="2026-10"') < svg.index('data-month="2026-11"')
    assert 'data-total="400.00"' in svg and svg.count("<rect") == 3 + 2  # three bars' parts, two legend keys
    assert chart([]) == ""

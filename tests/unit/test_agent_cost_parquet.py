"""AWS CUR as Parquet (how Data Exports deliver CUR 2.0 by default) reads as its CSV does.

The Parquet files are written here with pyarrow from the CSV fixtures (tests/fixtures/cost/), typed
as AWS types them: strings, doubles, ``timestamp[ms, tz=UTC]`` and ``map<string, string>`` columns.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from app.agents.base import AgentSettings
from app.agents.cost import CostAgent
from app.agents.cost_analysis import Spend, anomalies, idle_resources
from app.agents.cost_exports import ExportReader, files
from app.agents.cost_reports import reports
from app.db import in_transaction
from app.errors import InvalidInput

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cost"
TAGS = pa.map_(pa.string(), pa.string())


def cur2_table(rows: list[dict[str, str]]) -> pa.Table:
    """The CUR 2.0 CSV's rows typed as Data Exports' Parquet has them, with its map columns."""

    def typed(name: str) -> pa.DataType:
        if name.endswith("_date"):
            return pa.timestamp("ms", tz="UTC")
        return pa.float64() if name.endswith(("_cost", "_amount", "_rate")) else pa.string()

    columns = {name: pa.array([_value(r[name], typed(name)) for r in rows], typed(name)) for name in rows[0]}
    columns["resource_tags"] = pa.array([[("user_team", "shop")] if "i-" in r["line_item_resource_id"] else []
                                         for r in rows], TAGS)  # fmt: skip
    columns["product"] = pa.array([[("region", r["product_region_code"])] for r in rows], TAGS)
    return pa.table(columns)


def _value(text: str, kind: pa.DataType) -> object:
    if not text:
        return None
    if pa.types.is_timestamp(kind):
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    return float(text) if pa.types.is_floating(kind) else text


def csv_rows(name: str) -> list[dict[str, str]]:
    with (FIXTURES / name).open(newline="") as f:
        return list(csv.DictReader(f))


def read(provider: str, paths: list[Path]) -> tuple[Spend, ExportReader]:
    reader, spend = ExportReader(provider), Spend()
    spend.add(reader.lines(paths))
    return spend, reader


def test_cur_2_parquet_parts_in_a_billing_period_folder_read_as_the_csv_with_the_same_findings(tmp_path):
    # Given the CUR 2.0 fixture as Data Exports write it: two snappy Parquet parts beside their manifest
    rows = csv_rows("aws_cur2.csv")
    period = tmp_path / "cur" / "data" / "BILLING_PERIOD=2026-11"
    period.mkdir(parents=True)
    table = cur2_table(rows)
    half = len(rows) // 2
    pq.write_table(table.slice(0, half), period / "cur-00001.snappy.parquet", compression="snappy")
    pq.write_table(table.slice(half), period / "cur-00002.snappy.parquet", compression="snappy", row_group_size=50)
    (tmp_path / "cur" / "cur-Manifest.json").write_text('{"reportName": "cur"}')
    # When it is read, Then every line is, as from the CSV, to the same totals and findings
    parquet, reader = read("aws", files(tmp_path / "cur"))
    expected, _ = read("aws", files(FIXTURES / "aws_cur2.csv"))
    assert reader.read == len(rows) == 332 and not reader.skipped
    assert parquet.totals() == expected.totals()
    assert parquet.daily == expected.daily
    assert anomalies(parquet.daily, {}) == anomalies(expected.daily, {}) != []
    assert idle_resources(parquet, {}) == idle_resources(expected, {}) != []


def test_legacy_cur_column_names_in_parquet_are_mapped_and_a_cost_with_no_number_is_counted(tmp_path):
    # Given the legacy CUR's columns (lineItem/UnblendedCost ...) in Parquet, its cost still text as the CSV's
    rows = csv_rows("aws_cur_legacy.csv")
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "legacy.parquet")
    spend, reader = read("aws", [tmp_path / "legacy.parquet"])
    assert reader.read == 9
    assert dict(reader.skipped) == {"legacy.parquet: line_item_unblended_cost is no number": 1}
    assert spend.totals()["2026-09"]["total_cost"] == pytest.approx(3 * (24 * 0.25 + 24 * 0.0225))


def test_another_providers_parquet_read_as_aws_is_refused_naming_the_column_it_lacks(tmp_path):
    pq.write_table(pa.Table.from_pylist(csv_rows("azure_cost.csv")), tmp_path / "azure.parquet")
    with pytest.raises(InvalidInput) as refused:
        read("aws", [tmp_path / "azure.parquet"])
    assert refused.value.field == "line_item_unblended_cost"


def test_a_parquet_line_with_no_usage_date_is_counted_by_its_reason(tmp_path):
    rows = csv_rows("aws_cur2.csv")[:3]
    rows[1]["line_item_usage_start_date"] = ""
    pq.write_table(cur2_table(rows), tmp_path / "cur.parquet")
    _, reader = read("aws", [tmp_path / "cur.parquet"])
    assert reader.read == 2 and dict(reader.skipped) == {"cur.parquet: line_item_usage_start_date is missing": 1}


def test_a_damaged_parquet_file_is_named_in_the_reports_problems_and_the_other_exports_are_read(any_db, tmp_path):
    # Given an integration whose Parquet part was cut short in transfer, beside a readable CSV one
    whole = tmp_path / "whole.parquet"
    pq.write_table(cur2_table(csv_rows("aws_cur2.csv")), whole)
    (tmp_path / "cut").mkdir()
    (tmp_path / "cut" / "cur-00001.snappy.parquet").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    config = AgentSettings(name="costs", kind="cost", automation_level="manual", approval_required=True,
                           thresholds={}, integrations=(
                               {"type": "cost_export", "provider": "aws", "path": str(FIXTURES / "aws_cur2.csv")},
                               {"type": "cost_export", "provider": "aws", "path": str(tmp_path / "cut")}))  # fmt: skip
    # When the agent runs, Then it reports the CSV's findings and names the damaged file as a problem
    events = CostAgent(now=lambda: datetime(2026, 11, 22, tzinfo=UTC)).run(config)
    assert sorted(e.event_type for e in events)[0] == "cost_anomaly"
    november = in_transaction(lambda: reports(month="2026-11"))[0]
    [problem] = november["problems"]
    assert problem.startswith("integrations[1]: cur-00001.snappy.parquet is no readable Parquet file: ")

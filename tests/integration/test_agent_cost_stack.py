"""The cost agent on the real stack: configured over the API, run by the worker on queue agent_cost over the
export fixtures, its findings stored as events by the pipeline, and its reports served as JSON and CSV."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from app.auth import create_key
from tests.http import request
from tests.processes import wait_for

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cost"
REPORTS = "/api/v1/cost-optimization/reports"


def test_a_cost_agents_run_over_exports_becomes_events_and_a_monthly_report_in_json_and_csv(stack, db):
    base, viewer = stack.base, stack.viewer
    operator = create_key(role="operator", name="cost operator")
    # Given a cost agent reading an AWS CUR, a GCP export and Kubernetes requests against use
    configured = request("POST", f"{base}/api/v1/agents/config", key=stack.admin, json={
        "name": "cost-main", "type": "cost", "enabled": True, "interval_seconds": 86400,
        "thresholds": {"anomaly_mad": 4, "idle_min_cost": 1},
        "integrations": [
            {"type": "cost_export", "provider": "aws", "path": str(FIXTURES / "aws_cur2.csv")},
            {"type": "cost_export", "provider": "gcp", "path": str(FIXTURES / "gcp_billing.jsonl")},
            {"type": "kubernetes_usage", "path": str(FIXTURES / "k8s_usage.csv")}]})  # fmt: skip
    assert configured.status in (200, 201), configured.body
    agents = request("GET", f"{base}/api/v1/agents/status", key=viewer).json()["agents"]
    assert next(a for a in agents if a["name"] == "cost-main")["implementation"] == {"ready": True, "integrations": 3}

    # When an operator runs it (the stack's worker takes it from agent_cost)
    sent = request("POST", f"{base}/api/v1/agents/cost-main/run", key=operator)
    assert sent.status == 202, sent.body

    # Then its findings come through the pipeline as stored events, the spike among them
    def events(**query: str) -> list[dict]:
        params = "&".join(f"{k}={v}" for k, v in query.items())
        return request("GET", f"{base}/api/v1/events?{params}", key=viewer).json()["events"]

    spikes = wait_for(lambda: events(host="cost:aws:111122223333/AmazonEC2"), timeout=60, message="the anomaly event")
    assert spikes[0]["event_type"] == "cost_anomaly" and spikes[0]["severity"] == "high"
    oversized = wait_for(lambda: events(host="k8s:shop/deployment/web"), timeout=30, message="the oversized event")
    assert oversized[0]["event_type"] == "oversized"
    assert wait_for(lambda: events(event_type="cost_anomaly"), timeout=30, message="both spikes") and \
        {e["host"] for e in events(event_type="cost_anomaly")} >= {"cost:aws:111122223333/AmazonEC2",
                                                                   "cost:gcp:shop-prod-4821/BigQuery"}  # fmt: skip

    # And the report answers JSON: November against October, by service and account, findings with savings
    body = request("GET", f"{base}{REPORTS}", key=viewer).json()
    months = {(r["agent"], r["month"]): r for r in body["reports"]}
    november, october = months[("cost-main", "2026-11")], months[("cost-main", "2026-10")]
    assert november["trend"]["previous_cost"] == october["total_cost"] and november["trend"]["change_pct"] > 0
    assert {s["provider"] for s in november["by_service"]} == {"aws", "gcp"}
    assert {f["kind"] for f in november["findings"]} == {"cost_anomaly", "idle_resource", "oversized"}
    assert november["estimated_monthly_savings"] > 0 and november["problems"] == []
    # And CSV, by ?format=csv or by the Accept header
    by_param = request("GET", f"{base}{REPORTS}?format=csv&month=2026-11&agent=cost-main", key=viewer)
    by_accept = request("GET", f"{base}{REPORTS}?month=2026-11&agent=cost-main", key=viewer,
                        headers={"Accept": "text/csv"})  # fmt: skip
    assert by_param.status == 200 and by_param.headers["content-type"].startswith("text/csv")
    assert by_accept.body == by_param.body
    table = list(csv.DictReader(io.StringIO(by_param.body.decode())))
    assert {r["month"] for r in table} == {"2026-11"}
    total = next(r for r in table if r["row"] == "total")
    assert float(total["cost"]) == november["total_cost"]
    assert any(r["row"] == "oversized" and r["resource"] == "k8s:shop/deployment/web" for r in table)
    # And bad filters are refused naming the field
    for query, field in (("month=November", "month"), ("format=xlsx", "format")):
        refused = request("GET", f"{base}{REPORTS}?{query}", key=viewer)
        assert refused.status == 400 and refused.json()["field"] == field, refused.body

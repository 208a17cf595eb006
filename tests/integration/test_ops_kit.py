"""The operations kit (ops/): every alert and dashboard query names metrics the real ``/metrics`` exports.

A query naming a metric that does not exist never fires and draws nothing, silently: so the stack's
``/metrics`` is scraped over HTTP (gunicorn, RabbitMQ, PostgreSQL) and each metric, label and label
value the expressions select on is looked up in it. ``promtool`` (Debian's ``prometheus`` package)
checks and unit-tests the rules when it is installed; the package is ~100 MB with its web assets, so
ensure-services does not install it and the promtool tests skip without it, saying so.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import timedelta

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from app.db import in_transaction
from app.receivers import counters
from app.timeutil import now
from tests.deploy import ROOT
from tests.http import request

ALERTS = ROOT / "ops" / "prometheus-alerts.yml"
DASHBOARD = ROOT / "ops" / "grafana-dashboard.json"
#: Series Prometheus makes itself, not the product.
PROMETHEUS_OWN = {"up"}
#: PromQL words that are neither metrics nor functions.
KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
#: ``name{label="value", ...}`` selectors.
SELECTOR = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}")
MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)"')
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")


def alert_expressions() -> dict[str, str]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return {rule["alert"]: rule["expr"] for group in groups for rule in group["rules"]}


def dashboard_expressions() -> dict[str, str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return {f"{panel['title']} [{target['refId']}]": target["expr"]
            for panel in dashboard["panels"] for target in panel.get("targets", [])}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """The series an expression selects: identifiers that are not functions, keywords or label names."""
    bare = re.sub(r'"[^"]*"', '""', expr)
    bare = re.sub(r"\{[^}]*\}", "", bare)
    bare = GROUPING.sub("", bare)
    bare = re.sub(r"\[[^\]]*\]", "", bare)
    names = set()
    for match in re.finditer(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(\s*\()?", bare):
        if not match.group(2) and match.group(1) not in KEYWORDS:
            names.add(match.group(1))
    return names


def scrape(stack) -> dict[str, list]:
    """Sample name -> samples, for each family of the stack's /metrics (counters also under ``<name>_total``)."""
    reply = request("GET", f"{stack.base}/metrics")
    assert reply.status == 200
    exported: dict[str, list] = {}
    for family in text_string_to_metric_families(reply.body.decode()):
        names = {family.name} | ({f"{family.name}_total"} if family.type == "counter" else set())
        for name in names:
            exported.setdefault(name, [])
        for sample in family.samples:
            exported.setdefault(sample.name, []).append(sample)
    return exported


@pytest.fixture
def exported(stack, db):
    """The stack's /metrics with a live and a silent receiver process's counters, stored as receivers store them."""
    started = now() - timedelta(hours=1)
    live = counters.Identity(kind="syslog", hostname="edge-ops-kit", pid=4242, started_at=started)
    silent = counters.Identity(kind="snmp", hostname="edge-ops-kit", pid=4343, started_at=started)
    report = {"syslog": {"received": 10, "oversize": 1}, "outbox": {"published": 9, "dropped_full": 2, "spooled": 3}}
    in_transaction(lambda: counters.save(live, report, interval_s=15.0, at=now()))
    in_transaction(lambda: counters.save(silent, {"snmp": {"received": 1}}, interval_s=15.0, at=started))
    return scrape(stack)


def test_every_alert_and_dashboard_query_names_metrics_labels_and_values_that_metrics_exports(exported):
    # Given every expression of the alert rules and the dashboard
    expressions = {**alert_expressions(), **dashboard_expressions()}
    assert len(expressions) >= 20
    used: set[str] = set()
    for where, expr in expressions.items():
        # Then each names at least one series, and each series is exported (or is Prometheus's own)
        names = metric_names(expr)
        assert names, f"{where}: no metric in {expr!r}"
        used |= names
        unknown = names - set(exported) - PROMETHEUS_OWN
        assert not unknown, f"{where}: {sorted(unknown)} not exported by /metrics"
        # And each label it matches or groups on exists on that series, with a value the product exports
        for name, matchers in SELECTOR.findall(expr):
            samples = exported.get(name, [])
            if name in PROMETHEUS_OWN:
                continue
            assert samples, f"{where}: {name} has no samples to check its labels against"
            for label, op, value in MATCHER.findall(matchers):
                values = {s.labels.get(label) for s in samples}
                assert label in samples[0].labels, f"{where}: {name} has no label {label!r}"
                if op == "=":
                    assert value in values, f"{where}: {name}{{{label}={value!r}}} matches nothing ({values})"
        for grouping in GROUPING.findall(expr):
            for label in filter(None, (g.strip() for g in grouping.split(","))):
                if label in ("instance", "job"):
                    continue  # added by Prometheus when it scrapes
                assert any(label in s.labels for n in names for s in exported.get(n, [])), (
                    f"{where}: no series of {sorted(names)} has the label {label!r}"
                )
    # And together they cover the product's health: queues, dead letters, receivers, incidents, executions,
    # approvals, the database and the broker, and the events stored
    assert {
        "opsconductor_queue_messages", "opsconductor_receiver_dropped_total", "opsconductor_incidents",
        "opsconductor_executions", "opsconductor_approvals_pending", "opsconductor_broker_up",
        "opsconductor_database_up", "opsconductor_events_stored_estimate",
    } <= used  # fmt: skip


def test_the_alert_rules_cover_each_failure_the_runbook_names():
    # Given the rule names and their expressions
    alerts = alert_expressions()
    # Then queue growth, dead letters, receiver drops, database and broker loss and waiting approvals each alert
    wanted = {
        "OpsConductorQueueBacklogGrowing": "opsconductor_queue_messages",
        "OpsConductorDeadLetters": 'kind="dead"',
        "OpsConductorReceiverDrops": "opsconductor_receiver_dropped_total",
        "OpsConductorDatabaseDown": "opsconductor_database_up",
        "OpsConductorBrokerDown": "opsconductor_broker_up",
        "OpsConductorApprovalsWaiting": "opsconductor_approvals_pending",
    }
    for alert, needle in wanted.items():
        assert needle in alerts[alert], alert
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    for rule in (r for g in groups for r in g["rules"]):
        assert rule["labels"]["severity"] in ("critical", "warning", "info") and rule["annotations"]["summary"]


def test_the_dashboard_is_importable_grafana_json_with_a_datasource_input():
    # Given the dashboard
    dashboard = json.loads(DASHBOARD.read_text())
    # Then it asks for its Prometheus at import, and every panel queries it and has a place on the grid
    assert [i["name"] for i in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"])
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}" and panel["targets"] and panel["description"]


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus, ~100 MB: not installed by "
                    "ensure-services); the metric names are checked against /metrics above")  # fmt: skip
    return found


def test_promtool_checks_the_rules():
    reply = subprocess.run([_promtool(), "check", "rules", str(ALERTS)], capture_output=True, text=True)
    assert reply.returncode == 0, reply.stdout + reply.stderr


def test_promtool_unit_tests_show_the_rules_fire_on_the_series_two_web_processes_export():
    # Given ops/prometheus-alerts.test.yml: a growing queue, dead letters, a database loss, a waiting approval,
    # drops; each series exported by two web processes
    reply = subprocess.run([_promtool(), "test", "rules", str(ROOT / "ops" / "prometheus-alerts.test.yml")],
                           capture_output=True, text=True)  # fmt: skip
    # Then each alert fires once (not once per web process) with its summary, and the others stay quiet
    assert reply.returncode == 0, reply.stdout + reply.stderr

"""Validation and mapping of every webhook adapter, on the payloads the real tools send."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.errors import InvalidEvent
from app.events.normalize import fingerprint_of
from app.parsing.webhooks import ADAPTERS, Generic, _valid_generic, pagerduty_response, parse_timestamp

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

#: Alertmanager 0.27 webhook (version 4), one firing and one resolved alert.
ALERTMANAGER = {
    "version": "4",
    "groupKey": '{}:{alertname="HighCPU"}',
    "truncatedAlerts": 0,
    "status": "firing",
    "receiver": "opsconductor",
    "groupLabels": {"alertname": "HighCPU"},
    "commonLabels": {"alertname": "HighCPU", "job": "node"},
    "commonAnnotations": {},
    "externalURL": "http://alertmanager:9093",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "HighCPU", "instance": "web-01:9100", "job": "node", "severity": "critical"},
            "annotations": {"summary": "CPU above 95% on web-01", "description": "5m average 97.5%"},
            "startsAt": "2026-11-23T11:58:00.123456789Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=cpu",
            "fingerprint": "c0ffee1234567890",
        },
        {
            "status": "resolved",
            "labels": {"alertname": "DiskFull", "instance": "db-01:9100", "job": "node", "severity": "warning"},
            "annotations": {"summary": "Disk full"},
            "startsAt": "2026-11-23T10:00:00Z",
            "endsAt": "2026-11-23T11:59:00Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=disk",
            "fingerprint": "deadbeef00000001",
        },
    ],
}

#: Grafana 11 unified alerting webhook.
GRAFANA = {
    "receiver": "opsconductor",
    "status": "firing",
    "orgId": 1,
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "Latency high", "grafana_folder": "API", "service": "checkout", "host": "api-3"},
            "annotations": {"summary": "p99 latency 2.3 s"},
            "startsAt": "2026-11-23T11:50:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://grafana:3000/alerting/grafana/abc/view",
            "fingerprint": "57c6d9296de2ad39",
            "silenceURL": "http://grafana:3000/alerting/silence/new",
            "dashboardURL": "http://grafana:3000/d/xyz",
            "panelURL": "http://grafana:3000/d/xyz?viewPanel=2",
            "values": {"B": 2.3, "C": 1},
            "valueString": "[ var='B' labels={} value=2.3 ]",
        }
    ],
    "groupLabels": {"alertname": "Latency high"},
    "commonLabels": {"alertname": "Latency high"},
    "commonAnnotations": {},
    "externalURL": "http://grafana:3000/",
    "version": "1",
    "groupKey": '{}:{alertname="Latency high"}',
    "truncatedAlerts": 0,
    "title": "[FIRING:1] Latency high",
    "state": "alerting",
    "message": "**Firing**",
}

#: PagerDuty Events API v2 trigger.
PAGERDUTY = {
    "routing_key": "oc_secret",
    "event_action": "trigger",
    "dedup_key": "srv01/HTTP",
    "payload": {
        "summary": "DISK at 99% on machine prod-datapipe03.example.com",
        "timestamp": "2026-11-23T11:55:00.000+0000",
        "severity": "critical",
        "source": "prod-datapipe03.example.com",
        "component": "mysql",
        "group": "prod-datapipe",
        "class": "disk_full",
        "custom_details": {"free space": "1%"},
    },
    "client": "Sample Monitoring Service",
    "client_url": "https://monitoring.example.com",
}


def normalize(adapter: str, body) -> list[dict]:
    return [ADAPTERS[adapter].normalize(item, received_at=NOW) for item in ADAPTERS[adapter].split(body)]


def test_a_generic_event_maps_the_spec_fields():
    body = {"source": "nagios", "source_type": "nagios", "event_type": "threshold_breach", "severity": "critical",
            "timestamp": "2024-12-20T10:30:00Z", "host": "web-01", "service": "nginx", "title": "CPU",
            "description": "d", "metadata": {"cpu_usage": 97.5}, "tags": ["prod"]}  # fmt: skip
    [event] = normalize("webhook", body)
    assert (event["source_type"], event["event_type"], event["severity"], event["host"]) == (
        "nagios", "threshold_breach", "critical", "web-01",
    )  # fmt: skip
    assert event["occurred_at"] == datetime(2024, 12, 20, 10, 30, tzinfo=UTC)
    assert event["metadata"] == {"cpu_usage": 97.5, "source_type": "nagios"}
    assert event["tags"] == ["prod"]


def test_the_older_spec_shape_with_message_is_accepted():
    [event] = normalize("webhook", {"source": "x", "severity": "high", "message": "CPU usage exceeded 95%"})
    assert event["title"] == "CPU usage exceeded 95%"
    assert event["occurred_at"] == NOW and event["source_type"] == "webhook" and event["event_type"] == "alert"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"severity": "high", "title": "t"}, "source"),
        ({"source": "x"}, "title"),
        ({"source": "x", "title": "t", "severity": "urgent"}, "severity"),
        ({"source": "x", "title": "t", "metadata": [1]}, "metadata"),
        ({"source": "x", "title": "t", "tags": "prod"}, "tags"),
        ({"source": "x", "title": "t", "tags": ["ok", 3]}, "tags"),
        ({"source": "x", "title": "t", "timestamp": "yesterday"}, "timestamp"),
        ({"source": "x", "title": 5}, "title"),
        ([{"source": "x", "title": "t"}, "oops"], "[1]"),
        ([], "[]"),
        ("just a string", "body"),
    ],
)
def test_bad_generic_input_names_the_field(body, field):
    with pytest.raises(InvalidEvent) as error:
        ADAPTERS["webhook"].split(body)
    assert error.value.field == field


#: Values of the kinds a generic event's fields hold, right and wrong ones mixed.
ANY_VALUE = st.one_of(
    st.none(), st.booleans(), st.integers(), st.sampled_from(["", " ", "x", "high", "urgent", "2024-12-20T10:30:00Z",
                                                              "x" * 10_001, "yesterday"]),
    st.lists(st.sampled_from(["prod", 3, None]), max_size=3), st.dictionaries(st.sampled_from(["a"]), st.integers()),
    st.sampled_from([1_734_690_600, 1e30]),
)  # fmt: skip
EVENTS = st.one_of(
    st.dictionaries(st.sampled_from([*Generic.STRINGS, "severity", "metadata", "tags", "timestamp", "other"]),
                    ANY_VALUE, max_size=8),
    ANY_VALUE,
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(EVENTS)
def test_the_one_pass_check_accepts_exactly_what_the_named_checks_accept(event):
    # Given any object shaped, or not, like a generic event
    # When both checks judge it
    try:
        Generic()._check(event, "")
        accepted = True
    except InvalidEvent:
        accepted = False
    # Then the one-pass check accepts it exactly when the check naming fields does
    assert _valid_generic(event) is accepted


def test_an_array_names_its_first_bad_event_behind_good_ones():
    body = [{"source": "x", "title": "t", "severity": "high", "tags": ["a"], "timestamp": 1_734_690_600}] * 3
    with pytest.raises(InvalidEvent) as error:
        ADAPTERS["webhook"].split([*body, {"source": "x", "title": "t", "tags": ["a", 1]}])
    assert error.value.field == "[3].tags"


def test_an_alertmanager_webhook_gives_one_event_per_alert():
    firing, resolved = normalize("alertmanager", ALERTMANAGER)
    assert (firing["event_type"], firing["severity"], firing["host"], firing["service"]) == (
        "HighCPU", "critical", "web-01", "node",
    )  # fmt: skip
    assert firing["title"] == "CPU above 95% on web-01"
    assert firing["occurred_at"] == datetime(2026, 11, 23, 11, 58, 0, 123456, tzinfo=UTC)
    assert firing["fingerprint"] == "c0ffee1234567890"
    assert firing["metadata"]["ends_at"] is None and firing["metadata"]["externalURL"] == "http://alertmanager:9093"
    # A resolved alert is kept as a resolution, with a key of its own
    assert resolved["metadata"]["resolution"] is True and resolved["severity"] == "info"
    assert resolved["occurred_at"] == datetime(2026, 11, 23, 11, 59, tzinfo=UTC)
    assert fingerprint_of(resolved) == "alertmanager:deadbeef00000001:resolved"


@pytest.mark.parametrize(
    ("instance", "host"),
    [
        ("web-01:9100", "web-01"),
        ("10.0.3.11:9100", "10.0.3.11"),
        ("[2001:db8::7]:9100", "2001:db8::7"),
        ("2001:db8::7", "2001:db8::7"),
        ("db-01", "db-01"),
        # The blackbox exporter's probes: the target's URL (not its scheme) names the host
        ("https://web-1.example.com", "web-1.example.com"),
        ("https://Shop.example.com:8443/health?x=1", "shop.example.com"),
        ("http://[2001:db8::9]:8080/", "2001:db8::9"),
        ("http://[broken", "http://[broken"),
    ],
)
def test_an_alerts_instance_names_its_host(instance, host):
    body = {
        **ALERTMANAGER,
        "alerts": [dict(ALERTMANAGER["alerts"][0], labels={"alertname": "ProbeFailed", "instance": instance})],
    }
    (event,) = normalize("alertmanager", body)
    assert event["host"] == host


@pytest.mark.parametrize(
    ("labels", "host"),
    [
        ({"alertname": "KubeNodeNotReady", "node": "worker-3"}, "worker-3"),
        ({"alertname": "KubePodNotReady", "namespace": "shop", "pod": "cart-5b8d9c-7wz4p"}, "cart-5b8d9c-7wz4p"),
        (
            {"alertname": "KubePersistentVolumeFillingUp", "namespace": "monitoring", "persistentvolumeclaim": "db-0"},
            "db-0",
        ),
        ({"alertname": "KubeStateMetricsListErrors"}, None),
    ],
)
def test_kube_state_metrics_alerts_are_on_what_they_are_about_not_on_the_exporter(labels, host):
    # kube-prometheus: every alert of kube-state-metrics carries the exporter's own address as its instance
    labels = {**labels, "job": "kube-state-metrics", "instance": "10.244.0.12:8080", "severity": "warning"}
    body = {**ALERTMANAGER, "alerts": [dict(ALERTMANAGER["alerts"][0], labels=labels)]}
    (event,) = normalize("alertmanager", body)
    assert event["host"] == host


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b.update(version="3"), "version"),
        (lambda b: b.update(alerts=[]), "alerts"),
        (lambda b: b["alerts"][1]["labels"].pop("alertname"), "alerts[1].labels.alertname"),
        (lambda b: b["alerts"][0].update(status="pending"), "alerts[0].status"),
    ],
)
def test_bad_alertmanager_payloads_name_the_field(mutate, field):
    import copy

    body = copy.deepcopy(ALERTMANAGER)
    mutate(body)
    with pytest.raises(InvalidEvent) as error:
        ADAPTERS["alertmanager"].split(body)
    assert error.value.field == field


def test_a_grafana_alert_keeps_its_dashboard_links_and_values():
    [event] = normalize("grafana", GRAFANA)
    assert (event["source_type"], event["event_type"], event["host"], event["service"]) == (
        "grafana", "Latency high", "api-3", "checkout",
    )  # fmt: skip
    assert event["severity"] == "high"  # no severity label: an alert is worth a look
    assert event["metadata"]["values"] == {"B": 2.3, "C": 1}
    assert event["metadata"]["panelURL"].endswith("viewPanel=2")
    assert event["fingerprint"] == "57c6d9296de2ad39"


def test_a_pagerduty_trigger_maps_and_the_routing_key_is_not_kept():
    [item] = ADAPTERS["pagerduty"].split(PAGERDUTY)
    assert "routing_key" not in item
    event = ADAPTERS["pagerduty"].normalize(item, received_at=NOW)
    assert (event["severity"], event["host"], event["service"], event["event_type"]) == (
        "critical", "prod-datapipe03.example.com", "mysql", "disk_full",
    )  # fmt: skip
    assert event["occurred_at"] == datetime(2026, 11, 23, 11, 55, tzinfo=UTC)
    assert event["fingerprint"] == "srv01/HTTP"
    assert pagerduty_response(item, event_id="e1") == {"status": "success", "message": "Event processed",
                                                         "dedup_key": "srv01/HTTP"}  # fmt: skip


def test_a_pagerduty_resolve_is_a_resolution_of_the_same_dedup_key():
    [item] = ADAPTERS["pagerduty"].split({"routing_key": "k", "event_action": "resolve", "dedup_key": "srv01/HTTP"})
    event = ADAPTERS["pagerduty"].normalize(item, received_at=NOW)
    assert event["metadata"]["resolution"] is True and event["severity"] == "info"
    assert fingerprint_of(event) == "pagerduty:srv01/HTTP:resolved"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"event_action": "trigger", "payload": {}}, "routing_key"),
        ({"routing_key": "k", "event_action": "explode"}, "event_action"),
        ({"routing_key": "k", "event_action": "resolve"}, "dedup_key"),
        ({"routing_key": "k", "event_action": "trigger", "payload": {"summary": "s", "source": "h", "severity": "bad"}},
         "payload.severity"),
        ({"routing_key": "k", "event_action": "trigger", "payload": {"source": "h", "severity": "info"}}, "payload.summary"),
    ],
)  # fmt: skip
def test_bad_pagerduty_events_name_the_field(body, field):
    with pytest.raises(InvalidEvent) as error:
        ADAPTERS["pagerduty"].split(body)
    assert error.value.field == field


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-23T10:00:00Z", datetime(2026, 11, 23, 10, tzinfo=UTC)),
        ("2026-11-23T12:00:00+02:00", datetime(2026, 11, 23, 10, tzinfo=UTC)),
        ("2026-11-23T10:00:00.123456789Z", datetime(2026, 11, 23, 10, 0, 0, 123456, tzinfo=UTC)),
        (1795428000, datetime(2026, 11, 23, 10, tzinfo=UTC)),
        (1795428000000, datetime(2026, 11, 23, 10, tzinfo=UTC)),
    ],
)
def test_timestamps_of_every_tool_parse_to_utc(value, expected):
    assert parse_timestamp(value, "timestamp") == expected

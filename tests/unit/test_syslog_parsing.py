"""Syslog frames as real senders write them -> events: RFC 3164 and its deviations, RFC 5424, CEF, LEEF, rules."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.errors import InvalidEvent, InvalidRule
from app.parsing.cef import parse_cef, parse_cef_extension, parse_leef
from app.parsing.syslog import parse_structured_data, parse_syslog
from app.parsing.syslog_rules import Rule, RuleSet, default_rules

NOW = datetime(2026, 11, 23, 23, 55, tzinfo=UTC)


def parse(line: bytes, **kw):
    return parse_syslog(line, received_at=kw.pop("received_at", NOW), peer="192.0.2.1", **kw)


# Captured from util-linux logger 2.38 (`logger --rfc3164|--rfc5424 -n host -P port -d ...`).
LOGGER_3164 = b"<36>Nov 23 23:53:51 vm myapp: Failed password for alice from 192.0.2.7 port 4242 ssh2"
LOGGER_5424 = (
    b'<36>1 2026-11-23T23:53:51.065810+00:00 vm myapp - - [timeQuality tzKnown="1" isSynced="0"]'
    b" Failed password for alice from 192.0.2.7 port 4242 ssh2"
)
LOGGER_5424_SD = (
    b'<13>1 2026-11-23T23:53:51.067906+00:00 vm root - - [timeQuality tzKnown="1" isSynced="0"]'
    b'[zoo@123 tiger="hungry"] hello sd'
)


def test_logger_rfc3164_line_maps_host_service_and_the_spec_rule():
    event = parse(LOGGER_3164)
    assert (event["host"], event["service"], event["event_type"], event["severity"]) == (
        "vm", "myapp", "authentication_failure", "medium",
    )  # fmt: skip
    assert event["metadata"]["source_ip"] == "192.0.2.7"
    assert (event["metadata"]["facility_name"], event["metadata"]["syslog_severity"]) == ("auth", 4)
    assert event["occurred_at"] == datetime(2026, 11, 23, 23, 53, 51, tzinfo=UTC)


def test_logger_rfc5424_line_keeps_structured_data_and_fractional_time():
    event = parse(LOGGER_5424)
    assert event["metadata"]["format"] == "rfc5424"
    assert event["metadata"]["structured_data"] == {"timeQuality": {"tzKnown": "1", "isSynced": "0"}}
    assert event["occurred_at"] == datetime(2026, 11, 23, 23, 53, 51, 65810, tzinfo=UTC)
    assert event["event_type"] == "authentication_failure" and event["host"] == "vm"
    assert parse(LOGGER_5424_SD)["metadata"]["structured_data"]["zoo@123"] == {"tiger": "hungry"}


def test_rfc5424_escapes_bom_and_nilvalues():
    line = (
        b'<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3"'
        b' eventSource="Appli\\"cation" path="C:\\\\x" eventID="1011"][x@1 a="b\\]"] \xef\xbb\xbfAn application event'
    )
    event = parse(line)
    sd = event["metadata"]["structured_data"]
    assert sd["exampleSDID@32473"] == {"iut": "3", "eventSource": 'Appli"cation', "path": "C:\\x", "eventID": "1011"}
    assert sd["x@1"] == {"a": "b]"}
    assert event["title"] == "An application event"  # the BOM is not part of the text
    assert (event["metadata"]["procid"], event["metadata"]["msgid"]) == (None, "ID47")
    assert (event["severity"], event["metadata"]["facility_name"]) == ("low", "local4")
    nil = parse(b"<14>1 - - - - - - message with nothing else")
    assert nil["host"] == "192.0.2.1" and nil["occurred_at"] == NOW and nil["title"] == "message with nothing else"


def test_rfc3164_without_hostname_keeps_the_tag_as_service():
    event = parse(b"<13>Nov 23 10:00:00 sshd[123]: Accepted publickey for bob from 10.0.0.9 port 5000 ssh2")
    assert (event["host"], event["service"], event["metadata"]["procid"]) == ("192.0.2.1", "sshd", "123")
    assert (event["event_type"], event["severity"], event["metadata"]["user"]) == (
        "authentication_success",
        "info",
        "bob",
    )


def test_rfc3164_with_an_iso_timestamp_as_rsyslog_sends_it():
    event = parse(b"<14>2026-11-23T11:59:00.123456+01:00 web-01 nginx[42]: upstream timed out")
    assert event["occurred_at"] == datetime(2026, 11, 23, 10, 59, 0, 123456, tzinfo=UTC)
    assert (event["host"], event["service"], event["severity"]) == ("web-01", "nginx", "info")


def test_cisco_sequence_numbers_and_unsynchronized_time_marks():
    down = parse(
        b"<187>123: *Mar  1 00:01:02.345 UTC: %LINK-3-UPDOWN: Interface GigabitEthernet0/1, changed state to down"
    )
    assert down["metadata"]["sequence"] == 123 and down["metadata"]["time_sync"] == "unsynchronized"
    assert (down["event_type"], down["severity"], down["metadata"]["interface"]) == (
        "connectivity_issue", "high", "GigabitEthernet0/1",
    )  # fmt: skip
    assert down["occurred_at"] == datetime(2026, 3, 1, 0, 1, 2, 345000, tzinfo=UTC)
    up = parse(
        b"<189>124: router1: .Nov 23 11:00:00: %LINEPROTO-5-UPDOWN: Line protocol on Interface Gi0/1, changed state to up"
    )
    assert (up["host"], up["service"], up["event_type"], up["severity"]) == (
        "router1",
        "LINEPROTO",
        "connectivity_restored",
        "info",
    )
    config = parse(
        b"<189>45: router1: Nov 23 11:00:00.123: %SYS-5-CONFIG_I: Configured from console by admin on vty0 (10.0.0.5)"
    )
    assert (config["event_type"], config["severity"], config["metadata"]["source_ip"]) == (
        "configuration_change",
        "low",
        "10.0.0.5",
    )


def test_a_year_less_december_date_arriving_in_january_is_last_year():
    event = parse(b"<13>Dec 31 23:59:59 host app: bye", received_at=datetime(2027, 1, 1, 0, 0, 5, tzinfo=UTC))
    assert event["occurred_at"] == datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)


def test_a_line_without_pri_is_user_notice():
    event = parse(b"disk is slow")
    assert (event["metadata"]["facility"], event["metadata"]["syslog_severity"], event["severity"]) == (1, 5, "low")
    assert event["title"] == "disk is slow" and event["host"] == "192.0.2.1"


@pytest.mark.parametrize(("pri", "severity"), [(0, "critical"), (2, "critical"), (3, "high"), (4, "medium"), (5, "low"),
                                               (6, "info"), (7, "info")])  # fmt: skip
def test_syslog_severities_map_to_ours(pri, severity):
    assert parse(b"<%d>Nov 23 10:00:00 h app: something" % (8 + pri))["severity"] == severity


@pytest.mark.parametrize("line", [b"", b"   ", b"<999>Nov 23 10:00:00 h a: x", b'<13>1 2026-11-23T10:00:00Z h a - - [bad x] m',
                                  b"<13>1 yesterday h a - - - m"])  # fmt: skip
def test_malformed_frames_are_refused_with_a_reason(line):
    with pytest.raises(InvalidEvent):
        parse(line)


def test_cef_inside_syslog_with_header_and_extension_escapes():
    line = (
        rb"<134>Nov 23 10:00:00 arcsight CEF:0|Security|threat\|manager|1.0|100|worm successfully stopped|10|"
        rb"src=10.0.0.1 dst=2.1.2.2 msg=Detected a threat\= now. No action needed cs1=C:\\Windows fname=a\nb"
    )
    event = parse(line)
    cef = event["metadata"]["cef"]
    assert cef["device_product"] == "threat|manager"
    assert cef["extension"]["msg"] == "Detected a threat= now. No action needed"
    assert cef["extension"]["cs1"] == "C:\\Windows" and cef["extension"]["fname"] == "a\nb"
    assert (event["event_type"], event["severity"], event["title"], event["host"]) == (
        "100",
        "critical",
        "worm successfully stopped",
        "arcsight",
    )


@pytest.mark.parametrize(("sev", "ours"), [("0", "low"), ("3", "low"), ("5", "medium"), ("8", "high"), ("9", "critical"),
                                           ("Very-High", "critical"), ("Low", "low")])  # fmt: skip
def test_cef_severities(sev, ours):
    assert parse(b"CEF:0|V|P|1|sig|Name|%s|src=1.1.1.1" % sev.encode())["severity"] == ours


def test_bare_cef_and_an_incomplete_header():
    assert parse_cef("CEF:0|V|P|1|42|Name|3|")["extension"] == {}
    with pytest.raises(InvalidEvent):
        parse_cef("CEF:0|V|P|1")
    assert parse_cef_extension("a=1 b=two words c=x\\=y") == {"a": "1", "b": "two words", "c": "x=y"}


def test_leef_1_is_tab_separated_and_leef_2_has_its_own_delimiter():
    one = parse_leef("LEEF:1.0|Microsoft|MSExchange|4.0 SP1|15345|src=10.50.1.1\tdst=2.10.20.20\tsev=5\tusrName=joe")
    assert one["event_id"] == "15345" and one["attributes"]["usrName"] == "joe"
    two = parse_leef("LEEF:2.0|Lancope|StealthWatch|1.0|41|^|src=10.0.1.8^dst=10.0.0.5^sev=9^msg=hello there")
    assert two["attributes"] == {"src": "10.0.1.8", "dst": "10.0.0.5", "sev": "9", "msg": "hello there"}
    hexed = parse_leef("LEEF:2.0|V|P|1|7|x5E|a=1^b=2")
    assert hexed["attributes"] == {"a": "1", "b": "2"}
    event = parse(b"<13>Nov 23 10:00:00 fw01 LEEF:2.0|Lancope|StealthWatch|1.0|41|^|src=10.0.1.8^sev=9^msg=hello there")
    assert (event["event_type"], event["severity"], event["title"], event["host"]) == (
        "41",
        "critical",
        "hello there",
        "fw01",
    )


@pytest.mark.parametrize(
    ("message", "event_type", "severity", "fields"),
    [
        ("Out of disk space on /var", "disk_space_critical", "critical", {}),
        ("write error: No space left on device", "disk_space_critical", "critical", {}),
        ("Failed password for invalid user admin from 203.0.113.5 port 22 ssh2", "authentication_failure", "medium",
         {"user": "admin", "source_ip": "203.0.113.5"}),
        ("alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/systemctl restart nginx", "privilege_escalation",
         "low", {"user": "alice", "command": "/usr/bin/systemctl restart nginx"}),
        ("pam_unix(sudo:auth): authentication failure; logname=bob uid=1000 euid=0 tty=/dev/pts/1 ruser=bob rhost=  user=bob",
         "privilege_escalation_failure", "medium", {"user": "bob"}),
        ("Out of memory: Killed process 1234 (java) total-vm:123kB", "oom_kill", "high", {"pid": "1234", "process": "java"}),
        ("Failed to start The Apache HTTP Server.", "service_failure", "high", {"unit": "The Apache HTTP Server"}),
        ("nginx.service: Failed with result 'exit-code'.", "service_failure", "high", {"unit": "nginx.service", "result": "exit-code"}),
    ],
)  # fmt: skip
def test_shipped_rules_recognize_the_common_sources(message, event_type, severity, fields):
    match = default_rules().match(message)
    assert match is not None
    rule, extracted = match
    assert (rule.event_type, rule.severity) == (event_type, severity)
    assert fields.items() <= extracted.items()


def test_the_spec_rule_extracts_by_position_and_operator_rules_come_first():
    spec = Rule.from_dict({"pattern": "Failed password for .* from (.*) port", "event_type": "authentication_failure",
                           "severity": "medium", "extract_fields": ["source_ip"]})  # fmt: skip
    assert spec.apply("Failed password for root from 10.1.1.1 port 22") == {"source_ip": "10.1.1.1"}
    mine = RuleSet.from_dicts(
        [{"pattern": "backup (?P<job>\\w+) failed", "event_type": "backup_failure", "severity": "high"}]
    )
    event = parse(b"<13>Nov 23 10:00:00 h cron: backup nightly failed", rules=mine + default_rules())
    assert (event["event_type"], event["severity"], event["metadata"]["job"]) == ("backup_failure", "high", "nightly")


@pytest.mark.parametrize("bad", [{"pattern": "(", "event_type": "x"}, {"pattern": "a", "event_type": "x", "severity": "huge"},
                                 {"pattern": "a"}])  # fmt: skip
def test_bad_operator_rules_are_refused(bad):
    with pytest.raises(InvalidRule):
        Rule.from_dict(bad)


def test_structured_data_parser_returns_the_message_after_it():
    assert parse_structured_data('[a b="1"] rest') == ({"a": {"b": "1"}}, "rest")
    assert parse_structured_data("- rest") == ({}, "rest")

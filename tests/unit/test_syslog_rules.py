"""Parsing rules: the shipped set on real lines, operators' rules, validation, and cost on hostile input.

Lines are as the programs write them: OpenSSH's sshd, sudo 1.9 and pam_unix, the Linux OOM killer
(4.x+ and older wording), systemd (before and after v250's "unit - description" form), the kernel's
segfault report, Cisco IOS/NX-OS and Junos link and configuration messages. The sshd and sudo
lines are frames util-linux ``logger`` 2.38.1 sent.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from app.errors import InvalidRule
from app.parsing.syslog import parse_syslog
from app.parsing.syslog_ruleset import Rule, RuleSet, default_rules

RECEIVED = datetime(2026, 11, 24, 1, 37, tzinfo=UTC)

#: (frame, rule, event_type, severity, fields it must extract)
REAL_LINES = [
    (b'<36>1 2026-11-24T01:36:30.046917+00:00 vm sshd 19144 - [timeQuality tzKnown="1" isSynced="0"] '
     b"Failed password for invalid user admin from 203.0.113.5 port 52514 ssh2",
     "ssh_failed_password", "authentication_failure", "medium",
     {"user": "admin", "source_ip": "203.0.113.5", "source_port": "52514"}),
    (b"<38>Nov 24 01:41:43 vm sshd[19537]: Accepted publickey for deploy from 198.51.100.23 port 50522 ssh2: "
     b"ED25519 SHA256:Xk3v2bq0dJ1iQ2mJz5p1aU4oBfPpGxvH3s2rWl0cJ8A",
     "ssh_accepted", "authentication_success", "info",
     {"method": "publickey", "user": "deploy", "source_ip": "198.51.100.23"}),
    (b"<85>Nov 24 01:36:42 vm sudo[19215]:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; "
     b"COMMAND=/usr/bin/systemctl restart nginx",
     "sudo_command", "privilege_escalation", "low",
     {"user": "alice", "target_user": "root", "command": "/usr/bin/systemctl restart nginx"}),
    (b"<85>Nov 24 01:36:42 vm sudo: pam_unix(sudo:auth): authentication failure; logname=bob uid=1000 euid=0 "
     b"tty=/dev/pts/1 ruser=bob rhost=  user=bob",
     "sudo_pam_auth_failure", "authentication_failure", "medium", {"user": "bob"}),
    (b"<85>Nov 24 01:36:42 vm sudo[2001]:      bob : 3 incorrect password attempts ; TTY=pts/1 ; PWD=/home/bob ; "
     b"USER=root ; COMMAND=/usr/bin/id",
     "sudo_incorrect_password", "authentication_failure", "medium", {"user": "bob", "command": "/usr/bin/id"}),
    (b"<85>Nov 24 01:36:42 vm sudo[2002]:  mallory : user NOT in sudoers ; TTY=pts/2 ; PWD=/home/mallory ; "
     b"USER=root ; COMMAND=/bin/bash",
     "sudo_denied", "privilege_escalation_denied", "medium", {"user": "mallory", "command": "/bin/bash"}),
    (b"<11>Nov 24 01:36:30 vm kernel: Out of memory: Killed process 4242 (java) total-vm:8123456kB, anon-rss:4012345kB",
     "kernel_oom_kill", "oom_kill", "high", {"pid": "4242", "process": "java"}),
    (b"<11>Nov 24 01:36:30 vm kernel: [1234567.890123] Out of memory: Kill process 999 (mysqld) score 912 or sacrifice child",
     "kernel_oom_kill", "oom_kill", "high", {"pid": "999", "process": "mysqld"}),
    (b"<11>Nov 24 01:36:30 vm kernel: Memory cgroup out of memory: Killed process 77 (python3) total-vm:1024kB",
     "kernel_oom_kill", "oom_kill", "high", {"pid": "77", "process": "python3"}),
    (b"<27>Nov 24 01:36:30 vm postgres[811]: could not write to file \"pg_wal/xlogtemp.811\": No space left on device",
     "disk_full", "disk_space_critical", "critical", {}),
    (b'<26>1 2026-11-24T01:36:30.052388+00:00 vm backup - - [timeQuality tzKnown="1" isSynced="0"] '
     b"Out of disk space on /var/backups",
     "out_of_disk_space", "disk_space_critical", "critical", {}),
    (b"<27>Nov 24 01:36:30 vm systemd[1]: Failed to start nginx.service - A high performance web server and a reverse proxy server.",
     "systemd_failed_to_start", "service_failure", "high", {"unit": "nginx.service"}),
    (b"<27>Nov 24 01:36:30 vm systemd[1]: Failed to start The Apache HTTP Server.",
     "systemd_failed_to_start", "service_failure", "high", {"unit": "The Apache HTTP Server"}),
    (b"<27>Nov 24 01:36:30 vm systemd[1]: nginx.service: Failed with result 'exit-code'.",
     "systemd_unit_failed", "service_failure", "high", {"unit": "nginx.service", "result": "exit-code"}),
    (b"<14>Nov 24 01:36:30 vm kernel: [12345.678901] python3[4242]: segfault at 0 ip 00007f1c2a3b4c5d sp 00007ffd error 4 in libc.so.6",
     "process_segfault", "process_crash", "high", {"process": "python3", "pid": "4242"}),
    (b"<187>123: *Mar  1 00:01:02.345 UTC: %LINK-3-UPDOWN: Interface GigabitEthernet0/1, changed state to down",
     "cisco_link_down", "connectivity_issue", "high", {"interface": "GigabitEthernet0/1"}),
    (b"<189>124: *Mar  1 00:01:03.345 UTC: %LINEPROTO-5-UPDOWN: Line protocol on Interface GigabitEthernet0/1, changed state to down",
     "cisco_link_down", "connectivity_issue", "high", {"interface": "GigabitEthernet0/1"}),
    (b"<187>47: 00:00:47: %LINK-3-UPDOWN: Interface GigabitEthernet0/2, changed state to up",
     "cisco_link_up", "connectivity_restored", "info", {"interface": "GigabitEthernet0/2"}),
    (b"<189>: 2026 Nov 23 10:00:00 UTC: %ETHPORT-5-IF_DOWN_LINK_FAILURE: Interface Ethernet1/1 is down (Link failure)",
     "nxos_link_down", "connectivity_issue", "high", {"interface": "Ethernet1/1"}),
    (b"<189>: 2026 Nov 23 10:05:00 UTC: %ETHPORT-5-IF_UP: Interface Ethernet1/1 is up in mode access",
     "nxos_link_up", "connectivity_restored", "info", {"interface": "Ethernet1/1"}),
    (b"<28>Nov 23 10:00:00 mx01 mib2d[1520]: SNMP_TRAP_LINK_DOWN: ifIndex 526, ifAdminStatus up(1), ifOperStatus down(2), ifName ge-0/0/1",
     "junos_link_down", "connectivity_issue", "high", {"interface": "ge-0/0/1"}),
    (b"<30>Nov 23 10:01:00 mx01 mib2d[1520]: SNMP_TRAP_LINK_UP: ifIndex 526, ifAdminStatus up(1), ifOperStatus up(1), ifName ge-0/0/1",
     "junos_link_up", "connectivity_restored", "info", {"interface": "ge-0/0/1"}),
    (b"<189>4712: *Dec  8 04:20:01.123: %BGP-5-ADJCHANGE: neighbor 198.51.100.1 Down BGP Notification sent",
     "cisco_bgp_down", "connectivity_issue", "high", {"neighbor": "198.51.100.1"}),
    (b"<189>4714: *Dec  8 04:21:11.004: %BGP-5-ADJCHANGE: neighbor 198.51.100.1 vpn vrf CUST-A Up",
     "cisco_bgp_up", "connectivity_restored", "info", {"neighbor": "198.51.100.1"}),
    (b"<189>: 2026 Dec  8 04:20:01 UTC: %BGP-5-ADJCHANGE:  bgp-65001 [4423] (default) neighbor 2001:db8::1 Down - holdtimer expired error",
     "cisco_bgp_down", "connectivity_issue", "high", {"neighbor": "2001:db8::1"}),
    (b"<28>Dec  8 04:20:01 mx01 rpd[1520]: RPD_BGP_NEIGHBOR_STATE_CHANGED: BGP peer 198.51.100.9 (External AS 64500) changed state from Established to Idle (event HoldTime) (instance master)",
     "junos_bgp_down", "connectivity_issue", "high", {"neighbor": "198.51.100.9"}),
    (b"<29>Dec  8 04:21:01 mx01 rpd[1520]: RPD_BGP_NEIGHBOR_STATE_CHANGED: BGP peer 198.51.100.9 (External AS 64500) changed state from OpenConfirm to Established (event RecvKeepAlive) (instance master)",
     "junos_bgp_up", "connectivity_restored", "info", {"neighbor": "198.51.100.9"}),
    (b"<189>45: router1: Nov 23 11:00:00.123: %SYS-5-CONFIG_I: Configured from console by admin on vty0 (10.0.0.5)",
     "cisco_config_change", "configuration_change", "low",
     {"config_source": "console", "user": "admin", "line": "vty0", "source_ip": "10.0.0.5"}),
]  # fmt: skip


def parse(line: bytes, **kw):
    return parse_syslog(line, received_at=RECEIVED, peer="192.0.2.1", **kw)


@pytest.mark.parametrize(("frame", "rule", "event_type", "severity", "fields"), REAL_LINES)
def test_shipped_rules_recognise_real_lines(frame, rule, event_type, severity, fields):
    # When a real line is parsed with the shipped rules
    event = parse(frame)
    # Then its rule decides type and severity and the fields land in the metadata
    assert (event["metadata"]["rule"], event["event_type"], event["severity"]) == (rule, event_type, severity)
    assert fields.items() <= event["metadata"].items()


def test_every_shipped_rule_has_a_real_line_above():
    assert {line[1] for line in REAL_LINES} == {rule.name for rule in default_rules()}


@pytest.mark.parametrize(
    "message",
    ["%LINK-5-CHANGED: Interface GigabitEthernet0/1, changed state to administratively down",
     "pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)",
     "Connection closed by 198.51.100.7 port 50022 [preauth]",
     "alice : TTY=pts/0 ; PWD=/home/alice ; COMMAND=/usr/bin/id"],
)  # fmt: skip
def test_lines_no_shipped_rule_is_about_stay_plain_syslog(message):
    assert default_rules().match(message) is None


def test_the_spec_rule_extracts_its_group_by_position():
    # Given the spec's rule, verbatim
    rules = RuleSet.from_dicts([{"pattern": "Failed password for .* from (.*) port", "event_type": "authentication_failure",
                                 "severity": "medium", "extract_fields": ["source_ip"]}])  # fmt: skip
    # When an sshd line is parsed with it
    event = parse(b"<38>Nov 24 01:41:43 vm sshd[1]: Failed password for root from 10.1.1.1 port 22 ssh2", rules=rules)
    # Then the unnamed group is stored under the name given
    assert (event["event_type"], event["severity"], event["metadata"]["source_ip"]) == (
        "authentication_failure",
        "medium",
        "10.1.1.1",
    )
    assert (
        event["metadata"]["rule"] == "Failed password for .* from (.*) port"
    )  # a rule without a name is named by its pattern


def test_operator_rules_put_in_front_win_over_the_shipped_ones():
    mine = RuleSet.from_dicts([{"name": "ssh_root", "pattern": "Failed password for root from (?P<source_ip>\\S+)",
                                "event_type": "root_login_attempt", "severity": "high"}])  # fmt: skip
    line = b"<38>Nov 24 01:41:43 vm sshd[1]: Failed password for root from 10.1.1.1 port 22 ssh2"
    assert parse(line, rules=mine + default_rules())["event_type"] == "root_login_attempt"
    assert parse(line, rules=default_rules() + mine)["event_type"] == "authentication_failure"


def test_a_rule_without_severity_keeps_the_syslog_severity():
    rules = RuleSet.from_dicts(
        [{"name": "backup", "pattern": "backup (?P<job>\\w+) failed", "event_type": "backup_failure"}]
    )
    event = parse(b"<27>Nov 24 01:41:43 backup: backup nightly failed", rules=rules)
    assert (event["event_type"], event["severity"], event["metadata"]["job"]) == ("backup_failure", "high", "nightly")


def test_a_rule_overrides_the_type_and_severity_a_cef_record_gives():
    rules = RuleSet.from_dicts(
        [{"name": "worm", "pattern": "worm successfully stopped", "event_type": "malware_blocked", "severity": "low"}]
    )
    event = parse(
        b"<134>Sep 19 08:26:10 host CEF:0|Security|threatmanager|1.0|100|worm successfully stopped|10|src=10.0.0.1",
        rules=rules,
    )
    assert (event["event_type"], event["severity"], event["metadata"]["cef"]["name"]) == (
        "malware_blocked",
        "low",
        "worm successfully stopped",
    )


def test_rule_fields_never_overwrite_what_the_parser_found():
    rules = RuleSet.from_dicts(
        [{"name": "clash", "pattern": "(?P<facility>\\w+) (?P<format>\\w+) (?P<disk>\\w+)", "event_type": "x"}]
    )
    event = parse(b"<13>Nov 23 10:00:00 h app: alpha beta sda", rules=rules)
    assert (event["metadata"]["facility"], event["metadata"]["format"], event["metadata"]["disk"]) == (
        1,
        "rfc3164",
        "sda",
    )


def test_an_empty_rule_set_applies_no_rule():
    event = parse(b"<13>Nov 23 10:00:00 h app: Out of disk space", rules=RuleSet())
    assert (event["event_type"], event["severity"]) == ("syslog", "low")
    assert "rule" not in event["metadata"]


def test_the_first_matching_rule_wins():
    rules = RuleSet.from_dicts(
        [
            {"name": "first", "pattern": "disk", "event_type": "a"},
            {"name": "second", "pattern": "disk full", "event_type": "b"},
        ]
    )
    found = rules.match("disk full")
    assert found is not None and found[0].name == "first"
    assert Rule.from_dict({"pattern": "nope", "event_type": "x"}).apply("disk full") is None


@pytest.mark.parametrize(
    ("definition", "field"),
    [({"pattern": "(", "event_type": "x"}, "pattern"),
     ({"event_type": "x"}, "pattern"),
     ({"pattern": "a", "event_type": "x", "severity": "huge"}, "severity"),
     ({"pattern": "a"}, "event_type"),
     ({"pattern": "a", "event_type": "  "}, "event_type"),
     ({"pattern": "(a)", "event_type": "x", "extract_fields": ["one", "two"]}, "extract_fields"),
     ({"pattern": "(a)", "event_type": "x", "extract_fields": "one"}, "extract_fields"),
     ({"pattern": "a", "event_type": "x", "extract_field": ["one"]}, "extract_field")],
)  # fmt: skip
def test_invalid_rules_are_refused_naming_the_field_at_fault(definition, field):
    with pytest.raises(InvalidRule) as refused:
        Rule.from_dict(definition)
    assert refused.value.field == field


def test_a_rule_set_is_a_list_of_objects_with_unique_names():
    with pytest.raises(InvalidRule, match="list"):
        RuleSet.from_dicts({"pattern": "a", "event_type": "x"})  # type: ignore[arg-type]
    with pytest.raises(InvalidRule, match="JSON object"):
        RuleSet.from_dicts(["a"])  # type: ignore[list-item]
    with pytest.raises(InvalidRule, match="unique"):
        RuleSet.from_dicts(
            [{"name": "a", "pattern": "x", "event_type": "x"}, {"name": "a", "pattern": "y", "event_type": "y"}]
        )


def test_rules_are_read_from_a_json_file_and_a_broken_file_is_refused(tmp_path):
    good = tmp_path / "rules.json"
    good.write_text(
        json.dumps(
            [
                {
                    "name": "fan",
                    "pattern": "fan (?P<fan>\\d+) failed",
                    "event_type": "hardware_failure",
                    "severity": "high",
                }
            ]
        )
    )
    found = RuleSet.from_json(good).match("fan 2 failed")
    assert found is not None and (found[0].name, found[1]) == ("fan", {"fan": "2"})
    broken = tmp_path / "broken.json"
    broken.write_text("[{")
    with pytest.raises(InvalidRule, match="not JSON"):
        RuleSet.from_json(broken)


def test_default_rules_are_loaded_once_per_process():
    assert default_rules() is default_rules()
    assert len(default_rules()) >= 19


def test_shipped_rules_stay_linear_on_hostile_lines():
    # Given 64 KiB lines built to make backtracking regexes go quadratic or worse
    n = 64 * 1024
    hostile = [
        "Failed password for " + "x from " * (n // 7),
        "Accepted password for " + "a from " * (n // 7),
        "pam_unix(sudo:auth): authentication failure;" + " ruser=" * (n // 7),
        "alice : " + "A=b ; USER=root ; " * (n // 18),
        "alice : 3 incorrect password attempts ; " + "A=b ; " * (n // 6),
        "Failed to start " + "a - " * (n // 4) + "x",
        "a" * n + ": Failed with result",
        "Out of memory: Killed process 1 (" + "a" * n,
        "%SYS-5-CONFIG_I: Configured from " + "a by " * (n // 5),
        "%LINK-3-UPDOWN: Interface " + "a" * n,
        " " * n + "x",
    ]
    # When every shipped rule is tried on each
    started = time.perf_counter()
    for line in hostile:
        default_rules().match(line)
    # Then it takes milliseconds, not the seconds a quadratic pattern needs at this size
    assert time.perf_counter() - started < 1.0

"""Syslog frames as real senders write them -> events: RFC 5424, RFC 3164 and its deviations, dispatch.

The ``CAPTURED_*`` frames are bytes util-linux ``logger`` 2.38.1 sent to a Python socket on
2026-11-24 (``logger --rfc5424|--rfc3164 -n 127.0.0.1 -P 5599 [-T --octet-count] ...`` and
``logger -u SOCKET`` for the local format). Cisco lines follow the IOS configuration guides'
examples; the RFC examples are RFC 3164 §5.4 and RFC 5424 §6.5.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time

from app.errors import InvalidEvent
from app.events.schema import EVENT_FIELDS, TITLE_MAX
from app.parsing.syslog import parse_structured_data, parse_syslog
from app.parsing.syslog_ruleset import RuleSet

#: When the captured frames arrived.
RECEIVED = datetime(2026, 11, 24, 1, 37, tzinfo=UTC)
PEER = "192.0.2.1"

CAPTURED_5424 = b'<13>1 2026-11-24T01:36:30.043237+00:00 vm root - - [timeQuality tzKnown="1" isSynced="0"] hello'
CAPTURED_5424_SD = (
    b'<163>1 2026-11-24T01:36:42.088030+00:00 vm root - ID47 [timeQuality tzKnown="1" isSynced="0"]'
    b'[zoo@123 tiger="hungry" note="a \\"quoted\\" \\] \\\\ value"][origin ip="192.0.2.8"] sd test'
)
CAPTURED_5424_SSHD = (
    b'<36>1 2026-11-24T01:36:30.046917+00:00 vm sshd 19144 - [timeQuality tzKnown="1" isSynced="0"]'
    b" Failed password for invalid user admin from 203.0.113.5 port 52514 ssh2"
)
CAPTURED_5424_NOTIME = b"<13>1 - vm root - - - no time"
CAPTURED_5424_BOM = (
    b'<14>1 2026-11-24T01:36:42.090030+00:00 vm app - - [timeQuality tzKnown="1" isSynced="0"] \xef\xbb\xbfwith bom'
)
CAPTURED_5424_UTF8 = (
    b'<13>1 2026-11-24T01:36:30.060299+00:00 vm app - - [timeQuality tzKnown="1" isSynced="0"]'
    b" gr\xc3\xbc\xc3\x9fe \xe2\x98\x83"
)
#: Two connections of `logger --rfc5424 -T --octet-count`: "MSG-LEN SP SYSLOG-MSG".
CAPTURED_TCP_OCTET_COUNTED = [
    b'125 <26>1 2026-11-24T01:36:30.052388+00:00 vm backup - - [timeQuality tzKnown="1" isSynced="0"]'
    b" Out of disk space on /var/backups",
    b'97 <13>1 2026-11-24T01:36:30.056317+00:00 vm app - - [timeQuality tzKnown="1" isSynced="0"] line one',
]
#: `printf 'first\nsecond\n' | logger --rfc3164 -T`: LF-terminated frames on one connection.
CAPTURED_TCP_LF = b"<13>Nov 24 01:36:30 vm multi: first\n<13>Nov 24 01:36:30 vm multi: second\n"
CAPTURED_3164 = b"<13>Nov 24 01:36:30 vm root: hello 3164"
#: `logger -u SOCKET -d -t backup -p daemon.err ...`: the local format has no HOSTNAME.
CAPTURED_LOCAL_NO_HOSTNAME = b"<27>Nov 24 01:41:43 backup: backup nightly failed"

ALL_SAMPLES = [
    CAPTURED_5424,
    CAPTURED_5424_SD,
    CAPTURED_5424_SSHD,
    CAPTURED_5424_NOTIME,
    CAPTURED_5424_BOM,
    CAPTURED_5424_UTF8,
    CAPTURED_3164,
    CAPTURED_LOCAL_NO_HOSTNAME,
    b"<189>123: *Mar  1 00:01:02.345 UTC: %LINK-3-UPDOWN: Interface GigabitEthernet0/1, changed state to down",
    b"<166>Nov 23 2026 10:00:00 asa01 : %ASA-6-302013: Built outbound TCP connection 1 for outside:1.1.1.1/443",
    b"<13>Nov 23 10:00:00 h app: caf\xe9",
    b"<13>Feb 30 10:00:00 h app: impossible date",
]


def parse(line: bytes, *, received_at: datetime = RECEIVED, peer: str | None = PEER, **kw):
    return parse_syslog(line, received_at=received_at, peer=peer, **kw)


# RFC 5424


def test_logger_rfc5424_datagram_keeps_host_app_structured_data_and_microseconds():
    # Given the datagram `logger --rfc5424 -d hello` sent
    # When it is parsed
    event = parse(CAPTURED_5424)
    # Then the header fields and the time-quality element survive
    assert (event["host"], event["service"], event["title"], event["source"]) == ("vm", "root", "hello", PEER)
    assert event["occurred_at"] == datetime(2026, 11, 24, 1, 36, 30, 43237, tzinfo=UTC)
    meta = event["metadata"]
    assert (meta["format"], meta["appname"], meta["procid"], meta["msgid"]) == ("rfc5424", "root", None, None)
    assert meta["structured_data"] == {"timeQuality": {"tzKnown": "1", "isSynced": "0"}}
    assert (meta["facility_name"], meta["syslog_severity"], event["severity"]) == ("user", 5, "low")
    assert event["tags"] == ["syslog", "rfc5424"]


def test_logger_rfc5424_with_procid_msgid_and_escaped_structured_data_keeps_every_element():
    # Given logger's frames with -i (PROCID), --msgid and --sd-param values holding \" \] and \\
    sshd = parse(CAPTURED_5424_SSHD)
    with_sd = parse(CAPTURED_5424_SD)
    # Then PROCID and MSGID are kept and every SD element is unescaped
    assert (sshd["service"], sshd["metadata"]["procid"]) == ("sshd", "19144")
    assert with_sd["metadata"]["msgid"] == "ID47"
    assert with_sd["metadata"]["structured_data"] == {
        "timeQuality": {"tzKnown": "1", "isSynced": "0"},
        "zoo@123": {"tiger": "hungry", "note": 'a "quoted" ] \\ value'},
        "origin": {"ip": "192.0.2.8"},
    }
    assert (with_sd["title"], with_sd["severity"], with_sd["metadata"]["facility_name"]) == (
        "sd test",
        "high",
        "local4",
    )


def test_logger_rfc5424_without_a_timestamp_uses_the_arrival_time():
    event = parse(CAPTURED_5424_NOTIME)
    assert event["occurred_at"] == RECEIVED
    assert (event["host"], event["title"], event["metadata"]["structured_data"]) == ("vm", "no time", {})


def test_a_bom_before_the_message_is_not_part_of_the_text():
    event = parse(CAPTURED_5424_BOM)
    assert event["title"] == event["description"] == "with bom"


def test_utf8_messages_are_decoded_and_latin1_bytes_are_kept_and_flagged():
    assert parse(CAPTURED_5424_UTF8)["title"] == "grüße ☃"
    latin1 = parse(b"<13>Nov 23 10:00:00 h app: caf\xe9")
    assert (latin1["title"], latin1["metadata"]["encoding"]) == ("café", "latin-1")


def test_octet_counted_tcp_frames_from_logger_parse_once_the_count_is_removed():
    for captured in CAPTURED_TCP_OCTET_COUNTED:
        # Given an RFC 6587 octet-counted frame, unframed as the receiver does
        count, _, frame = captured.partition(b" ")
        assert int(count) == len(frame)  # the capture is whole
        # When it is parsed
        event = parse(frame)
        # Then it is an ordinary RFC 5424 event
        assert event["metadata"]["format"] == "rfc5424" and event["host"] == "vm"
    backup = parse(CAPTURED_TCP_OCTET_COUNTED[0].partition(b" ")[2])
    assert (backup["service"], backup["metadata"]["facility_name"]) == ("backup", "daemon")
    assert (backup["event_type"], backup["severity"]) == ("disk_space_critical", "critical")


@pytest.mark.parametrize(
    ("frame", "host", "app", "procid", "msgid", "title", "occurred_at"),
    [
        (b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \xef\xbb\xbf'su root' failed for lonvick on /dev/pts/8",
         "mymachine.example.com", "su", None, "ID47", "'su root' failed for lonvick on /dev/pts/8",
         datetime(2003, 10, 11, 22, 14, 15, 3000, tzinfo=UTC)),
        (b"<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
         "192.0.2.1", "myproc", "8710", None, "%% It's time to make the do-nuts.",
         datetime(2003, 8, 24, 12, 14, 15, 3, tzinfo=UTC)),
        (b'<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" '
         b'eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]',
         "mymachine.example.com", "evntslog", None, "ID47", "evntslog", datetime(2003, 10, 11, 22, 14, 15, 3000, tzinfo=UTC)),
    ],
)  # fmt: skip
def test_the_rfc5424_examples_parse(frame, host, app, procid, msgid, title, occurred_at):
    event = parse(frame)
    meta = event["metadata"]
    assert (event["host"], event["service"], meta["procid"], meta["msgid"]) == (host, app, procid, msgid)
    assert (event["title"], event["occurred_at"]) == (title, occurred_at)


def test_rfc5424_example_with_two_sd_elements_keeps_both_and_a_message_less_frame_has_no_description():
    event = parse(
        b'<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" '
        b'eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]'
    )
    assert event["metadata"]["structured_data"] == {
        "exampleSDID@32473": {"iut": "3", "eventSource": "Application", "eventID": "1011"},
        "examplePriority@32473": {"class": "high"},
    }
    assert event["description"] is None


def test_rfc5424_nilvalues_leave_host_to_the_peer_and_time_to_the_arrival():
    event = parse(b"<14>1 - - - - - - message with nothing else")
    assert (event["host"], event["service"], event["occurred_at"]) == (PEER, None, RECEIVED)
    assert event["title"] == "message with nothing else"


def test_malformed_structured_data_keeps_the_event_and_says_why():
    # Given an SD element whose parameter has no ="value"
    event = parse(b"<13>1 2026-11-23T10:00:00Z h app - - [bad x] the message")
    # Then the header is kept, the rest is the message, and the warning names the element
    assert (event["host"], event["service"], event["title"]) == ("h", "app", "[bad x] the message")
    assert "'bad'" in event["metadata"]["parse_warnings"][0]
    assert event["metadata"]["structured_data"] == {}


def test_an_rfc5424_frame_without_structured_data_keeps_its_message():
    event = parse(b"<13>1 2026-11-23T10:00:00Z h app 42 - just text")
    assert (event["title"], event["metadata"]["procid"]) == ("just text", "42")
    assert "STRUCTURED-DATA is missing" in event["metadata"]["parse_warnings"][0]


def test_an_impossible_rfc5424_timestamp_falls_back_to_the_arrival_time_with_a_warning():
    event = parse(b"<13>1 2026-13-45T99:00:00Z h app - - - m")
    assert event["occurred_at"] == RECEIVED
    assert "2026-13-45T99:00:00Z" in event["metadata"]["parse_warnings"][0]


def test_parse_structured_data_returns_the_elements_and_the_message_after_them():
    assert parse_structured_data('[a b="1" c="x\\"y"][d] rest of it') == (
        {"a": {"b": "1", "c": 'x"y'}, "d": {}},
        "rest of it",
    )
    assert parse_structured_data("- rest") == ({}, "rest")
    assert parse_structured_data('[a b="keep \\n as is"]') == ({"a": {"b": "keep \\n as is"}}, "")
    with pytest.raises(InvalidEvent, match="not|malformed"):
        parse_structured_data('[a b="unterminated] rest')


# RFC 3164


def test_logger_rfc3164_datagram_keeps_host_tag_and_time():
    event = parse(CAPTURED_3164)
    assert (event["host"], event["service"], event["title"]) == ("vm", "root", "hello 3164")
    assert event["occurred_at"] == datetime(2026, 11, 24, 1, 36, 30, tzinfo=UTC)
    assert event["metadata"]["format"] == "rfc3164" and event["tags"] == ["syslog", "rfc3164"]


def test_rfc3164_line_without_hostname_keeps_the_tag_as_service():
    # Given logger's local format and a classic sshd line, neither with a HOSTNAME
    local = parse(CAPTURED_LOCAL_NO_HOSTNAME)
    sshd = parse(b"<13>Nov 23 10:00:00 sshd[123]: Connection closed by 198.51.100.7 port 50022 [preauth]")
    # Then the TAG is the service and the host is the peer
    assert (local["host"], local["service"], local["title"]) == (PEER, "backup", "backup nightly failed")
    assert (sshd["host"], sshd["service"], sshd["metadata"]["procid"]) == (PEER, "sshd", "123")
    assert sshd["title"] == "Connection closed by 198.51.100.7 port 50022 [preauth]"


def test_lf_framed_tcp_stream_from_logger_gives_one_event_per_line():
    events = [parse(line) for line in CAPTURED_TCP_LF.splitlines()]
    assert [(e["host"], e["service"], e["title"]) for e in events] == [
        ("vm", "multi", "first"),
        ("vm", "multi", "second"),
    ]


def test_rfc3164_with_an_rfc3339_timestamp_as_rsyslog_forwards_it():
    # Given rsyslog's RSYSLOG_ForwardFormat (RFC 3339 time, otherwise RFC 3164)
    event = parse(b"<30>2026-11-23T11:59:00.123456+01:00 web-01 nginx[42]: upstream timed out")
    # Then the offset is applied and the rest is read as RFC 3164
    assert event["occurred_at"] == datetime(2026, 11, 23, 10, 59, 0, 123456, tzinfo=UTC)
    assert (event["host"], event["service"], event["metadata"]["procid"]) == ("web-01", "nginx", "42")
    assert (event["severity"], event["metadata"]["facility_name"]) == ("info", "daemon")


@pytest.mark.parametrize(
    ("frame", "host", "service", "title"),
    [
        (b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8", "mymachine", "su",
         "'su root' failed for lonvick on /dev/pts/8"),
        (b"<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!", "10.0.0.99", None, "Use the BFG!"),
        (b"<13>Nov 23 10:00:00 2001:db8::1 app: over IPv6", "2001:db8::1", "app", "over IPv6"),
    ],
)  # fmt: skip
def test_rfc3164_hostnames_are_told_apart_from_tags(frame, host, service, title):
    event = parse(frame)
    assert (event["host"], event["service"], event["title"]) == (host, service, title)


def test_a_line_without_pri_is_user_notice_and_keeps_its_header():
    # Given the RFC 3164 header QRadar accepts without a PRI
    event = parse(b"Jan 18 11:07:53 myhostname disk is slow")
    # Then facility/severity are user.notice, and the header is still read
    assert (event["metadata"]["facility"], event["metadata"]["syslog_severity"], event["severity"]) == (1, 5, "low")
    assert (event["host"], event["title"]) == ("myhostname", "disk is slow")
    assert event["occurred_at"] == datetime(2026, 1, 18, 11, 7, 53, tzinfo=UTC)


def test_an_out_of_range_pri_makes_the_whole_frame_the_message():
    event = parse(b"<999>Nov 23 10:00:00 h a: x")
    assert (event["metadata"]["facility_name"], event["severity"]) == ("user", "low")
    assert event["title"] == "<999>Nov 23 10:00:00 h a: x"
    assert "PRI 999" in event["metadata"]["parse_warnings"][0]


# Year-less dates


def test_a_year_less_december_date_arriving_in_january_is_last_year():
    event = parse(b"<13>Dec 31 23:59:59 host app: bye", received_at=datetime(2027, 1, 1, 0, 0, 5, tzinfo=UTC))
    assert event["occurred_at"] == datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)


def test_a_january_date_arriving_just_before_new_year_from_a_fast_clock_is_next_year():
    event = parse(b"<13>Jan  1 00:00:05 host app: hi", received_at=datetime(2026, 12, 31, 23, 59, 58, tzinfo=UTC))
    assert event["occurred_at"] == datetime(2027, 1, 1, 0, 0, 5, tzinfo=UTC)


def test_a_date_more_than_a_day_ahead_is_taken_as_last_year():
    event = parse(b"<13>Nov 26 10:00:00 host app: x", received_at=datetime(2026, 11, 24, 9, 0, tzinfo=UTC))
    assert event["occurred_at"] == datetime(2025, 11, 26, 10, 0, tzinfo=UTC)


def test_feb_29_without_a_year_is_placed_in_the_last_leap_year():
    event = parse(b"<13>Feb 29 12:00:00 host app: leap", received_at=datetime(2027, 3, 1, tzinfo=UTC))
    assert event["occurred_at"] == datetime(2024, 2, 29, 12, 0, tzinfo=UTC)


def test_an_impossible_date_falls_back_to_the_arrival_time_with_a_warning():
    event = parse(b"<13>Feb 30 10:00:00 h app: impossible date")
    assert event["occurred_at"] == RECEIVED
    assert (event["host"], event["title"]) == ("h", "impossible date")
    assert "Feb 30 10:00:00" in event["metadata"]["parse_warnings"][0]


def test_the_year_depends_on_the_arrival_time_not_on_the_wall_clock():
    # Given a wall clock years away from the arrival time
    with freeze_time("2031-06-15 12:00:00"):
        event = parse(b"<13>Dec 30 08:00:00 host app: x", received_at=datetime(2027, 1, 2, tzinfo=UTC))
    # Then the year comes from the arrival time
    assert event["occurred_at"] == datetime(2026, 12, 30, 8, 0, tzinfo=UTC)


# Cisco IOS, NX-OS, ASA


def test_cisco_counter_and_unsynchronized_clock_keep_the_arrival_time_and_the_device_time():
    # Given an IOS line whose "*" says the clock was never set
    event = parse(
        b"<189>123: *Mar  1 00:01:02.345 UTC: %LINK-3-UPDOWN: Interface GigabitEthernet0/1, changed state to down"
    )
    # Then its time is not trusted, but kept
    meta = event["metadata"]
    assert event["occurred_at"] == RECEIVED
    assert (meta["sequence"], meta["time_sync"], meta["device_time"]) == (
        123,
        "unsynchronized",
        "Mar  1 00:01:02.345 UTC",
    )
    assert (event["service"], meta["mnemonic"], event["host"]) == ("LINK", "LINK-3-UPDOWN", PEER)
    assert event["title"] == "%LINK-3-UPDOWN: Interface GigabitEthernet0/1, changed state to down"


def test_cisco_dot_mark_time_is_used_and_flagged_as_lost_sync():
    event = parse(
        b"<189>124: .Nov 23 11:00:00.250 CET: %LINEPROTO-5-UPDOWN: Line protocol on Interface Gi0/1, changed state to up"
    )
    assert event["occurred_at"] == datetime(2026, 11, 23, 11, 0, 0, 250000, tzinfo=UTC)
    assert (event["metadata"]["time_sync"], event["metadata"]["timezone"]) == ("lost", "CET")


def test_cisco_origin_id_hostname_and_service_sequence_numbers():
    with_host = parse(b"<187>45: router1: Nov 23 10:00:00.123: %LINK-3-UPDOWN: Interface Gi0/2, changed state to down")
    numbered = parse(
        b"<189>56: 000049: Nov 23 10:00:00: %SYS-5-CONFIG_I: Configured from console by vty2 (10.34.195.36)"
    )
    assert (with_host["host"], with_host["metadata"]["sequence"]) == ("router1", 45)
    assert with_host["occurred_at"] == datetime(2026, 11, 23, 10, 0, 0, 123000, tzinfo=UTC)
    assert (numbered["host"], numbered["metadata"]["sequence"], numbered["service"]) == (PEER, 49, "SYS")


@pytest.mark.parametrize("uptime", [b"00:00:46", b"1d02h", b"2w3d"])
def test_cisco_uptime_stamps_are_not_taken_as_times_or_hosts(uptime):
    event = parse(b"<189>46: " + uptime + b": %LINK-3-UPDOWN: Interface Port-channel1, changed state to up")
    assert (event["occurred_at"], event["host"], event["metadata"]["uptime"]) == (RECEIVED, PEER, uptime.decode())
    assert event["title"].startswith("%LINK-3-UPDOWN")


def test_a_cisco_line_relayed_with_a_syslog_header_keeps_the_router_and_the_device_time():
    event = parse(
        b"<189>Nov 23 10:00:05 router1 123: Nov 23 10:00:00.123: %SYS-5-CONFIG_I: Configured from console by vty2"
    )
    assert (event["host"], event["metadata"]["sequence"], event["service"]) == ("router1", 123, "SYS")
    assert event["occurred_at"] == datetime(2026, 11, 23, 10, 0, 0, 123000, tzinfo=UTC)


def test_asa_hostname_before_a_spaced_colon_and_a_dated_timestamp():
    event = parse(
        b"<166>Nov 23 2025 10:00:00 asa01 : %ASA-6-302013: Built outbound TCP connection 1 for outside:1.1.1.1/443"
    )
    assert (event["host"], event["service"], event["metadata"]["mnemonic"]) == ("asa01", "ASA", "ASA-6-302013")
    assert event["occurred_at"] == datetime(2025, 11, 23, 10, 0, tzinfo=UTC)


def test_nxos_year_first_timestamp():
    event = parse(
        b"<189>: 2026 Nov 23 10:00:00 UTC: %ETHPORT-5-IF_DOWN_LINK_FAILURE: Interface Ethernet1/1 is down (Link failure)"
    )
    assert event["occurred_at"] == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert (event["service"], event["event_type"], event["metadata"]["interface"]) == (
        "ETHPORT",
        "connectivity_issue",
        "Ethernet1/1",
    )
    assert "timezone" not in event["metadata"]


def test_a_number_and_colon_that_precede_no_timestamp_are_not_a_cisco_counter():
    event = parse(b"<14>404: Not Found /index.html")
    assert "sequence" not in event["metadata"]
    assert event["description"].endswith("Not Found /index.html")


# Severity, facility, the event


@pytest.mark.parametrize(("number", "severity"), [(0, "critical"), (1, "critical"), (2, "critical"), (3, "high"), (4, "medium"),
                                                  (5, "low"), (6, "info"), (7, "info")])  # fmt: skip
def test_syslog_severities_map_to_ours(number, severity):
    event = parse(b"<%d>Nov 23 10:00:00 h app: something" % (8 + number), rules=RuleSet())
    assert (event["severity"], event["metadata"]["syslog_severity"]) == (severity, number)


@pytest.mark.parametrize(("pri", "facility", "name"), [(0, 0, "kern"), (38, 4, "auth"), (85, 10, "authpriv"),
                                                       (165, 20, "local4"), (191, 23, "local7")])  # fmt: skip
def test_facilities_are_numbered_and_named_as_in_rfc5424(pri, facility, name):
    event = parse(b"<%d>Nov 23 10:00:00 h app: x" % pri)
    assert (event["metadata"]["facility"], event["metadata"]["facility_name"]) == (facility, name)


@pytest.mark.parametrize(
    "frame",
    [b"", b"  \r\n", b"\x00\x00\x00", b"<13>", b"<13>   ",
     bytes.fromhex("16030100a5010000a10303") + bytes(range(32)),  # a TLS ClientHello on the plain port
     bytes.fromhex("302902010104067075626c6963a71c02")],  # an SNMP packet on the syslog port
)  # fmt: skip
def test_empty_and_binary_frames_are_refused_with_a_reason(frame):
    with pytest.raises(InvalidEvent, match="empty|binary|nothing else"):
        parse(frame)


def test_text_with_ansi_colour_codes_is_not_binary():
    event = parse(b"<13>Nov 23 10:00:00 h app: \x1b[31mERROR\x1b[0m disk failed")
    assert event["title"] == "\x1b[31mERROR\x1b[0m disk failed"


def test_title_is_cut_but_description_keeps_the_whole_message():
    long = "x" * (TITLE_MAX + 100)
    event = parse(b"<13>Nov 23 10:00:00 h app: " + long.encode())
    assert (len(event["title"]), event["description"]) == (TITLE_MAX, long)


def test_event_has_every_schema_field_and_leaves_the_fingerprint_to_the_normalizer():
    event = parse(CAPTURED_3164)
    assert set(event) == set(EVENT_FIELDS)
    assert (event["source_type"], event["fingerprint"]) == ("syslog", None)
    assert event["occurred_at"].tzinfo is not None and event["occurred_at"].utcoffset() == timedelta(0)


def test_source_is_the_peer_or_else_the_hostname():
    assert parse(CAPTURED_3164, peer=None)["source"] == "vm"
    assert parse(CAPTURED_3164)["source"] == PEER


def test_a_naive_arrival_time_is_taken_as_utc():
    event = parse(CAPTURED_5424_NOTIME, received_at=datetime(2026, 11, 24, 1, 37))
    assert event["occurred_at"] == RECEIVED


@pytest.mark.parametrize("frame", ALL_SAMPLES)
def test_metadata_of_every_sample_is_json_serializable(frame):
    event = parse(frame)
    assert json.loads(json.dumps(event["metadata"])) == event["metadata"]

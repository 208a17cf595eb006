"""CEF and LEEF records, inside syslog or bare -> events.

Samples are the ArcSight CEF specification's examples ("worm successfully stopped" and its
escaping examples), VMware Carbon Black App Control's documented CEF output, and IBM QRadar's
LEEF format guide examples (Microsoft Exchange, Lancope StealthWatch, "Login Event").
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.errors import InvalidEvent
from app.parsing.cef import cef_severity, device_time, find_payload, parse_cef, parse_cef_extension, parse_leef
from app.parsing.syslog import parse_syslog

RECEIVED = datetime(2026, 11, 24, 1, 37, tzinfo=UTC)
PEER = "192.0.2.1"

ARCSIGHT_WORM = b"<134>Sep 19 08:26:10 host CEF:0|Security|threatmanager|1.0|100|worm successfully stopped|10|src=10.0.0.1 dst=2.1.2.2 spt=1232"
CARBON_BLACK = (
    b"<134>Sep 19 08:26:10 server3.mycorp.local CEF:0|VMware Carbon Black|App Control|8.1.0.899|801|"
    b"Execution block (unapproved file)|5| dst=10.0.0.1 duser=NTAUTHORITY\\SYSTEM msg=File 'itunessetup64.exe' "
    b"has been blocked because it was unapproved."
)
QRADAR_LEEF_1 = b"Jan 18 11:07:53 192.168.1.1 LEEF:1.0|Microsoft|MSExchange|4.0 SP1|15345|src=10.50.1.1\tdst=2.10.20.20\tspt=1200\tsev=5\tusrName=joe.black"
QRADAR_LEEF_2 = b"<13>Jan 18 11:07:53 192.168.1.1 LEEF:2.0|Lancope|StealthWatch|1.0|41|^|src=10.0.1.8^dst=10.0.0.5^sev=5^srcPort=81^dstPort=21"


def parse(line: bytes, **kw):
    return parse_syslog(line, received_at=kw.pop("received_at", RECEIVED), peer=PEER, **kw)


# CEF


def test_the_arcsight_spec_example_inside_syslog_becomes_an_event_of_its_own_kind():
    # Given the CEF specification's example behind an RFC 3164 header
    event = parse(ARCSIGHT_WORM)
    # Then the record decides type, severity and title; the syslog header decides host and time
    assert (event["event_type"], event["severity"], event["title"]) == ("100", "critical", "worm successfully stopped")
    assert (event["host"], event["occurred_at"]) == ("host", datetime(2026, 9, 19, 8, 26, 10, tzinfo=UTC))
    cef = event["metadata"]["cef"]
    assert (cef["device_vendor"], cef["device_product"], cef["device_version"]) == ("Security", "threatmanager", "1.0")
    assert (cef["device_event_class_id"], cef["severity"]) == ("100", "10")
    assert cef["extension"] == {"src": "10.0.0.1", "dst": "2.1.2.2", "spt": "1232"}
    assert (event["metadata"]["format"], event["tags"]) == ("cef", ["syslog", "rfc3164", "cef"])
    assert event["description"].startswith("CEF:0|Security|")


@pytest.mark.parametrize(
    ("record", "name", "act"),
    [
        (r"CEF:0|security|threatmanager|1.0|100|detected a \| in message|10|src=10.0.0.1 act=blocked a | dst=1.1.1.1",
         "detected a | in message", "blocked a |"),
        (r"CEF:0|security|threatmanager|1.0|100|detected a \\ in packet|10|src=10.0.0.1 act=blocked a \\ dst=1.1.1.1",
         "detected a \\ in packet", "blocked a \\"),
        (r"CEF:0|security|threatmanager|1.0|100|detected a = in message|10|src=10.0.0.1 act=blocked a \= dst=1.1.1.1",
         "detected a = in message", "blocked a ="),
    ],
)  # fmt: skip
def test_the_spec_escaping_examples_unescape_header_and_extension(record, name, act):
    cef = parse_cef(record)
    assert (cef["name"], cef["extension"]["act"], cef["extension"]["dst"]) == (name, act, "1.1.1.1")


def test_escaped_pipes_in_the_header_do_not_shift_the_fields():
    cef = parse_cef(r"CEF:0|Vendor\|Inc|Pro\\duct|1.0|sig|Name|7|a=1")
    assert (cef["device_vendor"], cef["device_product"], cef["device_version"]) == ("Vendor|Inc", "Pro\\duct", "1.0")
    assert (cef["device_event_class_id"], cef["name"], cef["severity"]) == ("sig", "Name", "7")


def test_extension_newline_escapes_become_line_breaks():
    extension = parse_cef_extension(r"src=10.0.0.1 msg=Detected a threat.\n No action needed.\r cs1=C:\\Windows")
    assert extension == {"src": "10.0.0.1", "msg": "Detected a threat.\n No action needed.\r", "cs1": "C:\\Windows"}


def test_extension_values_keep_their_spaces_and_a_lone_backslash_is_kept():
    # Given Carbon Black's documented output (an unescaped backslash in duser)
    event = parse(CARBON_BLACK)
    extension = event["metadata"]["cef"]["extension"]
    # Then multi-word values run to the next key and the odd backslash survives
    assert extension["msg"] == "File 'itunessetup64.exe' has been blocked because it was unapproved."
    assert (extension["duser"], extension["dst"]) == ("NTAUTHORITY\\SYSTEM", "10.0.0.1")
    assert (event["title"], event["severity"], event["host"]) == (
        "Execution block (unapproved file)",
        "medium",
        "server3.mycorp.local",
    )


@pytest.mark.parametrize(("sent", "ours"), [("0", "low"), ("3", "low"), ("4", "medium"), ("6", "medium"), ("7", "high"), ("8", "high"),
                                           ("9", "critical"), ("10", "critical"), ("Low", "low"), ("Medium", "medium"),
                                           ("High", "high"), ("Very-High", "critical")])  # fmt: skip
def test_cef_severities_map_to_ours(sent, ours):
    assert cef_severity(sent) == ours
    assert parse(b"<14>Nov 23 10:00:00 fw CEF:0|V|P|1|sig|Name|%s|src=1.1.1.1" % sent.encode())["severity"] == ours


@pytest.mark.parametrize("sent", ["Unknown", "11", "", "urgent"])
def test_a_cef_severity_we_cannot_read_keeps_the_syslog_severity(sent):
    assert cef_severity(sent) is None
    event = parse(b"<11>Nov 23 10:00:00 fw CEF:0|V|P|1|sig|Name|%s|src=1.1.1.1" % sent.encode())
    assert event["severity"] == "high"  # syslog severity 3


def test_bare_cef_takes_host_and_time_from_the_extension():
    # Given a CEF record with no syslog header at all
    event = parse(
        b"CEF:0|Fortinet|FortiGate|7.2|0419016384|ips: attack detected|9|rt=1795000000000 dvchost=fw1.example.com src=10.1.1.1"
    )
    # Then the device names the host and the time
    assert (event["host"], event["occurred_at"]) == ("fw1.example.com", datetime(2026, 11, 18, 11, 6, 40, tzinfo=UTC))
    assert (event["event_type"], event["severity"], event["source"]) == ("0419016384", "critical", PEER)
    assert event["metadata"]["facility_name"] == "user"


def test_a_lone_word_before_a_bare_record_is_its_host():
    event = parse(b"<134>fw01 CEF:0|Acme|Box|1|77|Port scan|5|src=203.0.113.9")
    assert (event["host"], event["title"], event["occurred_at"]) == ("fw01", "Port scan", RECEIVED)


def test_cef_inside_rfc5424_keeps_both_headers():
    event = parse(
        b"<134>1 2026-11-23T10:00:00Z ids01 snort 77 - - CEF:1|Snort|IDS|3.1|1:2019401|ET SCAN|6|src=203.0.113.9"
    )
    assert (event["host"], event["service"], event["event_type"], event["severity"]) == (
        "ids01",
        "snort",
        "1:2019401",
        "medium",
    )
    assert event["tags"] == ["syslog", "rfc5424", "cef"] and event["metadata"]["cef"]["version"] == "1"


def test_an_incomplete_cef_header_keeps_the_line_as_a_plain_message_with_a_warning():
    event = parse(b"<13>Nov 23 10:00:00 fw app: CEF:0|Vendor|Product")
    assert (event["event_type"], event["title"], event["metadata"]["format"]) == (
        "syslog",
        "CEF:0|Vendor|Product",
        "rfc3164",
    )
    assert "CEF header has 7" in event["metadata"]["parse_warnings"][0]
    with pytest.raises(InvalidEvent, match="7"):
        parse_cef("CEF:0|V|P|1")


def test_the_word_cef_in_prose_is_not_a_record():
    assert find_payload("mode changed to CEF: enabled") is None
    assert find_payload("see xCEF:0|a|b|c|d|e|f|") is None
    assert parse(b"<13>Nov 23 10:00:00 h app: output CEF: enabled")["metadata"]["format"] == "rfc3164"


def test_a_cef_record_without_a_name_is_titled_by_vendor_product_and_id():
    assert parse(b"CEF:0|Acme|Box|1|77||5|")["title"] == "Acme Box 77"
    assert parse_cef("CEF:0|V|P|1|42|Name|3|")["extension"] == {}


# LEEF


def test_leef_1_from_the_qradar_guide_is_tab_separated():
    # Given the guide's LEEF 1.0 example behind a PRI-less RFC 3164 header
    event = parse(QRADAR_LEEF_1)
    leef = event["metadata"]["leef"]
    # Then the attributes split on tabs and the header fields are kept
    assert (leef["version"], leef["vendor"], leef["product"], leef["product_version"]) == (
        "1.0",
        "Microsoft",
        "MSExchange",
        "4.0 SP1",
    )
    assert leef["attributes"] == {
        "src": "10.50.1.1",
        "dst": "2.10.20.20",
        "spt": "1200",
        "sev": "5",
        "usrName": "joe.black",
    }
    assert (event["event_type"], event["severity"], event["host"]) == ("15345", "medium", "192.168.1.1")
    assert event["title"] == "Microsoft MSExchange 15345" and event["metadata"]["format"] == "leef"


def test_leef_2_uses_its_own_delimiter():
    event = parse(QRADAR_LEEF_2)
    leef = event["metadata"]["leef"]
    assert (leef["delimiter"], leef["event_id"]) == ("^", "41")
    assert leef["attributes"] == {"src": "10.0.1.8", "dst": "10.0.0.5", "sev": "5", "srcPort": "81", "dstPort": "21"}
    assert event["tags"] == ["syslog", "rfc3164", "leef"]


@pytest.mark.parametrize("spec", ["^", "x5E", "0x5E", "X5e"])
def test_leef_2_delimiters_may_be_written_as_hex(spec):
    leef = parse_leef(f"LEEF:2.0|Lancope|StealthWatch|1.0|41|{spec}|src=10.0.1.8^dst=10.0.0.5")
    assert leef["attributes"] == {"src": "10.0.1.8", "dst": "10.0.0.5"}


def test_leef_2_without_a_delimiter_field_uses_tabs():
    leef = parse_leef("LEEF:2.0|Vendor|Product|2.1|evt|src=10.0.0.1\tmsg=two words")
    assert (leef["delimiter"], leef["attributes"]) == ("\t", {"src": "10.0.0.1", "msg": "two words"})


def test_leef_event_id_may_have_spaces_and_cat_refines_the_title():
    event = parse(b"LEEF:1.0|Microsoft|Exchange|2013|Login Event|cat=Failed")
    assert (event["event_type"], event["title"]) == ("Login Event", "Microsoft Exchange Login Event (Failed)")


def test_leef_msg_is_the_title_and_sev_the_severity():
    event = parse(
        b"<14>Nov 23 10:00:00 fw LEEF:2.0|Lancope|StealthWatch|1.0|41|^|src=10.0.1.8^sev=9^msg=worm spreading"
    )
    assert (event["title"], event["severity"]) == ("worm spreading", "critical")
    without_sev = parse(b"<12>Nov 23 10:00:00 fw LEEF:1.0|V|P|1|E|src=1.1.1.1")
    assert without_sev["severity"] == "medium"  # syslog severity 4


def test_leef_devtime_is_the_time_when_the_frame_has_none():
    event = parse(b"LEEF:1.0|V|P|1|E|devTime=Nov 20 2026 13:14:15\tsrc=1.1.1.1")
    assert event["occurred_at"] == datetime(2026, 11, 20, 13, 14, 15, tzinfo=UTC)


def test_an_unusable_leef_2_delimiter_keeps_the_line_as_a_plain_message():
    event = parse(b"<13>Nov 23 10:00:00 fw LEEF:2.0|V|P|1|E|zzz|a=1")
    assert event["metadata"]["format"] == "rfc3164"
    assert "delimiter" in event["metadata"]["parse_warnings"][0]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1795000000000", datetime(2026, 11, 18, 11, 6, 40, tzinfo=UTC)),
     ("1795000000", datetime(2026, 11, 18, 11, 6, 40, tzinfo=UTC)),
     ("Nov 18 2026 11:06:40.250 UTC", datetime(2026, 11, 18, 11, 6, 40, 250000, tzinfo=UTC)),
     ("2026-11-18T12:06:40+01:00", datetime(2026, 11, 18, 11, 6, 40, tzinfo=UTC)),
     ("yesterday", None), ("Foo 18 2026 11:06:40", None)],
)  # fmt: skip
def test_device_times_in_the_forms_cef_and_leef_use(value, expected):
    assert device_time(value) == expected

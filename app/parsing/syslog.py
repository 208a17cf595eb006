"""Syslog frames -> events: RFC 5424, RFC 3164 with its real-world deviations, CEF and LEEF.

RFC 3164 as devices really send it: no hostname (``<13>Nov 23 10:00:00 sshd[1]: msg``),
RFC 3339 timestamps instead of BSD ones (rsyslog), Cisco IOS sequence numbers and ``*``/``.``
time-sync marks (``<189>123: *Mar  1 00:01:02.345 UTC: %LINK-3-UPDOWN: ...``), year-less
dates (the year is chosen so the date is not more than a day after the arrival).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from ..errors import InvalidEvent
from ..events.schema import SYSLOG_SEVERITY, TITLE_MAX, make_event, utc
from .cef import cef_severity, leef_severity, parse_cef, parse_leef
from .syslog_rules import RuleSet, default_rules

FACILITIES = ("kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp",
              "ntp", "security", "console", "solaris-cron", "local0", "local1", "local2", "local3", "local4",
              "local5", "local6", "local7")  # fmt: skip
MONTHS = {
    m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)
}

# PERF: one compiled pattern per header shape, anchored; no backtracking across the message.
_PRI = re.compile(rb"<(\d{1,3})>")
_RFC5424 = re.compile(r"(\d{1,2}) (\S+) (\S+) (\S+) (\S+) (\S+) ")
_CISCO_SEQ = re.compile(r"(\d+): (?:(\S+): )?")
_BSD_TIME = re.compile(
    r"([*.]?)([A-Z][a-z]{2}) {1,2}(\d{1,2})(?: (\d{4}))? (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(?: ([A-Z]{2,5}))?:? "
)
_ISO_TIME = re.compile(r"(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?) ")
_TAG = re.compile(r"([^\s:\[]{1,64})(?:\[([^\]]{0,32})\])?: ?")
_CISCO_MNEMONIC = re.compile(r"%([A-Z0-9_]+)-\d-[A-Z0-9_]+")
#: Text that is a message, not a TAG, even though it has a colon.
_NO_TAG = ("%", "CEF:", "LEEF:")
_SD_PARAM = re.compile(r'\s*([^=\s\]"]+)="((?:[^"\\]|\\.)*)"')
_SD_UNESCAPE = re.compile(r'\\(["\\\]])')


def _pri(data: bytes) -> tuple[int, int, bytes]:
    """(facility, severity, rest). Without a PRI: user.notice (RFC 3164 §4.3.3)."""
    match = _PRI.match(data)
    if match is None:
        return 1, 5, data
    pri = int(match.group(1))
    if pri > 191:
        raise InvalidEvent(f"PRI {pri} is out of range", field="pri")
    return pri >> 3, pri & 7, data[match.end() :]


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data.decode("utf-8", "replace")


def _nil(value: str) -> str | None:
    return None if value == "-" else value


def parse_structured_data(text: str) -> tuple[dict[str, dict[str, str]], str]:
    """Parse RFC 5424 STRUCTURED-DATA at the start of ``text``; return (elements, the rest)."""
    if text.startswith("-"):
        return {}, text[1:].removeprefix(" ")
    elements: dict[str, dict[str, str]] = {}
    i = 0
    while i < len(text) and text[i] == "[":
        end_id = i + 1
        while end_id < len(text) and text[end_id] not in " ]":
            end_id += 1
        sd_id = text[i + 1 : end_id]
        params: dict[str, str] = {}
        j = end_id
        while j < len(text) and text[j] != "]":
            match = _SD_PARAM.match(text, j)
            if match is None:
                raise InvalidEvent("malformed STRUCTURED-DATA", field="structured_data")
            params[match.group(1)] = _SD_UNESCAPE.sub(r"\1", match.group(2))
            j = match.end()
        if j >= len(text):
            raise InvalidEvent("unterminated STRUCTURED-DATA element", field="structured_data")
        elements[sd_id] = params
        i = j + 1
    return elements, text[i:].removeprefix(" ")


def _parse_5424(text: str, meta: dict[str, Any]) -> tuple[datetime | None, str | None, str | None, str]:
    match = _RFC5424.match(text)
    if match is None:
        raise InvalidEvent("an RFC 5424 header needs VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID", field="header")
    _version, timestamp, hostname, appname, procid, msgid = match.groups()
    sd, message = parse_structured_data(text[match.end() :])
    meta.update(format="rfc5424", appname=_nil(appname), procid=_nil(procid), msgid=_nil(msgid), structured_data=sd)
    occurred = None
    if timestamp != "-":
        try:
            occurred = utc(datetime.fromisoformat(_trim_fraction(timestamp).replace("Z", "+00:00")))
        except ValueError:
            raise InvalidEvent(f"bad RFC 5424 timestamp {timestamp!r}", field="timestamp") from None
    return occurred, _nil(hostname), _nil(appname), message.removeprefix("\ufeff")


def _trim_fraction(ts: str) -> str:
    if "." not in ts:
        return ts
    head, _, tail = ts.partition(".")
    digits = len(tail) - len(tail.lstrip("0123456789"))
    return f"{head}.{tail[: min(digits, 6)].ljust(1, '0')}{tail[digits:]}"


def _bsd_time(match: re.Match[str], received_at: datetime) -> datetime:
    _mark, mon, day, year, hh, mm, ss, frac, _tz = match.groups()
    micro = int((frac or "0").ljust(6, "0"))
    month = MONTHS.get(mon)
    if month is None:
        raise InvalidEvent(f"unknown month {mon!r}", field="timestamp")
    when = datetime(
        int(year or received_at.year), month, int(day), int(hh), int(mm), int(ss), micro, received_at.tzinfo
    )
    if year is None and when > received_at + timedelta(days=1):
        when = when.replace(year=when.year - 1)  # a December line arriving in January
    return when


def _parse_3164(
    text: str, meta: dict[str, Any], received_at: datetime
) -> tuple[datetime | None, str | None, str | None, str]:
    meta["format"] = "rfc3164"
    hostname = None
    seq = _CISCO_SEQ.match(text)
    if seq and (_BSD_TIME.match(text, seq.end()) or text[seq.end() :].startswith("%")):
        meta["sequence"] = int(seq.group(1))
        hostname = seq.group(2)
        text = text[seq.end() :]
    occurred = None
    if (bsd := _BSD_TIME.match(text)) is not None:
        occurred = _bsd_time(bsd, received_at)
        if bsd.group(1):
            meta["time_sync"] = "unsynchronized" if bsd.group(1) == "*" else "lost"
        text = text[bsd.end() :]
    elif (iso := _ISO_TIME.match(text)) is not None:
        try:
            occurred = utc(datetime.fromisoformat(_trim_fraction(iso.group(1)).replace("Z", "+00:00")))
        except ValueError:
            occurred = None
        text = text[iso.end() :]
    tag = None if text.startswith(_NO_TAG) else _TAG.match(text)
    if hostname is None and tag is None and occurred is not None:
        # "<13>Nov 23 10:00:00 host tag: msg": a first word that is not a tag is the hostname
        first, _, rest = text.partition(" ")
        if first and not first.startswith(_NO_TAG) and rest:
            hostname, text = first.rstrip(":"), rest
            tag = None if text.startswith(_NO_TAG) else _TAG.match(text)
    appname = None
    if tag is not None:
        appname = tag.group(1)
        meta["procid"] = tag.group(2)
        text = text[tag.end() :]
    elif (mnemonic := _CISCO_MNEMONIC.match(text)) is not None:
        appname = mnemonic.group(1)  # %LINK-3-UPDOWN: the facility names the service
        meta["mnemonic"] = mnemonic.group(0)[1:]
    meta["appname"] = appname
    return occurred, hostname, appname, text


def _security_payload(message: str, meta: dict[str, Any]) -> tuple[str | None, str | None, str]:
    """CEF/LEEF inside the message: (event_type, severity, title) or (None, None, message)."""
    start = message.find("CEF:")
    if start >= 0 and (start == 0 or message[start - 1] == " "):
        cef = parse_cef(message[start:])
        meta.update(format="cef", cef=cef)
        return cef["signature_id"] or "cef", cef_severity(cef["severity"]), cef["name"] or message
    start = message.find("LEEF:")
    if start >= 0 and (start == 0 or message[start - 1] == " "):
        leef = parse_leef(message[start:])
        meta.update(format="leef", leef=leef)
        title = leef["attributes"].get("msg") or f"{leef['vendor']} {leef['product']} {leef['event_id']}"
        return leef["event_id"] or "leef", leef_severity(leef["attributes"]), title
    return None, None, message


def parse_syslog(
    data: bytes, *, received_at: datetime, peer: str | None, rules: RuleSet | None = None
) -> dict[str, Any]:
    """Parse one syslog frame into event fields.

    Parameters:
      data: The frame as received (no trailing newline).
      received_at: Arrival time (aware); used for year-less dates and as the fallback time.
      peer: The sender's address.
      rules: Parsing rules (default: the shipped ones).

    Raises:
      InvalidEvent: the frame is empty or its header is malformed.
    """
    if not data.strip():
        raise InvalidEvent("empty syslog frame", field="payload")
    facility, severity_num, rest = _pri(data)
    meta: dict[str, Any] = {
        "facility": facility,
        "facility_name": FACILITIES[facility],
        "syslog_severity": severity_num,
    }
    text = _decode(rest)
    if text[:4] in ("CEF:", "LEEF"):
        occurred, host, app, message = None, None, None, text
        meta["format"] = "bare"
    elif _RFC5424.match(text) and text[0] != "0":
        occurred, host, app, message = _parse_5424(text, meta)
    else:
        occurred, host, app, message = _parse_3164(text, meta, received_at)
    event_type, severity, title = _security_payload(message, meta)
    severity = severity or SYSLOG_SEVERITY[severity_num]
    match = (rules or default_rules()).match(message)
    if match is not None:
        rule, fields = match
        event_type = rule.event_type
        severity = rule.severity or severity
        meta["rule"] = rule.name
        meta.update(fields)
    title = title.strip() or (app or "syslog")
    return make_event(
        source_type="syslog",
        source=peer or host,
        event_type=event_type or "syslog",
        severity=severity,
        host=host or peer,
        service=app,
        title=title[:TITLE_MAX],
        description=message,
        occurred_at=occurred or received_at,
        metadata=meta,
        tags=["syslog", meta["format"]],
    )

"""Syslog frames -> events: RFC 5424, RFC 3164 as devices really send it, CEF and LEEF inside either.

The header decides the format: ``<PRI>1 TIMESTAMP ...`` is RFC 5424; anything else is RFC 3164,
read leniently, because real senders deviate from it in known ways:

- no PRI at all (QRadar-style ``Jan 18 11:07:53 host ...``): user.notice, RFC 3164 §4.3.3;
- no HOSTNAME (``<13>Nov 23 10:00:00 sshd[123]: msg``, util-linux ``logger`` writing to /dev/log);
- RFC 3339 timestamps instead of BSD ones (rsyslog's forward format);
- year-less BSD dates: the year is the latest one that puts the date at most a day after arrival;
- Cisco IOS: a message counter and ``service sequence-numbers`` (``<189>56: 000049: ``), an optional
  ``origin-id`` hostname, ``*`` (clock never set) / ``.`` (NTP sync lost) marks, milliseconds and a
  zone (``*Mar  1 00:01:02.345 UTC:``), uptime stamps (``00:00:46:``, ``1d02h:``), NX-OS's
  year-first dates and ASA's ``host : %ASA-...``.

A frame is refused (:class:`~app.errors.InvalidEvent`) only when it is empty or binary; every
other oddity still yields an event, with what could not be read listed in ``metadata.parse_warnings``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ..errors import InvalidEvent
from ..events.schema import SYSLOG_SEVERITY, TITLE_MAX, make_event, utc
from .cef import Payload, find_payload
from .syslog_ruleset import RuleSet, default_rules

#: Facility names by number (RFC 5424 table 1, spelled as rsyslog spells them).
FACILITIES = ("kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp",
              "ntp", "security", "console", "solaris-cron", "local0", "local1", "local2", "local3", "local4",
              "local5", "local6", "local7")  # fmt: skip
#: Facility and severity of a frame without a (valid) PRI: user.notice (RFC 3164 §4.3.3).
DEFAULT_FACILITY, DEFAULT_SEVERITY = 1, 5
#: Share of control bytes above which a frame is binary (a stray TLS hello, an SNMP packet), not text.
BINARY_RATIO = 0.1

_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                                       "Dec"), 1)}  # fmt: skip
_UTC_ZONES = frozenset({"UTC", "GMT", "UT", "Z"})
_RECORDS = ("CEF:", "LEEF:")

# PERF: one compiled pattern per header shape, each used with match() at a known position, never
# search(); the parser runs for every frame (10,000+ a second per normalizer process).
# These stay on Python's re (operators' and shipped rules run on RE2, app/regex.py) because each is
# linear by construction: every unbounded repeat is a character class that the literal after it
# cannot match (``\S+`` then a space, `` +`` then a non-space, ``[^"\\]*`` then ``"`` or ``\``),
# so a frame splits one way only and a failed attempt gives back each character once; all other
# repeats are bounded ({1,255} at most), and a lookahead reads one run at one position. RE2's Python binding
# would re-encode the frame at every match(text, pos), which is quadratic over a header walk.
# tests/unit/test_regex_safety.py parses hostile 64 KiB frames (bench/regex.py times them).
_PRI = re.compile(rb"<(\d{1,3})>")
_CONTROL = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f]")  # not \t \n \v \f \r or ESC (ANSI colours)
_RFC5424 = re.compile(r"([1-9]\d{0,2}) (-|\d{4}-\d\d-\d\dT\S+) (\S+) (\S+) (\S+) (\S+)(?: |$)")
_SD_ID = re.compile(r'\[([^\s=\]"]{1,32})')
_SD_PARAM = re.compile(r' +([^\s=\]"]{1,32})="([^"\\]*(?:\\.[^"\\]*)*)"', re.DOTALL)
_SD_ESCAPE = re.compile(r'\\(["\\\]])')
_CISCO_COUNTER = re.compile(
    r"(\d{0,10}): (?:(?!\d+: |\d{1,5}[ywd]\d{1,2}[wdh]: )([\w.\-]{1,255}): )?(?:(\d{1,10}): )?"
)  # the host may not be a number or an uptime ("1d02h")
_BSD_TIME = re.compile(
    r"([*.]?)(?:(\d{4}) )?([A-Za-z]{3}) +(\d{1,2})(?: (\d{4}))? (\d{1,2}):(\d\d):(\d\d)(?:\.(\d{1,9}))?"
    r"(?: ([A-Z]{2,5})(?=:))?:?(?: |$)"
)
_ISO_TIME = re.compile(r"(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?)(?: |$)")
_UPTIME = re.compile(r"(\d{1,2}:\d\d:\d\d(?:\.\d{1,6})?|\d{1,5}[ywd]\d{1,2}[wdh]): (?=%)")
_HOSTNAME = re.compile(r"([A-Za-z0-9_][\w.\-:%]{0,254})(?: :)? ")
_TAG = re.compile(r"([^\s:\[\]%][^\s:\[\]]{0,63})(?:\[([^\]\s]{0,32})\])?:(?: |$)")
_MNEMONIC = re.compile(r"%([A-Z][A-Z0-9_]*)-(\d)-([A-Z0-9_]+)\s?:")


@dataclass(slots=True)
class _Header:
    """What the syslog header says; ``extra`` and ``warnings`` go to the event's metadata."""

    format: str
    message: str = ""
    occurred_at: datetime | None = None
    hostname: str | None = None
    appname: str | None = None
    procid: str | None = None
    msgid: str | None = None
    structured_data: dict[str, dict[str, str]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def parse_syslog(
    data: bytes, *, received_at: datetime, peer: str | None, rules: RuleSet | None = None
) -> dict[str, Any]:
    """Parse one syslog frame (a UDP datagram or one TCP/TLS frame) into an event.

    Parameters:
      data: The frame without its transport framing (octet count or trailing LF).
      received_at: When the frame arrived (aware; naive is taken as UTC). Year-less dates are
        placed relative to it, and it is the event's time when the frame has none.
      peer: The sender's address; the event's ``source``, and its ``host`` when the frame names none.
      rules: Parsing rules, first match wins; ``None`` means the shipped :func:`default_rules`.

    Returns:
      An event dict (:func:`app.events.schema.make_event`) with ``fingerprint`` None.

    Raises:
      InvalidEvent: the frame is empty (or only a PRI) or binary data.
    """
    frame = data.strip(b" \t\r\n\x00")
    if not frame:
        raise InvalidEvent("the syslog frame is empty", field="payload")
    _refuse_binary(frame)
    received_at = utc(received_at)
    facility, severity_number, body, pri_warning = _split_pri(frame)
    if not body.strip():
        raise InvalidEvent(f"the syslog frame {frame!r} has a PRI and nothing else", field="payload")
    text, encoding = _decode(body)
    match = _RFC5424.match(text)
    header = _parse_rfc5424(text, match) if match is not None else _parse_rfc3164(text, received_at)
    if pri_warning:
        header.warnings.insert(0, pri_warning)
    message = header.message.strip()
    payload = None
    try:
        payload = find_payload(message)
    except InvalidEvent as e:
        header.warnings.append(f"{e.message}; kept as a plain message")
    metadata: dict[str, Any] = {
        "facility": facility,
        "facility_name": FACILITIES[facility],
        "syslog_severity": severity_number,
        "format": payload.format if payload else header.format,
        "appname": header.appname,
        "procid": header.procid,
        "msgid": header.msgid,
        "structured_data": header.structured_data,
        **header.extra,
    }
    if encoding:
        metadata["encoding"] = encoding
    return _event(header, message, payload, metadata, SYSLOG_SEVERITY[severity_number], received_at, peer, rules)


def parse_structured_data(text: str) -> tuple[dict[str, dict[str, str]], str]:
    """Parse the RFC 5424 STRUCTURED-DATA at the start of ``text``.

    Parameter values are unescaped (``\\"``, ``\\\\``, ``\\]``); a repeated SD-ID keeps its last element.

    Returns:
      ``({sd_id: {param: value}}, the MSG after it)``; ``({}, MSG)`` for the NILVALUE ``-``.

    Raises:
      InvalidEvent: ``text`` does not start with ``-`` or a well-formed ``[SD-ID param="value" ...]``.
    """
    if text == "-" or text.startswith("- "):
        return {}, text[2:]
    if not text.startswith("["):
        raise InvalidEvent("STRUCTURED-DATA is missing (it is '-' or starts with '[')", field="structured_data")
    elements: dict[str, dict[str, str]] = {}
    pos = 0
    while text.startswith("[", pos):
        sd_id = _SD_ID.match(text, pos)
        if sd_id is None:
            raise InvalidEvent(f"STRUCTURED-DATA element at offset {pos} has no SD-ID", field="structured_data")
        pos = sd_id.end()
        params: dict[str, str] = {}
        while (param := _SD_PARAM.match(text, pos)) is not None:
            value = param.group(2)
            params[param.group(1)] = _SD_ESCAPE.sub(r"\1", value) if "\\" in value else value
            pos = param.end()
        if not text.startswith("]", pos):
            raise InvalidEvent(
                f"STRUCTURED-DATA element {sd_id.group(1)!r} is malformed at offset {pos} "
                "(expected name=\"value\" or ']')",
                field="structured_data",
            )
        elements[sd_id.group(1)] = params
        pos += 1
    return elements, text[pos + 1 :] if text.startswith(" ", pos) else text[pos:]


def _event(
    header: _Header,
    message: str,
    payload: Payload | None,
    metadata: dict[str, Any],
    severity: str,
    received_at: datetime,
    peer: str | None,
    rules: RuleSet | None,
) -> dict[str, Any]:
    event_type = "syslog"
    title = message
    host = header.hostname
    occurred_at = header.occurred_at
    tags = ["syslog", header.format]
    if payload is not None:
        metadata[payload.format] = payload.fields
        event_type, title = payload.event_type, payload.title
        severity = payload.severity or severity
        prefix = payload.prefix.rstrip(":")  # "<134>fw01 CEF:0|...": a lone word before the record is its host
        host = host or payload.host or (prefix if prefix and " " not in prefix else None)
        occurred_at = occurred_at or payload.occurred_at
        tags.append(payload.format)
    found = (default_rules() if rules is None else rules).match(message)
    if found is not None:
        rule, fields = found
        event_type, severity = rule.event_type, rule.severity or severity
        metadata["rule"] = rule.name
        for key, value in fields.items():
            metadata.setdefault(key, value)  # a rule's field never overwrites what the parser found
    if header.warnings:
        metadata["parse_warnings"] = header.warnings
    title = title or header.appname or "syslog"
    return make_event(
        source_type="syslog",
        source=peer or host,
        event_type=event_type,
        severity=severity,
        host=host or peer,
        service=header.appname,
        title=title[:TITLE_MAX],
        description=message or None,
        occurred_at=occurred_at or received_at,
        metadata=metadata,
        tags=tags,
        fingerprint=None,
    )


def _refuse_binary(frame: bytes) -> None:
    # PERF: a text frame has no control bytes, so one failed search is all it costs.
    if _CONTROL.search(frame) is None:
        return
    controls = len(_CONTROL.findall(frame))
    if controls > BINARY_RATIO * len(frame):
        raise InvalidEvent(
            f"the frame is binary data ({controls} of its {len(frame)} bytes are control characters), not syslog",
            field="payload",
        )


def _split_pri(frame: bytes) -> tuple[int, int, bytes, str | None]:
    """(facility, severity, the rest, a warning). Without a valid PRI the whole frame is content."""
    match = _PRI.match(frame)
    if match is None:
        return DEFAULT_FACILITY, DEFAULT_SEVERITY, frame, None
    pri = int(match.group(1))
    if pri > 191:
        return DEFAULT_FACILITY, DEFAULT_SEVERITY, frame, f"PRI {pri} is out of range (0-191); taken as user.notice"
    return pri >> 3, pri & 7, frame[match.end() :], None


def _decode(body: bytes) -> tuple[str, str | None]:
    """UTF-8 (RFC 5424 MSG with or without BOM); anything else is taken as Latin-1, which keeps every byte."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("latin-1"), "latin-1"
    return text.removeprefix("\ufeff"), None


def _nil(value: str) -> str | None:
    return None if value == "-" else value


def _parse_rfc5424(text: str, match: re.Match[str]) -> _Header:
    _version, timestamp, hostname, appname, procid, msgid = match.groups()
    header = _Header("rfc5424", hostname=_nil(hostname), appname=_nil(appname), procid=_nil(procid), msgid=_nil(msgid))
    if timestamp != "-":
        try:
            header.occurred_at = utc(datetime.fromisoformat(timestamp))
        except ValueError:
            header.warnings.append(f"TIMESTAMP {timestamp!r} is not an RFC 3339 time; the arrival time is used")
    rest = text[match.end() :]
    try:
        header.structured_data, rest = parse_structured_data(rest)
    except InvalidEvent as e:
        header.warnings.append(f"{e.message}; the rest of the frame is the message")
    header.message = rest.removeprefix("\ufeff")
    return header


def _parse_rfc3164(text: str, received_at: datetime) -> _Header:
    header = _Header("rfc3164")
    pos = _cisco_prefix(text, 0, header, received_at)
    if pos == 0:
        pos = _timestamp(text, 0, header, received_at)
    tag = None if text.startswith(_RECORDS, pos) else _TAG.match(text, pos)
    if tag is None and header.hostname is None and pos > 0 and not text.startswith(_RECORDS, pos):
        # After a timestamp, a first word that is not a TAG is the HOSTNAME.
        host = _HOSTNAME.match(text, pos)
        if host is not None:
            header.hostname = host.group(1)
            pos = _cisco_prefix(text, host.end(), header, received_at)  # a relayed IOS line: "router1 56: *Mar ..."
            tag = None if text.startswith(_RECORDS, pos) else _TAG.match(text, pos)
    if tag is not None:
        header.appname, header.procid = tag.group(1), tag.group(2) or None
        pos = tag.end()
    elif (mnemonic := _MNEMONIC.match(text, pos)) is not None:
        # "%LINK-3-UPDOWN: ..." (IOS) has no TAG: the facility names the service.
        header.appname = mnemonic.group(1)
        header.extra["mnemonic"] = f"{mnemonic.group(1)}-{mnemonic.group(2)}-{mnemonic.group(3)}"
    header.message = text[pos:]
    return header


def _cisco_prefix(text: str, pos: int, header: _Header, received_at: datetime) -> int:
    """Consume IOS's ``56: [host: ][000049: ]`` before a timestamp or a ``%`` mnemonic; return the new position."""
    counter = _CISCO_COUNTER.match(text, pos)
    if counter is None:
        return pos
    end = _timestamp(text, counter.end(), header, received_at)
    if end == counter.end() and not text.startswith("%", end):
        return pos  # "404: not found" is a message, not a counter
    number = counter.group(3) or counter.group(1)
    if number:
        header.extra["sequence"] = int(number)
    if counter.group(2):
        header.hostname = counter.group(2)
    return end


def _timestamp(text: str, pos: int, header: _Header, received_at: datetime) -> int:
    """Consume an RFC 3339, BSD or IOS uptime timestamp at ``pos``; return the position after it."""
    if text[pos : pos + 1].isdigit():  # PERF: only a digit can start these two
        if (iso := _ISO_TIME.match(text, pos)) is not None:
            try:
                header.occurred_at = utc(datetime.fromisoformat(iso.group(1)))
            except ValueError:
                header.warnings.append(f"timestamp {iso.group(1)!r} is not a valid time; the arrival time is used")
            return iso.end()
        if (uptime := _UPTIME.match(text, pos)) is not None:
            header.extra["uptime"] = uptime.group(1)  # time since boot, not a time of day
            return uptime.end()
    bsd = _BSD_TIME.match(text, pos)
    if bsd is None:
        return pos
    mark, year_first, mon, day, year, hh, mm, ss, fraction, zone = bsd.groups()
    month = _MONTHS.get(mon.title())
    if month is None:
        return pos
    stamp = bsd.group(0).strip(" :").lstrip("*.")
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        when = _bsd_datetime(
            int(year_first or year or 0), month, int(day), (int(hh), int(mm), int(ss), micro), received_at
        )
    except ValueError:
        header.warnings.append(f"timestamp {stamp!r} is not a valid date; the arrival time is used")
        return bsd.end()
    if zone and zone not in _UTC_ZONES:
        header.extra["timezone"] = zone  # abbreviations are ambiguous (CST, IST): the time is taken as UTC
    if mark == "*":
        # IOS: the clock was never set, so the time is not worth using (typically "Mar 1" of some year).
        header.extra.update(time_sync="unsynchronized", device_time=stamp)
    else:
        if mark == ".":
            header.extra["time_sync"] = "lost"  # it was synchronized; still the best time there is
        header.occurred_at = when
    return bsd.end()


def _bsd_datetime(year: int, month: int, day: int, clock: tuple[int, int, int, int], received_at: datetime) -> datetime:
    """The UTC time of a BSD date; without a year, the latest year that is at most a day after arrival.

    Raises:
      ValueError: no year makes it a date (Feb 30, 25:00).
    """
    if year:
        return datetime(year, month, day, *clock, tzinfo=UTC)
    limit = received_at + timedelta(days=1)
    for candidate in range(limit.year, limit.year - 9, -1):  # 9 years reach back past any Feb 29
        try:
            when = datetime(candidate, month, day, *clock, tzinfo=UTC)
        except ValueError:
            continue
        if when <= limit:
            return when
    raise ValueError(f"no year makes {month}/{day} a date")

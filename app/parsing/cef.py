"""ArcSight CEF and QRadar LEEF 1.0/2.0 records, inside a syslog message or bare.

CEF: ``CEF:Version|Device Vendor|Device Product|Device Version|Device Event Class ID|Name|Severity|Extension``.
In the header ``\\|`` and ``\\\\`` are escapes; in the extension (``key=value`` pairs separated
by spaces) ``\\=``, ``\\\\``, ``\\n`` and ``\\r`` are, and a value may contain spaces: it runs until
the next `` key=``.

LEEF 1.0: ``LEEF:1.0|Vendor|Product|Version|EventID|`` then tab-separated ``key=value``.
LEEF 2.0 adds an optional delimiter field after EventID: one character (``^``) or its hex code
(``x5E``, ``0x5E``); without it the delimiter is a tab.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..errors import InvalidEvent
from ..events.schema import utc

# PERF: one compiled header pattern per format; a field is "anything but | and \, or \ and any character".
# Python's re, not RE2: each pattern is linear by construction (the field is the unrolled loop
# ``[^|\\]*(?:\\.[^|\\]*)*``, which reads a field one way only; a key is a run of key characters
# after white space, and such runs never overlap), and tests/unit/test_regex_safety.py times hostile
# 64 KiB records through the whole syslog parser.
_FIELD = r"([^|\\]*(?:\\.[^|\\]*)*)\|"
_CEF_HEADER = re.compile(r"CEF: ?(\d+(?:\.\d+)?)\|" + _FIELD * 6)
_LEEF_HEADER = re.compile(r"LEEF: ?(\d+(?:\.\d+)?)\|" + _FIELD * 4)
_LEEF_DELIMITER = re.compile(r"([^|=]{0,8})\|")
#: Where a record starts inside a message: at its beginning or after white space.
_CEF_START = re.compile(r"(?:^|(?<=\s))CEF: ?\d+(?:\.\d+)?\|")
_LEEF_START = re.compile(r"(?:^|(?<=\s))LEEF: ?\d+(?:\.\d+)?\|")
_HEADER_ESCAPE = re.compile(r"\\([|\\])")
#: An extension key starts the extension or follows white space; ``\=`` cannot end one (``\`` is no key character).
_EXT_KEY = re.compile(r"(?:^|(?<=[ \t]))([A-Za-z0-9_.\-]+)=")
_EXT_ESCAPE = re.compile(r"\\([=\\nr|])")
_EXT_ESCAPES = {"=": "=", "\\": "\\", "n": "\n", "r": "\r", "|": "|"}
_DEVICE_TIME = re.compile(
    r"([A-Z][a-z]{2}) +(\d{1,2}) (\d{4}) (\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(?: ([A-Za-z]{1,5}))?$"
)
_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                                       "Dec"), 1)}  # fmt: skip
_CEF_SEVERITY_WORDS = {
    "low": "low",
    "medium": "medium",
    "high": "high",
    "very-high": "critical",
    "very high": "critical",
}


@dataclass(frozen=True, slots=True)
class Payload:
    """A CEF or LEEF record found in a syslog message, with what it says about the event.

    Parameters:
      format: ``"cef"`` or ``"leef"``.
      fields: The header and the extension/attributes, kept as the event's ``metadata[format]``.
      event_type: The Device Event Class ID (CEF) or EventID (LEEF); ``format`` when it is empty.
      title: The CEF Name, the LEEF ``msg`` attribute, or vendor/product/id.
      severity: Our severity from the record's own, or ``None`` when it has none we understand.
      host: The device the record names (CEF ``dvchost``/``dvc``), if any.
      occurred_at: The device's time (CEF ``rt``/``start``, LEEF ``devTime``), if it parses.
      prefix: Text before the record in the message (for example a hostname without a syslog header).
    """

    format: str
    fields: dict[str, Any]
    event_type: str
    title: str
    severity: str | None
    host: str | None
    occurred_at: datetime | None
    prefix: str


def find_payload(message: str) -> Payload | None:
    """Parse the CEF or LEEF record in ``message``, if it has one.

    Returns:
      The record, or ``None`` when the message has no ``CEF:<version>|`` / ``LEEF:<version>|`` marker.

    Raises:
      InvalidEvent: the marker is there but the header is incomplete or malformed.
    """
    # PERF: a substring test before any regex; nearly all syslog lines carry neither marker.
    if "CEF:" in message and (start := _CEF_START.search(message)) is not None:
        return _cef_payload(message, start.start())
    if "LEEF:" in message and (start := _LEEF_START.search(message)) is not None:
        return _leef_payload(message, start.start())
    return None


def parse_cef(text: str) -> dict[str, Any]:
    """Parse a CEF record; ``text`` starts at ``CEF:``.

    Returns:
      ``version``, ``device_vendor``, ``device_product``, ``device_version``,
      ``device_event_class_id``, ``name``, ``severity`` (as sent) and ``extension`` (a dict).

    Raises:
      InvalidEvent: the header does not have its seven fields.
    """
    header = _CEF_HEADER.match(text)
    if header is None:
        raise InvalidEvent(
            f"a CEF header has 7 '|'-terminated fields; this one has {text.count('|')}: {text[:120]!r}", field="payload"
        )
    version, vendor, product, device_version, class_id, name, severity = map(_unescape_header, header.groups())
    return {
        "version": version,
        "device_vendor": vendor,
        "device_product": product,
        "device_version": device_version,
        "device_event_class_id": class_id,
        "name": name,
        "severity": severity,
        "extension": parse_cef_extension(text[header.end() :]),
    }


def parse_cef_extension(extension: str) -> dict[str, str]:
    """Parse ``key=value key2=value with spaces`` into a dict, unescaping ``\\=``, ``\\\\``, ``\\n``, ``\\r``."""
    keys = list(_EXT_KEY.finditer(extension))
    fields: dict[str, str] = {}
    for i, key in enumerate(keys):
        end = keys[i + 1].start() if i + 1 < len(keys) else len(extension)
        value = extension[key.end() : end].strip()
        if "\\" in value:
            value = _EXT_ESCAPE.sub(lambda e: _EXT_ESCAPES[e.group(1)], value)
        fields[key.group(1)] = value
    return fields


def parse_leef(text: str) -> dict[str, Any]:
    """Parse a LEEF 1.0 or 2.0 record; ``text`` starts at ``LEEF:``.

    Returns:
      ``version``, ``vendor``, ``product``, ``product_version``, ``event_id``, ``delimiter`` and
      ``attributes`` (a dict).

    Raises:
      InvalidEvent: the header is incomplete, or a LEEF 2.0 delimiter is neither a character nor a hex code.
    """
    header = _LEEF_HEADER.match(text)
    if header is None:
        raise InvalidEvent(
            f"a LEEF header has 5 '|'-terminated fields; this one has {text.count('|')}: {text[:120]!r}",
            field="payload",
        )
    version, vendor, product, product_version, event_id = map(_unescape_header, header.groups())
    rest = text[header.end() :]
    delimiter = "\t"
    if not version.startswith("1") and (spec := _LEEF_DELIMITER.match(rest)) is not None:
        delimiter = _leef_delimiter(spec.group(1))
        rest = rest[spec.end() :]
    attributes: dict[str, str] = {}
    for pair in rest.split(delimiter):
        key, sep, value = pair.partition("=")
        key = key.strip()
        if sep and key:
            attributes[key] = value.rstrip("\r\n")
    return {
        "version": version,
        "vendor": vendor,
        "product": product,
        "product_version": product_version,
        "event_id": event_id,
        "delimiter": delimiter,
        "attributes": attributes,
    }


def cef_severity(value: str) -> str | None:
    """Map a CEF severity (0-10, or Low/Medium/High/Very-High) to ours; ``None`` for Unknown or garbage."""
    word = value.strip().lower()
    if word.isdigit():
        return _ten_point(int(word))
    return _CEF_SEVERITY_WORDS.get(word)


def leef_severity(attributes: dict[str, str]) -> str | None:
    """Map LEEF's ``sev`` attribute (1-10) to ours; ``None`` when it is missing or not a number."""
    value = attributes.get("sev", "").strip()
    return _ten_point(int(value)) if value.isdigit() else None


def device_time(value: str) -> datetime | None:
    """Read a CEF/LEEF device time: epoch milliseconds (or seconds), ``MMM dd yyyy HH:mm:ss[.SSS] [zone]``, or ISO 8601.

    A zone other than UTC/GMT/Z is ignored (the time is taken as UTC). Returns ``None`` when it does not parse.
    """
    value = value.strip()
    try:
        if value.isdigit():
            number = int(value)
            return datetime.fromtimestamp(number / 1000 if number >= 10**11 else number, UTC)
        if (match := _DEVICE_TIME.match(value)) is not None:
            mon, day, year, hh, mm, ss, frac, _zone = match.groups()
            month = _MONTHS.get(mon)
            if month is None:
                return None
            micro = int((frac or "0").ljust(6, "0"))
            return datetime(int(year), month, int(day), int(hh), int(mm), int(ss), micro, UTC)
        return utc(datetime.fromisoformat(value))
    except (ValueError, OverflowError, OSError):
        return None


def _ten_point(n: int) -> str | None:
    """0-3 low, 4-6 medium, 7-8 high, 9-10 critical; anything else is not a CEF/LEEF severity."""
    if n > 10:
        return None
    return "low" if n <= 3 else "medium" if n <= 6 else "high" if n <= 8 else "critical"


def _unescape_header(field: str) -> str:
    return _HEADER_ESCAPE.sub(r"\1", field) if "\\" in field else field


def _leef_delimiter(spec: str) -> str:
    if not spec:
        return "\t"
    if len(spec) == 1:
        return spec
    if spec == "\\t":
        return "\t"
    hexcode = spec[2:] if spec[:2].lower() == "0x" else spec[1:] if spec[:1].lower() == "x" else ""
    if hexcode and len(hexcode) <= 4:
        try:
            return chr(int(hexcode, 16))
        except ValueError:
            pass
    raise InvalidEvent(f"a LEEF 2.0 delimiter is one character or its hex code (x5E), not {spec!r}", field="payload")


def _cef_payload(message: str, start: int) -> Payload:
    cef = parse_cef(message[start:])
    ext = cef["extension"]
    class_id = cef["device_event_class_id"].strip()
    title = cef["name"].strip() or f"{cef['device_vendor']} {cef['device_product']} {class_id}".strip()
    when = ext.get("rt") or ext.get("start")
    return Payload(
        format="cef",
        fields=cef,
        event_type=class_id or "cef",
        title=title,
        severity=cef_severity(cef["severity"]),
        host=ext.get("dvchost") or ext.get("dvc") or None,
        occurred_at=device_time(when) if when else None,
        prefix=message[:start].strip(),
    )


def _leef_payload(message: str, start: int) -> Payload:
    leef = parse_leef(message[start:])
    attributes = leef["attributes"]
    event_id = leef["event_id"].strip()
    title = attributes.get("msg", "").strip() or f"{leef['vendor']} {leef['product']} {event_id}".strip()
    if "msg" not in attributes and attributes.get("cat"):
        title += f" ({attributes['cat']})"
    when = attributes.get("devTime")
    return Payload(
        format="leef",
        fields=leef,
        event_type=event_id or "leef",
        title=title,
        severity=leef_severity(attributes),
        host=None,
        occurred_at=device_time(when) if when else None,
        prefix=message[:start].strip(),
    )

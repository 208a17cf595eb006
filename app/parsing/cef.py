"""ArcSight CEF and QRadar LEEF 1.0/2.0 payloads (inside syslog or bare).

CEF: ``CEF:Version|Vendor|Product|Version|SignatureID|Name|Severity|Extension``; in the
header ``\\|`` and ``\\\\`` are escapes, in the extension ``\\=``, ``\\\\``, ``\\n``, ``\\r``,
and values may contain spaces (a value runs until the next `` key=``).
LEEF 1.0: ``LEEF:1.0|Vendor|Product|Version|EventID|`` then tab-separated ``key=value``;
LEEF 2.0 adds a delimiter field after EventID (a character, or its hex form ``x5E``/``0x5E``).
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import InvalidEvent

# PERF: compiled once; the extension splitter finds each "key=" not preceded by a backslash.
_CEF_KEY = re.compile(r"(?:^|(?<=\s))([A-Za-z0-9_.\-\[\]]+)=")
_CEF_UNESCAPE_EXT = re.compile(r"\\([=\\nr|])")
_EXT_ESCAPES = {"=": "=", "\\": "\\", "n": "\n", "r": "\r", "|": "|"}


def _split_header(text: str, count: int) -> tuple[list[str], str]:
    """Split ``count`` pipe-separated header fields, honouring ``\\|`` and ``\\\\``; return (fields, rest)."""
    fields: list[str] = []
    current: list[str] = []
    i = 0
    n = len(text)
    while i < n and len(fields) < count:
        ch = text[i]
        if ch == "\\" and i + 1 < n and text[i + 1] in "|\\":
            current.append(text[i + 1])
            i += 2
            continue
        if ch == "|":
            fields.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    if len(fields) < count:
        raise InvalidEvent(f"the header has {len(fields)} of its {count} fields", field="payload")
    return fields, text[i:]


def parse_cef_extension(ext: str) -> dict[str, str]:
    """``key=value key2=value with spaces`` -> dict, unescaping values."""
    out: dict[str, str] = {}
    matches = [m for m in _CEF_KEY.finditer(ext) if not _escaped(ext, m.start(1))]
    for k, m in enumerate(matches):
        end = matches[k + 1].start() if k + 1 < len(matches) else len(ext)
        value = ext[m.end() : end].rstrip()
        out[m.group(1)] = _CEF_UNESCAPE_EXT.sub(lambda e: _EXT_ESCAPES[e.group(1)], value)
    return out


def _escaped(text: str, pos: int) -> bool:
    """Whether the key starting at ``pos`` follows ``\\=``-style escaping (i.e. is inside a value)."""
    backslashes = 0
    j = pos - 1
    while j >= 0 and text[j] == "\\":
        backslashes += 1
        j -= 1
    return backslashes % 2 == 1


def cef_severity(value: str) -> str:
    """CEF severity (0-10 or Low/Medium/High/Very-High) -> ours."""
    word = value.strip().lower()
    if word.isdigit():
        n = int(word)
        return "low" if n <= 3 else "medium" if n <= 6 else "high" if n <= 8 else "critical"
    return {"low": "low", "medium": "medium", "high": "high", "very-high": "critical", "unknown": "medium"}.get(
        word, "medium"
    )


def parse_cef(text: str) -> dict[str, Any]:
    """Parse a CEF record (``text`` starts at ``CEF:``).

    Raises:
      InvalidEvent: the header is incomplete.
    """
    fields, ext = _split_header(text[4:], 7)
    version, vendor, product, dev_version, signature, name, severity = fields
    return {
        "cef_version": version,
        "device_vendor": vendor,
        "device_product": product,
        "device_version": dev_version,
        "signature_id": signature,
        "name": name,
        "severity": severity,
        "extension": parse_cef_extension(ext),
    }


def _leef_delimiter(spec: str) -> str:
    spec = spec.strip()
    if not spec:
        return "\t"
    lowered = spec.lower()
    if lowered.startswith(("0x", "x")) and len(spec) > 1:
        try:
            return chr(int(lowered.lstrip("0").lstrip("x") or "0", 16))
        except ValueError:
            pass
    return spec[0]


def parse_leef(text: str) -> dict[str, Any]:
    """Parse a LEEF 1.0 or 2.0 record (``text`` starts at ``LEEF:``).

    Raises:
      InvalidEvent: the header is incomplete.
    """
    version = text[5:8]
    if version.startswith("2"):
        fields, rest = _split_header(text[5:], 6)
        delimiter = _leef_delimiter(fields[5])
    else:
        fields, rest = _split_header(text[5:], 5)
        delimiter = "\t"
    attributes: dict[str, str] = {}
    for pair in rest.split(delimiter):
        key, sep, value = pair.partition("=")
        if sep and key.strip():
            attributes[key.strip()] = value
    return {
        "leef_version": fields[0],
        "vendor": fields[1],
        "product": fields[2],
        "product_version": fields[3],
        "event_id": fields[4],
        "attributes": attributes,
    }


def leef_severity(attributes: dict[str, str]) -> str | None:
    """LEEF's ``sev`` attribute (1-10) -> ours, when present."""
    value = attributes.get("sev", "").strip()
    if value.isdigit():
        n = int(value)
        return "low" if n <= 3 else "medium" if n <= 6 else "high" if n <= 8 else "critical"
    return None

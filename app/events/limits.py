"""What storage and the broker accept, checked where input enters.

PostgreSQL refuses a NUL character in ``text`` and in ``jsonb`` (``\\u0000``);
orjson, which encodes every broker message, refuses lone surrogates and JSON
nested deeper than 254 levels. A value that passes :func:`first_problem` can be
published and stored; one that does not is bad input: the web tier answers 400
naming the field, the normalizer stores the raw input with the error (or, for
syslog and SNMP, escapes the NUL with :func:`escape` and parses the rest).
"""

from __future__ import annotations

import re
from typing import Any

import orjson

#: Deepest nesting of objects and lists accepted at the HTTP edge. orjson stops at 254,
#: and no event, rule or template needs more than a handful of levels.
MAX_DEPTH = 64

#: How a NUL is written in syslog and SNMP input we keep: ASCII, so it survives the
#: latin-1 re-encoding of frames that are not UTF-8, and it says which byte arrived.
NUL_ESCAPE = "\\x00"

#: A lone surrogate (a valid pair cannot occur in a Python str).
_SURROGATE = re.compile("[\ud800-\udfff]")

#: Longest field path named in an error; deeper paths are cut in the middle.
MAX_FIELD_CHARS = 200


class _Problem(Exception):
    """Raised inside the walk and caught by :func:`first_problem`, which builds the path on the way out."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.path: list[str | int] = []


def _check_str(text: str, what: str) -> None:
    if "\x00" in text:
        raise _Problem(f"{what} contains a NUL character (\\u0000), which cannot be stored")
    # PERF: isascii() is a flag lookup; only non-ASCII text can hold a lone surrogate.
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise _Problem(f"{what} contains a lone surrogate, which is not valid Unicode") from None


def _walk(value: Any, depth: int, max_depth: int | None) -> None:
    if isinstance(value, str):
        _check_str(value, "a string")
    elif isinstance(value, dict):
        if max_depth is not None and depth > max_depth:
            raise _Problem(f"nesting is deeper than {max_depth} levels")
        for key, child in value.items():
            try:
                if isinstance(key, str):
                    _check_str(key, "a key")
                _walk(child, depth + 1, max_depth)
            except _Problem as problem:
                problem.path.append(str(key))
                raise
    elif isinstance(value, list | tuple):
        if max_depth is not None and depth > max_depth:
            raise _Problem(f"nesting is deeper than {max_depth} levels")
        for i, child in enumerate(value):
            try:
                _walk(child, depth + 1, max_depth)
            except _Problem as problem:
                problem.path.append(i)
                raise


def field_path(parts: list[str | int], *, prefix: str = "") -> str:
    """``["metadata", "a", 3, "b"]`` -> ``metadata.a[3].b`` (after ``prefix``)."""
    text = prefix
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    if len(text) > MAX_FIELD_CHARS:
        half = MAX_FIELD_CHARS // 2
        text = f"{text[:half]}…{text[-half:]}"
    return text or "body"


def first_problem(value: Any, *, max_depth: int | None = MAX_DEPTH, prefix: str = "") -> tuple[str, str] | None:
    """Find the first part of a decoded JSON value that cannot be stored or published.

    # PERF: one recursive walk, bounded by ``max_depth``; paths are built only on failure.

    Parameters:
      value: A decoded JSON value (dicts, lists, strings, numbers, booleans, None).
      max_depth: Deepest nesting accepted (a top-level object is level 1); None checks no depth.
      prefix: Path of ``value`` itself, prepended to the field named.

    Returns:
      ``(field, message)``: the dotted path of the offending field (``metadata.a.b``,
      ``[3].title``) and what is wrong with it; None when everything can be stored.
    """
    try:
        _walk(value, 1, max_depth)
    except _Problem as problem:
        return field_path(problem.path[::-1], prefix=prefix), problem.message
    except RecursionError:  # only without max_depth, on input nested past the interpreter's limit
        return prefix or "body", "nesting is too deep"
    return None


def decoded_problem(raw: bytes, value: Any, *, max_depth: int = MAX_DEPTH) -> tuple[str, str] | None:
    """:func:`first_problem` of ``value``, which :func:`orjson.loads` decoded from ``raw``: the same answer,
    usually without walking the value.

    # PERF: the walk visits every string (about 2 µs per event, more than the rest of validation).
    # orjson refuses lone surrogates and unescaped control characters, so a value it decoded can only
    # hold a NUL written as the escape ``\\u0000``, which a byte search finds; and it cannot nest deeper
    # than it has brackets, so only a body with more than ``max_depth`` of them has its containers
    # (not its strings) visited. Whenever either check is inconclusive, the full walk runs and names the field.
    """
    if b"\\u0000" not in raw and (raw.count(b"{") + raw.count(b"[") <= max_depth or not _deeper(value, max_depth)):
        return None
    return first_problem(value, max_depth=max_depth)


def _deeper(value: Any, levels: int) -> bool:
    """Whether the containers in ``value`` (itself included) nest more than ``levels`` deep; strings are not visited."""
    kind = type(value)
    if kind is dict:
        children = value.values()
    elif kind is list:
        children = value
    else:
        return False
    if levels == 0:
        return True
    for child in children:
        kind = type(child)
        if (kind is dict or kind is list) and _deeper(child, levels - 1):
            return True
    return False


def storage_problem(value: Any, *, prefix: str = "") -> tuple[str, str] | None:
    """:func:`first_problem` without a depth limit, fast for the common case of nothing wrong.

    # PERF: orjson encodes an event in about a microsecond, ten times faster than the walk;
    # only when the encoding shows a NUL escape (or fails) does the walk run, to name the field.
    """
    try:
        if b"\\u0000" not in orjson.dumps(value, default=str):
            return None
    except (orjson.JSONEncodeError, RecursionError):
        pass
    return first_problem(value, max_depth=None, prefix=prefix)


def escape(value: Any) -> Any:
    """``value`` with every NUL written as ``\\x00`` and lone surrogates as U+FFFD, in keys and strings.

    Used on syslog and SNMP input, whose senders cannot be told "400": the input is kept,
    readable, and parsed; the original bytes are recognisable from the escape.
    """
    if isinstance(value, str):
        if "\x00" in value:
            value = value.replace("\x00", NUL_ESCAPE)
        if not value.isascii() and _has_surrogate(value):
            value = _SURROGATE.sub("\ufffd", value)
        return value
    if isinstance(value, dict):
        return {escape(k) if isinstance(k, str) else k: escape(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [escape(v) for v in value]
    return value


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False

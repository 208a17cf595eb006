"""Which events a silence takes in: Alertmanager's matchers on event fields, validated and compiled.

A matcher is ``{"name", "value", "is_regex", "is_equal"}``: ``host = web-01`` (equality),
``host =~ web-.*`` (regex), and their negations ``!=`` and ``!~`` (``is_equal: false``). A
silence takes in an event when every one of its matchers does.

- Names: ``host``, ``service``, ``event_type``, ``severity``, ``source``, ``source_type`` and
  ``tag``. A field the event lacks is the empty string (so ``service = ""`` takes in events with
  no service, and ``service != db`` takes them in too).
- ``tag`` takes in an event when any of its tags matches; its negation when none does.
- Equality ignores case, as maintenance windows' scopes do: senders disagree on the case of host
  names (``WEB-01`` in a trap, ``web-01`` from Prometheus). A regex is matched as written
  (write ``(?i)`` to ignore case) and must match the whole value, as Alertmanager's do
  (``web-.*`` takes in ``web-01``, not ``old-web-01``). Regexes are RE2 (:mod:`app.regex`).
- A silence needs at least one matcher that does not match the empty string, as Alertmanager
  requires: ``host =~ .*`` or ``service != db`` alone would silence nearly everything.

Everything here is pure: a unit test calls it without a database.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..errors import InvalidInput
from ..regex import MAX_PATTERN_CHARS, Regex, compile_regex

#: Matcher name -> the event's field (as :func:`app.events.query.event_json` names it).
FIELDS: dict[str, str] = {
    "host": "host",
    "service": "service",
    "event_type": "event_type",
    "severity": "severity",
    "source": "source",
    "source_type": "source_type",
    "tag": "tags",
}
#: The keys of a matcher.
MATCHER_KEYS = ("name", "value", "is_regex", "is_equal")
#: Matchers in one silence, at most.
MAX_MATCHERS = 50
#: A matcher on the command line: the name, the operator, the value (anything, even empty).
_MATCHER_TEXT = re.compile(r"([a-z_]+)(=~|!~|!=|=)(.*)", re.DOTALL)
#: Characters a regex gives a special meaning to, escaped by :func:`escape` (RE2 refuses other escapes).
_SPECIAL = frozenset("\\.^$|?*+()[]{}")


def escape(text: str) -> str:
    """``text`` as an RE2 pattern matching exactly it (Python's ``re.escape`` escapes spaces, which RE2 refuses)."""
    return "".join("\\" + c if c in _SPECIAL else c for c in text)


@dataclass(frozen=True)
class Matcher:
    """One compiled matcher.

    Parameters:
      name: One of :data:`FIELDS`.
      value: The value compared (equality) or the pattern (regex), as written.
      is_regex: ``value`` is a regular expression matched against the whole field.
      is_equal: ``False`` negates the matcher (``!=``, ``!~``).
    """

    name: str
    value: str
    is_regex: bool = False
    is_equal: bool = True
    _regex: Regex | None = field(init=False, repr=False, compare=False, default=None)
    _folded: str = field(init=False, repr=False, compare=False, default="")

    def __post_init__(self) -> None:
        # PERF: the pattern is compiled once, anchored, and equality compares case-folded text.
        anchored = compile_regex(f"^(?:{self.value})$", field="value") if self.is_regex else None
        object.__setattr__(self, "_regex", anchored)
        object.__setattr__(self, "_folded", self.value.casefold())

    def _test(self, value: str) -> bool:
        if self._regex is not None:
            return self._regex.search(value) is not None
        return value.casefold() == self._folded

    def matches(self, event: Mapping[str, Any]) -> bool:
        """Whether this matcher takes in ``event`` (a dict as :func:`~app.events.query.event_json` shows it)."""
        if self.name == "tag":
            found = any(self._test(str(tag)) for tag in event.get("tags") or ())
        else:
            value = event.get(FIELDS[self.name])
            found = self._test("" if value is None else str(value))
        return found if self.is_equal else not found

    def matches_empty(self) -> bool:
        """Whether this matcher takes in the empty string (a matcher that does matches nearly every event;
        for ``tag``: ``tag=~.*`` takes in every tagged event, ``tag!=x`` every event with no tag ``x``)."""
        return self._test("") == self.is_equal

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "is_regex": self.is_regex, "is_equal": self.is_equal}

    def __str__(self) -> str:
        op = ("=" if self.is_equal else "!=") if not self.is_regex else ("=~" if self.is_equal else "!~")
        return f"{self.name}{op}{json.dumps(self.value)}"


def _matcher(item: Any, where: str) -> Matcher:
    if not isinstance(item, dict):
        raise InvalidInput('a matcher is an object {"name", "value", "is_regex", "is_equal"}', field=where)
    unknown = sorted(set(item) - set(MATCHER_KEYS))
    if unknown:
        raise InvalidInput(f"unknown key {unknown[0]!r}: a matcher has {', '.join(MATCHER_KEYS)}",
                           field=f"{where}.{unknown[0]}" if unknown[0] else where)  # fmt: skip
    name = item.get("name")
    if name not in FIELDS:
        raise InvalidInput(f"name is one of {', '.join(FIELDS)}", field=f"{where}.name")
    value = item.get("value")
    if not isinstance(value, str) or len(value) > MAX_PATTERN_CHARS:
        raise InvalidInput(f"value is a string of at most {MAX_PATTERN_CHARS} characters", field=f"{where}.value")
    flags = {}
    for key in ("is_regex", "is_equal"):
        flag = item.get(key, key == "is_equal")
        if not isinstance(flag, bool):
            raise InvalidInput(f"{key} is true or false", field=f"{where}.{key}")
        flags[key] = flag
    if flags["is_regex"]:
        # The pattern alone first: anchoring a broken one ("a)|(b") could make it compile as something else.
        compile_regex(value, field=f"{where}.value", label="the regex")
    return Matcher(name, value, **flags)


def parse_matchers(items: Any, *, field: str = "matchers") -> list[Matcher]:
    """Validate the matchers of a silence.

    Parameters:
      items: The ``matchers`` of a request body: a list of matcher objects.
      field: Where they are in the body, for the errors.

    Returns:
      The compiled matchers, in order.

    Raises:
      InvalidInput: naming the offending field (``matchers``, ``matchers[1].value``, ``matchers[0].name`` …):
        not a list, empty or too long, a matcher with an unknown key, name or a regex RE2 refuses, or
        only matchers that also match the empty string.
    """
    if not isinstance(items, list) or not items:
        raise InvalidInput("matchers is a non-empty list of matchers", field=field)
    if len(items) > MAX_MATCHERS:
        raise InvalidInput(f"a silence has at most {MAX_MATCHERS} matchers", field=field)
    matchers = [_matcher(item, f"{field}[{i}]") for i, item in enumerate(items)]
    if all(m.matches_empty() for m in matchers):
        raise InvalidInput(
            "at least one matcher must not match the empty string (such as host=web-01 or host=~web-.+): "
            "these would silence nearly every event",
            field=field,
        )
    return matchers


def parse_matcher_text(text: str) -> dict[str, Any]:
    """A matcher written as on Alertmanager's command line: ``host=web-01``, ``host!=db``, ``service=~api|web``, ``tag!~test.*``.

    Returns:
      The matcher as a body holds it (validated later by :func:`parse_matchers`).

    Raises:
      InvalidInput: ``text`` is not ``NAME`` then one of ``=``, ``!=``, ``=~``, ``!~`` then a value.
    """
    found = _MATCHER_TEXT.fullmatch(text.strip())
    if found is None:
        raise InvalidInput(f"a matcher is NAME=VALUE, NAME!=VALUE, NAME=~REGEX or NAME!~REGEX, not {text!r}",
                           field="matchers")  # fmt: skip
    name, op, value = found.groups()
    return {"name": name, "value": value, "is_regex": "~" in op, "is_equal": not op.startswith("!")}


def compile_stored(items: Iterable[Mapping[str, Any]]) -> list[Matcher]:
    """The matchers of a stored silence (validated when written)."""
    return [Matcher(m["name"], m["value"], bool(m.get("is_regex")), bool(m.get("is_equal", True))) for m in items]


@dataclass(frozen=True)
class Window:
    """A silence as the matcher needs it: its id, period and compiled matchers."""

    id: int
    starts_at: datetime
    ends_at: datetime
    matchers: tuple[Matcher, ...]

    def takes_in(self, event: Mapping[str, Any], at: datetime) -> bool:
        """Whether this silence applies to ``event`` arriving at ``at``."""
        return self.starts_at <= at < self.ends_at and all(m.matches(event) for m in self.matchers)


def arrival(event: Mapping[str, Any]) -> datetime:
    """When ``event``'s latest occurrence arrived (``last_seen_at``; ``received_at`` for an event not yet repeated).

    Silences are matched at this instant: arrival at the edge is the evaluator's event time (a
    backlog changes nothing), and a repeat folded into an earlier event is judged when it arrived.
    """
    text = event.get("last_seen_at") or event["received_at"]
    return datetime.fromisoformat(str(text).replace("Z", "+00:00"))


class SilenceSet:
    """The silences in force over a span of time, matched against events on the hot path.

    Parameters:
      windows: The silences, in id order (the first that applies wins, so an event's silence is stable).
      since: The earliest arrival this set answers for: a silence that ended before it is not in it.
    """

    __slots__ = ("windows", "since")

    def __init__(self, windows: Iterable[Window], *, since: datetime) -> None:
        self.windows = tuple(sorted(windows, key=lambda w: w.id))
        self.since = since

    def __bool__(self) -> bool:
        return bool(self.windows)

    def __len__(self) -> int:
        return len(self.windows)

    def match(self, event: Mapping[str, Any], at: datetime | None = None) -> int | None:
        """The id of the first silence that applies to ``event``, or None.

        Parameters:
          event: The event as :func:`~app.events.query.event_json` shows it.
          at: When it arrived (:func:`arrival`); read from ``event`` when not given.
        """
        if not self.windows:
            return None
        if at is None:
            at = arrival(event)
        for window in self.windows:
            if window.takes_in(event, at):
                return window.id
        return None

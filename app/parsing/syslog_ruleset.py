"""Operator-extensible parsing rules: a regex on the syslog message decides event_type and severity.

A rule is ``{"name", "pattern", "event_type", "severity", "extract_fields", "description"}``;
only ``pattern`` and ``event_type`` are required. The regex's groups become event metadata:
named groups under their own names, unnamed ones under the names listed in
``extract_fields`` (in group order), so the spec's form
``{"pattern": "Failed password for .* from (.*) port", "extract_fields": ["source_ip"]}`` works.

The shipped rules live in ``app/data/syslog_rules.json``; operators' rules (stored by
:mod:`app.events.syslog_rule_store`) are put in front of them. The first rule that matches wins.

Patterns run on RE2 (:mod:`app.regex`), shipped and operators' alike: time linear in the
line whatever the pattern, so one hostile 64 KiB frame cannot stall a normalizer (the shipped
``systemd_failed_to_start`` took 15 s on one under Python's ``re``). RE2 has no backreferences
or lookarounds; such a pattern is refused naming ``pattern``. ``bench/regex.py`` times every
shipped rule on hostile lines.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from typing import Any

import re2

from ..errors import InvalidRule
from ..events.schema import SEVERITIES
from ..regex import Regex, compile_regex, options

logger = logging.getLogger(__name__)

#: Keys a rule definition may have; anything else is a typo worth refusing.
RULE_KEYS = frozenset({"name", "pattern", "event_type", "severity", "extract_fields", "description"})


@dataclass(frozen=True, slots=True)
class Rule:
    """One parsing rule.

    Parameters:
      name: Unique name (shown in an event's ``metadata.rule``).
      pattern: Compiled RE2 pattern, searched anywhere in the message.
      event_type: The event_type of a matching message.
      severity: The severity of a matching message; ``None`` keeps the syslog severity.
      extract_fields: Metadata names for the pattern's groups, in order.
    """

    name: str
    pattern: Regex
    event_type: str
    severity: str | None = None
    extract_fields: tuple[str, ...] = ()

    def apply(self, message: str) -> dict[str, str] | None:
        """Return the fields this rule extracts from ``message``, or ``None`` if it does not match."""
        groups = self.pattern.search(message)
        return None if groups is None else self.fields(groups)

    def fields(self, groups: list[str | None]) -> dict[str, str]:
        """The metadata fields of a match (``[whole, group 1, ...]``): named groups, then ``extract_fields``
        for the groups by position."""
        fields = {name: value for index, name in self.pattern.names.items() if (value := groups[index]) is not None}
        for key, value in zip(self.extract_fields, groups[1:], strict=False):
            if value is not None:
                fields.setdefault(key, value)
        return fields

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rule:
        """Build a rule from its JSON form.

        Raises:
          InvalidRule: a key is unknown, the pattern does not compile, the severity is not one of
            ours, event_type is missing, or extract_fields names more groups than the pattern has.
        """
        if not isinstance(data, dict):
            raise InvalidRule(f"a parsing rule is a JSON object, not {type(data).__name__}")
        name = str(data.get("name") or data.get("pattern") or "?")
        unknown = sorted(set(data) - RULE_KEYS)
        if unknown:
            raise InvalidRule(
                f"rule {name!r}: unknown keys {unknown}; a rule has {sorted(RULE_KEYS)}", field=unknown[0]
            )
        if not isinstance(data.get("pattern"), str) or not data["pattern"]:
            raise InvalidRule(f"rule {name!r}: pattern (a regular expression) is required", field="pattern")
        pattern = compile_regex(data["pattern"], field="pattern", label=f"rule {name!r}: the pattern")
        event_type = data.get("event_type")
        if not isinstance(event_type, str) or not event_type.strip():
            raise InvalidRule(f"rule {name!r}: event_type is required", field="event_type")
        severity = data.get("severity")
        if severity is not None and severity not in SEVERITIES:
            raise InvalidRule(f"rule {name!r}: severity must be one of {', '.join(SEVERITIES)}", field="severity")
        extract = data.get("extract_fields") or []
        if not isinstance(extract, list) or not all(isinstance(f, str) and f for f in extract):
            raise InvalidRule(f"rule {name!r}: extract_fields must be a list of names", field="extract_fields")
        if len(extract) > pattern.groups:
            raise InvalidRule(
                f"rule {name!r}: extract_fields names {len(extract)} fields but the pattern has {pattern.groups} groups",
                field="extract_fields",
            )
        return cls(name, pattern, event_type.strip(), severity, tuple(extract))


#: Longest line whose "no rule matched" the :class:`re2.Set` prefilter may decide alone, in characters.
#: The set's DFA has no NFA to fall back on: when hostile text fills its cache it answers "no match".
#: A line this short cannot fill :data:`app.regex.MAX_MEM_BYTES` of states, so longer ones that the set
#: rejects are searched rule by rule (linear, only slower).
SET_TRUSTED_CHARS = 2048


class RuleSet:
    """Rules in order; :meth:`match` returns the first that matches.

    Parameters:
      rules: The rules, most specific first.
    """

    __slots__ = ("rules", "_set")

    def __init__(self, rules: Iterable[Rule] = ()) -> None:
        self.rules: tuple[Rule, ...] = tuple(rules)
        self._set = _prefilter(self.rules)

    @classmethod
    def from_dicts(cls, items: list[dict[str, Any]]) -> RuleSet:
        """Build rules from their JSON form (a list of objects).

        Raises:
          InvalidRule: ``items`` is not a list, a rule is invalid, or two rules share a name.
        """
        if not isinstance(items, list):
            raise InvalidRule(f"parsing rules are a JSON list of objects, not {type(items).__name__}")
        rules = [Rule.from_dict(item) for item in items]
        names = [rule.name for rule in rules]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise InvalidRule(f"rule names must be unique; repeated: {duplicates}", field="name")
        return cls(rules)

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> RuleSet:
        """Read rules from a JSON file (a list of rule objects).

        Raises:
          InvalidRule: the file is not JSON or a rule is invalid.
          OSError: the file cannot be read.
        """
        with open(path, encoding="utf-8") as f:
            try:
                items = json.load(f)
            except json.JSONDecodeError as e:
                raise InvalidRule(f"{os.fspath(path)} is not JSON: {e}") from None
        return cls.from_dicts(items)

    def match(self, message: str) -> tuple[Rule, dict[str, str]] | None:
        """Return the first rule that matches ``message`` and the fields it extracts, or ``None``."""
        # PERF: this runs for every syslog line. One pass of the set's DFA over the line tells which
        # rules match (most lines: none), then only the first of them is searched for its groups.
        # Searching each rule through the Python binding costs ~20 times more.
        candidates = self.rules
        data = message.encode("utf-8", "surrogatepass")
        if self._set is not None:
            hits = self._set.Match(data)
            if hits:
                candidates = self.rules[min(hits) :]
            elif len(message) <= SET_TRUSTED_CHARS:
                return None
        for rule in candidates:
            found = rule.pattern.search_utf8(data)
            if found is not None:
                return rule, rule.fields(found)
        return None

    def __add__(self, other: RuleSet) -> RuleSet:
        return RuleSet(self.rules + other.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def __iter__(self) -> Iterator[Rule]:
        return iter(self.rules)

    def __repr__(self) -> str:
        return f"RuleSet({[rule.name for rule in self.rules]!r})"


def _prefilter(rules: tuple[Rule, ...]) -> Any:
    """An RE2 set of the rules' patterns, in order (set index = rule index); ``None`` if it cannot be built."""
    if not rules:
        return None
    prefilter = re2.Set.SearchSet(options())
    try:
        for rule in rules:
            prefilter.Add(rule.pattern.pattern)
        prefilter.Compile()
    except re2.error as e:
        logger.warning("Syslog rules are searched one by one: their RE2 set does not compile (%s).", e)
        return None
    return prefilter


@functools.cache
def default_rules() -> RuleSet:
    """The shipped rules from ``app/data/syslog_rules.json``, read once per process.

    Raises:
      InvalidRule: the shipped file is broken (a packaging defect; the unit tests load it).
    """
    text = resources.files("app").joinpath("data/syslog_rules.json").read_text(encoding="utf-8")
    return RuleSet.from_dicts(json.loads(text))

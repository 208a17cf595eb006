"""Operator-extensible parsing rules: a pattern on the message -> event_type, severity, fields.

Rules come from the shipped file ``app/data/syslog_rules.json`` and, when
operators add their own, from the database (``events.event_patterns`` rows of
``pattern_type = 'syslog_rule'``). The first rule that matches wins.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from ..errors import InvalidRule
from ..events.schema import SEVERITIES


@dataclass(frozen=True)
class Rule:
    """One parsing rule.

    ``extract_fields`` names the regex's groups in order; named groups are extracted too.
    """

    name: str
    pattern: re.Pattern[str]
    event_type: str
    severity: str | None = None
    extract_fields: tuple[str, ...] = field(default_factory=tuple)

    def apply(self, message: str) -> dict[str, Any] | None:
        match = self.pattern.search(message)
        if match is None:
            return None
        fields = {k: v for k, v in match.groupdict().items() if v is not None}
        for name, value in zip(self.extract_fields, match.groups(), strict=False):
            if value is not None:
                fields.setdefault(name, value)
        return fields

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rule:
        """Raises: InvalidRule for a bad pattern, severity or shape."""
        name = data.get("name") or data.get("pattern")
        try:
            pattern = re.compile(data["pattern"])
        except (KeyError, TypeError, re.error) as e:
            raise InvalidRule(f"rule {name!r}: bad pattern: {e}", field="pattern") from None
        severity = data.get("severity")
        if severity is not None and severity not in SEVERITIES:
            raise InvalidRule(f"rule {name!r}: severity must be one of {', '.join(SEVERITIES)}", field="severity")
        if not isinstance(data.get("event_type"), str) or not data["event_type"]:
            raise InvalidRule(f"rule {name!r}: event_type is required", field="event_type")
        return cls(str(name), pattern, data["event_type"], severity, tuple(data.get("extract_fields") or ()))


class RuleSet:
    """Ordered rules; :meth:`match` returns the first that matches."""

    def __init__(self, rules: list[Rule]) -> None:
        self.rules = rules

    @classmethod
    def from_dicts(cls, items: list[dict[str, Any]]) -> RuleSet:
        return cls([Rule.from_dict(item) for item in items])

    @classmethod
    def from_json(cls, path: str) -> RuleSet:
        with open(path) as f:
            return cls.from_dicts(json.load(f))

    def match(self, message: str) -> tuple[Rule, dict[str, Any]] | None:
        for rule in self.rules:
            fields = rule.apply(message)
            if fields is not None:
                return rule, fields
        return None

    def __add__(self, other: RuleSet) -> RuleSet:
        return RuleSet(self.rules + other.rules)


_default: RuleSet | None = None


def default_rules() -> RuleSet:
    """The shipped rules (loaded once per process)."""
    global _default
    if _default is None:
        text = resources.files("app").joinpath("data/syslog_rules.json").read_text()
        _default = RuleSet.from_dicts(json.loads(text))
    return _default

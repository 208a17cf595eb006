"""Operators' syslog parsing rules from the database, ahead of the shipped ones.

Rules are ``events.event_patterns`` rows with ``pattern_type = 'syslog_rule'``
(``pattern_definition`` holds the rule: pattern, event_type, severity,
extract_fields). ``opsconductor rules import FILE`` loads a JSON file of them.
Each normalizer process re-reads them at most every :data:`REFRESH_S` seconds.
"""

from __future__ import annotations

import json
import logging
import time

from .. import audit
from ..db import in_transaction
from ..models import EventPattern
from ..parsing.syslog_ruleset import Rule, RuleSet, default_rules

logger = logging.getLogger(__name__)

PATTERN_TYPE = "syslog_rule"
#: Seconds between refreshes of the rules in a normalizer process.
REFRESH_S = 30.0

_cache: tuple[float, RuleSet] | None = None


def current_rules() -> RuleSet:
    """Operators' active rules first, then the shipped ones."""
    global _cache
    now = time.monotonic()
    if _cache is not None and _cache[0] > now:
        return _cache[1]

    def load() -> list[EventPattern]:
        query = EventPattern.select().where((EventPattern.pattern_type == PATTERN_TYPE) & EventPattern.active)
        return list(query.order_by(EventPattern.id))

    rules = []
    for row in in_transaction(load):
        try:
            rules.append(Rule.from_dict({"name": row.pattern_name, **row.pattern_definition}))
        except Exception as e:  # noqa: BLE001 - one bad row must not stop parsing
            logger.error("Ignoring syslog rule %r: %s", row.pattern_name, e)
    ruleset = RuleSet(rules) + default_rules()
    _cache = (now + REFRESH_S, ruleset)
    return ruleset


def import_rules(path: str, *, actor: str = "cli") -> int:
    """Validate every rule of a JSON file, then store them (replacing rules of the same name)."""
    with open(path) as f:
        items = json.load(f)
    rules = RuleSet.from_dicts(items).rules  # raises InvalidRule before anything is stored

    def work() -> None:
        for rule, item in zip(rules, items, strict=True):
            definition = {k: v for k, v in item.items() if k != "name"}
            EventPattern.delete().where(
                (EventPattern.pattern_type == PATTERN_TYPE) & (EventPattern.pattern_name == rule.name)
            ).execute()
            EventPattern.create(pattern_name=rule.name, pattern_type=PATTERN_TYPE, pattern_definition=definition)
        audit.record(
            audit.Action.SYSLOG_RULE_IMPORTED, actor=actor, subject=path, details={"rules": [r.name for r in rules]}
        )

    in_transaction(work)
    return len(rules)

"""Trigger rules' limits as the evaluator reads them: hourly caps and cooldowns, from the firings stored.

Limits only tighten: firings are only ever added and a rule's ``last_fired_at`` only grows. So any
older view of them (a subset of the firings, an earlier ``last_fired_at``) can only find *fewer*
rules blocked than the database would: a rule it finds blocked is blocked. The evaluator uses such a
view (:class:`LimitsView`, refreshed at most every :data:`REFRESH_S`) to skip rules that cannot fire
before matching, and decides every firing again under the rule's row lock from fresh reads.
"""

from __future__ import annotations

import time
from bisect import bisect_left, bisect_right, insort
from datetime import datetime, timedelta
from typing import Any

from ..db import database, is_postgres
from ..models import RuleExecution, TriggerRule
from .triggers import TriggerSpec

#: The hour of ``max_triggers_per_hour``.
HOUR = timedelta(hours=1)
#: Seconds a process's view of the limits is used before it is read again.
REFRESH_S = 1.0

#: PERF: one array parameter instead of a placeholder per rule (peewee builds those in Python).
_FIRED_SQL = (
    "SELECT trigger_rule_id, fired_at FROM rules.rule_executions"
    " WHERE trigger_rule_id = ANY(%s::bigint[]) AND fired_at > %s AND fired_at < %s"
)
_LAST_FIRED_SQL = "SELECT id, last_fired_at FROM rules.trigger_rules WHERE id = ANY(%s::bigint[])"


def fired(rule_ids: list[int], first: datetime, last: datetime) -> dict[int, list[datetime]]:
    """Each rule's firings within an hour of [first, last], in time order."""
    out: dict[int, list[datetime]] = {}
    if not rule_ids:
        return out
    # Batches arrive out of order across processes: firings *after* an event count too, so no
    # hour-long window around a firing can hold more than the limit.
    rows: Any
    if is_postgres():
        rows = database.execute_sql(_FIRED_SQL, (list(rule_ids), first - HOUR, last + HOUR)).fetchall()
    else:
        rows = (
            RuleExecution.select(RuleExecution.trigger_rule_id, RuleExecution.fired_at)
            .where(
                RuleExecution.trigger_rule_id.in_(rule_ids)
                & (RuleExecution.fired_at > first - HOUR)
                & (RuleExecution.fired_at < last + HOUR)
            )
            .tuples()
        )
    for rule_id, at in rows:
        out.setdefault(rule_id or 0, []).append(RuleExecution.fired_at.python_value(at))
    for times in out.values():
        times.sort()
    return out


def last_fired(rule_ids: list[int]) -> dict[int, datetime | None]:
    """Each rule's ``last_fired_at`` (rules deleted meanwhile are left out)."""
    if not rule_ids:
        return {}
    if is_postgres():
        rows = database.execute_sql(_LAST_FIRED_SQL, (list(rule_ids),)).fetchall()
    else:
        rows = (
            TriggerRule.select(TriggerRule.id, TriggerRule.last_fired_at).where(TriggerRule.id.in_(rule_ids)).tuples()
        )
    return {rule_id: TriggerRule.last_fired_at.python_value(at) for rule_id, at in rows}


def blocked(spec: TriggerSpec, last_fired_at: datetime | None, firings: list[datetime], times: list[datetime]) -> bool:
    """Whether the rule's limits stop every one of these events, so none need be looked at.

    PERF: once a rule reached its hourly limit or is cooling down, a batch costs nothing more.
    Cooling down: every event is less than ``cooldown`` after the last firing (or before it).
    At the limit: the firings within an hour of *every* event — those in (last - 1 h, first + 1 h) —
    are already ``max_triggers_per_hour``.
    """
    first, last = min(times), max(times)
    if (
        spec.cooldown_minutes
        and last_fired_at is not None
        and last - last_fired_at < timedelta(minutes=spec.cooldown_minutes)
    ):
        return True
    common = bisect_left(firings, first + HOUR) - bisect_right(firings, last - HOUR)
    return common >= spec.max_triggers_per_hour


def _limited(rules: list[tuple[int, TriggerSpec]]) -> list[int]:
    """Rules whose limits can block a whole batch: rules with a threshold are always matched (their
    matches count towards later windows)."""
    return [rule_id for rule_id, spec in rules if not (spec.threshold_count and spec.time_window_minutes)]


class LimitsView:
    """A process's recent view of its rules' limits (see the module's docstring: never too strict).

    Read again when older than :data:`REFRESH_S`, or when a batch's events lie outside the span its
    firings were read for.
    """

    def __init__(self) -> None:
        self._read_at = float("-inf")
        self._span: tuple[datetime, datetime] | None = None
        self._rules: frozenset[int] = frozenset()
        self._last_fired: dict[int, datetime | None] = {}
        self._fired: dict[int, list[datetime]] = {}
        #: The rules list last judged, with its limited rules (ids, as a set, and each one's limits).
        self._judged: list[tuple[int, TriggerSpec]] | None = None
        self._limited: list[int] = []
        self._limited_set: frozenset[int] = frozenset()
        self._limits: list[tuple[int, timedelta | None, int]] = []

    def note(self, rule_id: int, at: datetime) -> None:
        """A firing this process committed (at event time ``at``): its rule is judged with it from now on."""
        if rule_id in self._rules:
            insort(self._fired.setdefault(rule_id, []), at)
            previous = self._last_fired.get(rule_id)
            self._last_fired[rule_id] = at if previous is None or at > previous else previous

    def _stale(self, first: datetime, last: datetime) -> bool:
        if time.monotonic() - self._read_at >= REFRESH_S or self._span is None:
            return True
        if not (self._span[0] <= first and last <= self._span[1]):
            return True
        return self._rules is not self._limited_set and not self._rules.issuperset(self._limited_set)

    def _judge(self, rules: list[tuple[int, TriggerSpec]]) -> None:
        """PERF: what the limits need of ``rules``, worked out once per rules list (the evaluator's cache keeps one
        list until the rules change), not once per batch."""
        if rules is self._judged:
            return
        self._limited = _limited(rules)
        self._limited_set = frozenset(self._limited)
        specs = dict(rules)
        self._limits = [
            (rule_id, timedelta(minutes=cooldown) if (cooldown := specs[rule_id].cooldown_minutes) else None,
             specs[rule_id].max_triggers_per_hour)
            for rule_id in self._limited
        ]  # fmt: skip
        self._judged = rules

    def unblocked(
        self, rules: list[tuple[int, TriggerSpec]], first: datetime, last: datetime
    ) -> list[tuple[int, TriggerSpec]]:
        """The rules whose limits may still let an event between ``first`` and ``last`` fire (call in a transaction).

        PERF: in a flood most rules sit at their hourly limit or cool down; they are neither matched
        nor locked, and the view they are judged by is read about once a second, not per batch.
        """
        self._judge(rules)
        limited = self._limited
        if not limited:
            return rules
        if self._stale(first, last):
            # Firings up to an hour past the span read count for its later events; a later batch
            # whose events leave the span reads again.
            span = (first, last + HOUR)
            self._fired = fired(limited, span[0], span[1])
            self._last_fired = last_fired(limited)
            self._read_at, self._span, self._rules = time.monotonic(), span, self._limited_set
        # As :func:`blocked` decides for [first, last], in one loop over the rules' limits worked out before.
        since, until = last - HOUR, first + HOUR
        last_fired_at, fired_at = self._last_fired, self._fired
        stopped = set()
        for rule_id, cooldown, cap in self._limits:
            if rule_id not in last_fired_at:
                continue  # deleted meanwhile: the evaluator finds it gone under the lock
            at = last_fired_at[rule_id]
            if cooldown is not None and at is not None and last - at < cooldown:
                stopped.add(rule_id)
            elif (times := fired_at.get(rule_id)) and bisect_left(times, until) - bisect_right(times, since) >= cap:
                stopped.add(rule_id)
        if not stopped:
            return rules
        return [(rule_id, spec) for rule_id, spec in rules if rule_id not in stopped]

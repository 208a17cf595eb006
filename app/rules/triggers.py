"""Trigger rules: their definition (validated), schedule, and when a match fires (pure logic).

The live evaluator (``app.rules.evaluation``) and the ``/test`` replay share
:func:`should_fire`; they differ only in where the counts come from (the
database, settled under a row lock, or a replay's memory).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..errors import InvalidRule
from .conditions import Batch, Condition, compile_condition

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: The fields of a trigger rule (the spec's body).
FIELDS = frozenset({
    "name", "description", "conditions", "time_window_minutes", "threshold_count", "max_triggers_per_hour",
    "cooldown_minutes", "active", "schedule", "response_template_id",
})  # fmt: skip
#: What a GET answers besides the fields: accepted back in a PUT and ignored, since it is not the caller's to set.
READ_ONLY = frozenset({"rule_id", "created_at", "updated_at", "last_fired_at"})
SCHEDULE_FIELDS = frozenset({"days", "start", "end", "timezone"})


@dataclass(frozen=True)
class Schedule:
    """When a rule is active: days of the week and a daily time range, in a time zone."""

    days: tuple[int, ...]
    start: time
    end: time
    tz: ZoneInfo

    def active_at(self, when: datetime) -> bool:
        local = when.astimezone(self.tz)
        if local.weekday() not in self.days:
            return False
        now = local.time()
        if self.start <= self.end:
            return self.start <= now < self.end
        return now >= self.start or now < self.end  # across midnight

    @classmethod
    def parse(cls, spec: Any) -> Schedule | None:
        if spec is None:
            return None
        if not isinstance(spec, dict):
            raise InvalidRule("schedule is an object {days, start, end, timezone}", field="schedule")
        days = spec.get("days", list(DAYS))
        if not isinstance(days, list) or not days or any(d not in DAYS for d in days):
            raise InvalidRule(f"schedule.days is a list of {', '.join(DAYS)}", field="schedule.days")
        try:
            start = time.fromisoformat(spec.get("start", "00:00"))
            end = time.fromisoformat(spec.get("end", "23:59:59"))
        except (TypeError, ValueError):
            raise InvalidRule("schedule.start and schedule.end are HH:MM", field="schedule.start") from None
        try:
            tz = ZoneInfo(spec.get("timezone", "UTC"))
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidRule(f"unknown time zone {spec.get('timezone')!r}", field="schedule.timezone") from None
        return cls(tuple(DAYS.index(d) for d in days), start, end, tz)


@dataclass(frozen=True)
class TriggerSpec:
    """A validated trigger rule, with its condition compiled."""

    name: str
    conditions: dict[str, Any]
    predicate: Condition = field(compare=False)
    description: str | None = None
    time_window_minutes: int | None = None
    threshold_count: int | None = None
    max_triggers_per_hour: int = 10
    cooldown_minutes: int | None = None
    active: bool = True
    schedule: Schedule | None = None
    schedule_spec: dict[str, Any] | None = None
    response_template_id: int | None = None
    #: What the body holds that the rule does not use (unknown keys): for the write answer.
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def matches(self, event: dict[str, Any]) -> bool:
        return self.predicate.test(event)

    def matching(self, batch: Batch) -> int:
        """The mask of the batch's events the conditions accept (see :class:`app.rules.conditions.Batch`)."""
        return self.predicate.mask(batch)


def _opt_int(body: dict[str, Any], key: str, *, low: int, high: int) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidRule(f"{key} must be an integer from {low} to {high}", field=key)
    return value


def _ignored_keys(body: dict[str, Any]) -> tuple[str, ...]:
    """Warnings for keys nothing reads: a misspelt ``cooldown_minute`` must not pass unnoticed."""
    ignored = [key for key in body if key not in FIELDS | READ_ONLY]
    schedule = body.get("schedule")
    if isinstance(schedule, dict):
        ignored += [f"schedule.{key}" for key in schedule if key not in SCHEDULE_FIELDS]
    return tuple(f"unknown key {key!r} is ignored" for key in ignored)


def parse_trigger(body: Any) -> TriggerSpec:
    """Validate a trigger rule as the API receives it (the spec's body).

    Keys the rule does not use are not an error (other tools add their own), but each is named in
    the result's ``warnings``.

    Raises:
      InvalidRule: naming the offending field, operator or path.
    """
    if not isinstance(body, dict):
        raise InvalidRule("a trigger rule is a JSON object", field="body")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise InvalidRule("name is required (at most 200 characters)", field="name")
    if "conditions" not in body:
        raise InvalidRule("conditions are required", field="conditions")
    predicate = compile_condition(body["conditions"])
    window = _opt_int(body, "time_window_minutes", low=1, high=7 * 24 * 60)
    threshold = _opt_int(body, "threshold_count", low=1, high=1_000_000)
    if threshold is not None and threshold > 1 and window is None:
        raise InvalidRule("threshold_count needs time_window_minutes", field="threshold_count")
    max_per_hour = _opt_int(body, "max_triggers_per_hour", low=1, high=100_000)
    active = body.get("active", True)
    if not isinstance(active, bool):
        raise InvalidRule("active must be true or false", field="active")
    description = body.get("description")
    if description is not None and not isinstance(description, str):
        raise InvalidRule("description must be a string", field="description")
    return TriggerSpec(
        name=name.strip(),
        conditions=body["conditions"],
        predicate=predicate,
        description=description,
        time_window_minutes=window,
        threshold_count=threshold,
        max_triggers_per_hour=10 if max_per_hour is None else max_per_hour,
        cooldown_minutes=_opt_int(body, "cooldown_minutes", low=0, high=7 * 24 * 60),
        active=active,
        schedule=Schedule.parse(body.get("schedule")),
        schedule_spec=body.get("schedule"),
        response_template_id=_opt_int(body, "response_template_id", low=1, high=2**62),
        warnings=_ignored_keys(body),
    )


def should_fire(
    rule: TriggerSpec,
    *,
    at: datetime,
    matches_in_window: int,
    last_fired_at: datetime | None,
    fired_last_hour: int,
) -> tuple[bool, str]:
    """Whether a matching event at ``at`` fires the rule, and why (or why not).

    Parameters:
      matches_in_window: Matching events in the rule's window ending at ``at``, this one included.
      last_fired_at: The rule's last firing.
      fired_last_hour: Firings within an hour of ``at`` (before it, or after it when events arrive out of order).
    """
    if not rule.active:
        return False, "rule inactive"
    if rule.schedule is not None and not rule.schedule.active_at(at):
        return False, "outside the rule's schedule"
    if rule.threshold_count and matches_in_window < rule.threshold_count:
        return False, f"{matches_in_window} of {rule.threshold_count} matching events in {rule.time_window_minutes} min"
    if (
        rule.cooldown_minutes
        and last_fired_at is not None
        and at - last_fired_at < timedelta(minutes=rule.cooldown_minutes)
    ):
        return False, f"cooling down ({rule.cooldown_minutes} min)"
    if fired_last_hour >= rule.max_triggers_per_hour:
        return False, f"max {rule.max_triggers_per_hour} firings per hour reached"
    return True, "fired"

"""Trigger rules: validation, thresholds in a window, max per hour, cooldown and schedules —
live against the database (both databases) and as a replay, with the clock frozen by freezegun."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time

from app.errors import InvalidRule
from app.events.envelope import make_item
from app.events.store import store_batch
from app.ids import new_id
from app.models import RuleExecution, TriggerRule
from app.rules.evaluation import RuleCache, columns_of, estimated_trigger_rate, evaluate, replay
from app.rules.triggers import parse_trigger, should_fire

START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # a Monday


def rule(**body):
    return parse_trigger({"name": "r", "conditions": {"severity": ["critical", "high"]}, **body})


def arrive(clock, n: int = 1, *, every_s: float = 60, severity: str = "high") -> list[str]:
    """n matching events arriving every ``every_s`` seconds of frozen time; returns their ids."""
    ids = []
    for _ in range(n):
        item = make_item(id=new_id(), source_type="webhook", received_at=time.time(),
                         payload={"source": "t", "severity": severity, "title": f"e {new_id()}"})  # fmt: skip
        store_batch([item], window_s=300)
        ids.append(item["id"])
        clock.tick(every_s)
    return ids


def install(spec) -> int:
    return TriggerRule.create(**columns_of(spec)).id


def fired(rule_id: int) -> int:
    return RuleExecution.select().where(RuleExecution.trigger_rule_id == rule_id).count()


def test_every_match_fires_a_rule_without_threshold_up_to_its_hourly_limit(any_db):
    with freeze_time(START) as clock:
        rule_id = install(rule(max_triggers_per_hour=3))
        ids = arrive(clock, 5, every_s=60)
        evaluate(ids, cache=RuleCache())
        assert fired(rule_id) == 3
        # an hour after the first firing, the rule may fire again
        clock.move_to(START + timedelta(minutes=61))
        evaluate(arrive(clock, 1), cache=RuleCache())
        assert fired(rule_id) == 4


def test_a_threshold_fires_when_n_matches_fall_in_the_window(any_db):
    with freeze_time(START) as clock:
        rule_id = install(rule(threshold_count=3, time_window_minutes=5, max_triggers_per_hour=100))
        cache = RuleCache()
        evaluate(arrive(clock, 2, every_s=180), cache=cache)  # 0 and 3 min
        assert fired(rule_id) == 0
        evaluate(arrive(clock, 1), cache=cache)  # 6 min: the first one left the window
        assert fired(rule_id) == 0
        evaluate(arrive(clock, 1), cache=cache)  # 7 min: three in five minutes (3, 6, 7)
        assert fired(rule_id) == 1


def test_cooldown_suppresses_firings_until_it_passes(any_db):
    with freeze_time(START) as clock:
        rule_id = install(rule(cooldown_minutes=15, max_triggers_per_hour=100))
        evaluate(arrive(clock, 10, every_s=60), cache=RuleCache())  # 0..9 min
        assert fired(rule_id) == 1
        clock.move_to(START + timedelta(minutes=15))
        evaluate(arrive(clock, 1), cache=RuleCache())
        assert fired(rule_id) == 2


def test_non_matching_events_and_inactive_rules_do_not_fire(any_db):
    with freeze_time(START) as clock:
        live = install(rule())
        off = install(rule(active=False))
        evaluate(arrive(clock, 2, severity="low"), cache=RuleCache())
        assert fired(live) == 0
        evaluate(arrive(clock, 1), cache=RuleCache())
        assert (fired(live), fired(off)) == (1, 0)


def test_a_redelivered_batch_fires_nothing_twice(any_db):
    with freeze_time(START) as clock:
        rule_id = install(rule(max_triggers_per_hour=100))
        ids = arrive(clock, 3)
        evaluate(ids, cache=RuleCache())
        evaluate(ids, cache=RuleCache())
        assert fired(rule_id) == 3


def test_the_replay_fires_what_the_live_evaluator_fired_and_records_nothing(any_db):
    with freeze_time(START) as clock:
        spec = rule(threshold_count=2, time_window_minutes=10, cooldown_minutes=5, max_triggers_per_hour=4)
        rule_id = install(spec)
        ids = arrive(clock, 30, every_s=120)
        evaluate(ids, cache=RuleCache())
        live = [str(e.triggering_event_id) for e in RuleExecution.select().order_by(RuleExecution.fired_at)]
        before = RuleExecution.select().count()
        result = replay(spec, start=START, end=START + timedelta(hours=2))
        assert [f["event_id"] for f in result["firings"]] == live
        assert result["matched"] == 30 and RuleExecution.select().count() == before and fired(rule_id) == len(live)
        assert estimated_trigger_rate(spec, now=START + timedelta(hours=2)).startswith("about")


def test_the_estimated_rate_says_when_there_is_no_history(any_db):
    assert estimated_trigger_rate(rule(), now=START).startswith("unknown")


def test_a_schedule_limits_the_rule_to_its_hours():
    spec = rule(
        schedule={
            "days": ["mon", "tue", "wed", "thu", "fri"],
            "start": "08:00",
            "end": "18:00",
            "timezone": "Europe/Berlin",
        }
    )
    assert should_fire(spec, at=START, matches_in_window=1, last_fired_at=None, fired_last_hour=0)[0]  # 10:00 in Berlin
    assert not should_fire(
        spec, at=START + timedelta(hours=9), matches_in_window=1, last_fired_at=None, fired_last_hour=0
    )[0]
    assert not should_fire(
        spec, at=START + timedelta(days=5), matches_in_window=1, last_fired_at=None, fired_last_hour=0
    )[0]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"conditions": {}}, "name"),
        ({"name": "x"}, "conditions"),
        ({"name": "x", "conditions": {"metadata.cpu": {"$bigger": 1}}}, "conditions.metadata.cpu.$bigger"),
        ({"name": "x", "conditions": {}, "threshold_count": 3}, "threshold_count"),
        ({"name": "x", "conditions": {}, "max_triggers_per_hour": 0}, "max_triggers_per_hour"),
        ({"name": "x", "conditions": {}, "cooldown_minutes": "soon"}, "cooldown_minutes"),
        ({"name": "x", "conditions": {}, "schedule": {"days": ["someday"]}}, "schedule.days"),
        ({"name": "x", "conditions": {}, "schedule": {"timezone": "Mars/Olympus"}}, "schedule.timezone"),
    ],
)
def test_invalid_rules_name_the_field(body, field):
    with pytest.raises(InvalidRule) as error:
        parse_trigger(body)
    assert error.value.field == field

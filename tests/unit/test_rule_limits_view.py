"""Evaluator processes judge rules' limits from a view they read about once a second: an older view
never lets a rule fire more than its limits allow, on both databases, however the batches are split
between processes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.events.envelope import make_item
from app.events.store import store_batch
from app.ids import new_id
from app.models import EventFingerprint, ProcessedEvent, RawEvent, RuleExecution, RuleMatch, TriggerRule
from app.rules.evaluation import RuleCache, columns_of, evaluate, load_events, replay
from app.rules.triggers import parse_trigger

START = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def _rule(**limits: int) -> tuple[int, object]:
    spec = parse_trigger({"name": "r", "conditions": {"host": "h1"}, **limits})
    return TriggerRule.create(**columns_of(spec)).id, spec


def _events(times: list[datetime]) -> list[str]:
    ids: list[str] = []
    for i, at in enumerate(times):
        item = make_item(id=new_id(), source_type="webhook", received_at=at.timestamp(),
                         payload={"source": "t", "host": "h1", "title": f"event {i}"})  # fmt: skip
        ids += store_batch([item], window_s=300).event_ids
    return ids


def _fired(rule_id: int) -> list[str]:
    rows = RuleExecution.select().where(RuleExecution.trigger_rule_id == rule_id).order_by(RuleExecution.fired_at)
    return [str(r.triggering_event_id) for r in rows]


def test_a_process_whose_view_predates_another_process_firing_does_not_fire_past_the_limit(any_db):
    # Given a rule allowed once an hour, and two evaluator processes that both read its limits first
    rule_id, _ = _rule(max_triggers_per_hour=1)
    early, late, later = _events([START, START + timedelta(minutes=1), START + timedelta(minutes=2)])
    first, second = RuleCache(), RuleCache()
    evaluate([early], cache=first)
    # When the other process, whose view was read before that firing, evaluates later events
    second.rules()
    evaluate([late], cache=second)
    evaluate([later], cache=first)
    # Then the rule fired once: an older view only spares a rule the shortcut, never its limits
    assert _fired(rule_id) == [early]


def test_a_rule_at_its_limit_fires_again_once_its_firings_are_an_hour_old(any_db):
    # Given a rule allowed twice an hour that fired twice
    rule_id, _ = _rule(max_triggers_per_hour=2)
    ids = _events([START + timedelta(minutes=m) for m in (0, 1, 2, 61, 62)])
    cache = RuleCache()
    for event_id in ids[:3]:
        evaluate([event_id], cache=cache)
    assert _fired(rule_id) == ids[:2]
    # When events arrive more than an hour after each firing, judged by the same process's view
    for event_id in ids[3:]:
        evaluate([event_id], cache=cache)
    # Then it fires again, twice within its new hour
    assert _fired(rule_id) == ids[:2] + ids[3:]


def test_the_evaluator_reads_a_batch_as_the_api_shows_its_events(any_db):
    # Given a stored event with metadata and tags
    item = make_item(id=new_id(), source_type="webhook", received_at=START.timestamp(),
                     payload={"source": "t", "host": "h1", "title": "disk", "metadata": {"value": 97},
                              "tags": ["prod"]})  # fmt: skip
    [event_id] = store_batch([item], window_s=300).event_ids
    # When the evaluator reads it
    [event] = load_events([event_id])
    # Then its id, times and JSON fields read as the API writes them
    assert event["id"] == event_id
    assert event["received_at"] == "2026-11-24T08:00:00Z"
    assert event["metadata"] == {"value": 97} and event["tags"] == ["prod"]
    assert event["correlation_id"] is None and event["host"] == "h1"


@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(
    max_per_hour=st.integers(1, 3),
    cooldown=st.sampled_from([None, 1, 10]),
    gaps_s=st.lists(st.integers(1, 1200), min_size=1, max_size=30),
    batch=st.integers(1, 8),
)
def test_two_processes_taking_turns_fire_what_the_replay_fires_on_postgresql(pg_db, max_per_hour, cooldown, gaps_s,
                                                                            batch):  # fmt: skip
    for model in (RuleExecution, RuleMatch, TriggerRule, ProcessedEvent, RawEvent, EventFingerprint):
        model.delete().execute()
    limits = {"max_triggers_per_hour": max_per_hour, **({"cooldown_minutes": cooldown} if cooldown else {})}
    rule_id, spec = _rule(**limits)
    # Given matching events at generated times
    at, times = START, []
    for gap in gaps_s:
        at += timedelta(seconds=gap)
        times.append(at)
    ids = _events(times)
    # When two evaluator processes take the batches in turn, each with its own view of the limits
    caches = [RuleCache(), RuleCache()]
    for n, k in enumerate(range(0, len(ids), batch)):
        evaluate(ids[k : k + batch], cache=caches[n % 2])
    # Then they fired exactly what the replay fires
    replayed = replay(spec, start=START, end=at + timedelta(seconds=1))
    assert set(_fired(rule_id)) == {f["event_id"] for f in replayed["firings"]}

"""The live evaluator fires exactly what the replay (plain ``should_fire`` in event order) fires,
over generated limits, thresholds, event times and batch splits: its shortcuts change nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.events.envelope import make_item
from app.events.store import store_batch
from app.ids import new_id
from app.models import EventFingerprint, ProcessedEvent, RawEvent, RuleExecution, RuleMatch, TriggerRule
from app.rules.evaluation import RuleCache, columns_of, evaluate, replay
from app.rules.triggers import parse_trigger

START = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(
    max_per_hour=st.integers(1, 4),
    cooldown=st.sampled_from([None, 1, 10, 30]),
    threshold=st.sampled_from([None, (2, 5), (3, 10)]),
    gaps_s=st.lists(st.integers(1, 900), min_size=1, max_size=40),
    batch=st.integers(1, 12),
)
def test_live_firings_equal_the_replay(sqlite_db, max_per_hour, cooldown, threshold, gaps_s, batch):
    for model in (RuleExecution, RuleMatch, TriggerRule, ProcessedEvent, RawEvent, EventFingerprint):
        model.delete().execute()
    body = {"name": "r", "conditions": {"host": "h1"}, "max_triggers_per_hour": max_per_hour}
    if cooldown:
        body["cooldown_minutes"] = cooldown
    if threshold:
        body["threshold_count"], body["time_window_minutes"] = threshold
    spec = parse_trigger(body)
    rule_id = TriggerRule.create(**columns_of(spec)).id
    # Given matching events at generated times, stored in order
    at, ids = START, []
    for i, gap in enumerate(gaps_s):
        at += timedelta(seconds=gap)
        item = make_item(id=new_id(), source_type="webhook", received_at=at.timestamp(),
                         payload={"source": "t", "host": "h1", "title": f"event {i}"})  # fmt: skip
        ids += store_batch([item], window_s=300).event_ids
    # When the live evaluator sees them in batches
    cache = RuleCache()
    for k in range(0, len(ids), batch):
        evaluate(ids[k : k + batch], cache=cache)
    live = {str(r.triggering_event_id) for r in RuleExecution.select().where(RuleExecution.trigger_rule_id == rule_id)}
    # Then it fired exactly what the replay fires
    replayed = replay(spec, start=START, end=at + timedelta(seconds=1))
    assert live == {f["event_id"] for f in replayed["firings"]}
    assert live or threshold  # without a threshold the first event always fires

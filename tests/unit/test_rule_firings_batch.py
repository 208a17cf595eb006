"""A rule with loose limits fires for every matching event of a batch: its firings are stored at once, each
firing names the execution recorded for its own event, in event-time order, and a redelivery adds none
(both databases)."""

from __future__ import annotations

from app.events.envelope import make_item
from app.events.store import store_batch
from app.ids import new_id
from app.models import RuleExecution, TriggerRule
from app.rules.evaluation import RuleCache, columns_of, evaluate
from app.rules.triggers import parse_trigger


def test_every_matching_event_of_a_batch_fires_once_with_its_own_execution(any_db):
    rule_id = TriggerRule.create(**columns_of(parse_trigger({"name": "every", "conditions": {"host": "h1"},
                                                             "max_triggers_per_hour": 1000}))).id  # fmt: skip
    # Given five matching events (stored out of time order) and one that does not match
    items = [make_item(id=new_id(), source_type="webhook", received_at=1_795_420_800.0 + k,
                       payload={"source": "t", "host": "h1" if k != 3 else "h2", "title": f"e {new_id()}"})
             for k in (4, 0, 2, 5, 1, 3)]  # fmt: skip
    ids = store_batch(items, window_s=300).event_ids
    # When the batch is evaluated
    firings = evaluate(ids, cache=RuleCache())
    # Then each matching event fired the rule once, in event-time order, each firing naming its own execution
    stored = {str(r.triggering_event_id): r for r in RuleExecution.select()}
    by_time = [i["id"] for i in sorted(items, key=lambda i: i["received_at"]) if i["payload"]["host"] == "h1"]
    assert [f.event_id for f in firings] == by_time and set(stored) == set(by_time)
    for firing in firings:
        row = stored[firing.event_id]
        assert (firing.rule_id, firing.rule_execution_id) == (rule_id, row.id)
        assert row.execution_status == "pending" and row.started_at is not None and row.fired_at is not None
        assert row.execution_result == {"matches_in_window": 1, "rule": "every"}
    assert len({f.rule_execution_id for f in firings}) == 5
    # And a redelivered batch fires nothing more
    assert evaluate(ids, cache=RuleCache()) == [] and RuleExecution.select().count() == 5
    # And the rule's last firing is its latest event's
    assert TriggerRule.get_by_id(rule_id).last_fired_at == stored[by_time[-1]].fired_at

"""The ``decide`` message's wire format: the rule execution id travels as its one positional argument.

The actor's parameter is named for the id it carries (``rule_execution_id``); messages already in
the queue were sent positionally too, so a rename of the parameter leaves them valid.
"""

from __future__ import annotations

import dramatiq

from app.models import DecisionLog, RuleExecution
from tests.unit.test_llm import _firing


def test_a_firing_sent_to_decide_travels_positionally_and_is_decided(any_db, stub_broker):
    # Given a rule firing, sent on as the evaluator sends it
    from app.actors.decider import decide

    firing = _firing(any_db)
    message = decide.send(firing)
    # Then the message carries the id positionally, with no keyword a rename could break
    assert message.args == (firing,) and message.kwargs == {}
    queued = dramatiq.Message.decode(stub_broker.queues["decide"].get_nowait())
    assert list(queued.args) == [firing] and queued.kwargs == {}
    # When a worker runs the message as it arrived
    decide(*queued.args, **queued.kwargs)
    # Then the firing is decided once, by the policy (no LLM configured)
    decision = DecisionLog.get(DecisionLog.rule_execution_id == firing)
    assert decision.decided_by == "policy"
    assert RuleExecution.get_by_id(firing).execution_status == f"decided:{decision.decision_type}"

"""The ``evaluate`` actor: every active trigger rule against each batch of events, one firing per message to ``decide``."""

from __future__ import annotations

import logging
from functools import partial

import dramatiq

from ..agents import routing
from ..errors import InvalidMessage
from ..rules.evaluation import RuleCache, evaluate_batch
from ..timeutil import now
from .agents import AGENT_ACTORS
from .decider import decide

logger = logging.getLogger(__name__)

#: Compiled rules of this worker process, refreshed when rules change.
_rules = RuleCache()
#: The agents' routes, as this process last read them.
_routes = routing.RouteCache()


@dramatiq.actor(queue_name="evaluate", throws=(InvalidMessage,), time_limit=300_000)
def evaluate(event_ids: list[str]) -> None:
    """Record each rule that fires (``rules.rule_executions``, pending) and send it to the decider.

    A redelivered batch fires nothing twice (one firing per rule and event); a firing
    whose send to ``decide`` was lost is sent again on redelivery.
    """
    if not isinstance(event_ids, list) or not all(isinstance(i, str) for i in event_ids):
        raise InvalidMessage("an evaluate message carries a list of event ids")
    evaluated = evaluate_batch(event_ids, cache=_rules)
    for firing in evaluated.firings:
        logger.info(
            "Rule %r fired for event %r (rule execution %r).", firing.rule_id, firing.event_id, firing.rule_execution_id
        )
        decide.send(firing.rule_execution_id)
    # events routed to agents: one pending run per agent (app/agents/routing.py), matched on the rows the rules'
    # evaluation read (read here only when it read none: no rule and no silence)
    rows = evaluated.events if evaluated.events is not None else partial(routing.read_routable, event_ids)
    routing.route(rows, cache=_routes, now=now(),
                  send=lambda kind, name, trigger: AGENT_ACTORS[kind].send(name, trigger))  # fmt: skip

"""One run of an agent: read its configuration, let it look, hand on what it proposes and what it saw.

Called by the agent's actor (``app.actors.agents``) for each ``run`` message, scheduled by the
clock (:mod:`app.agents.schedule`) or sent for events routed to the agent. Proposals go through
:func:`app.agents.proposals.propose`; observations are published to ``normalize`` as generic
webhook items (``source`` ``agent:<name>``), exactly as the web tier publishes posted events.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from ..config import Settings
from ..db import in_transaction
from ..errors import InvalidInput, TransientError
from ..events.envelope import make_item
from ..ids import uuid7
from ..models import AgentConfig
from . import registry, routing
from .base import Agent, AgentAction, AgentEvent, implementation
from .proposals import propose

logger = logging.getLogger(__name__)

#: The most characters of an agent's error kept in its status.
MAX_ERROR_CHARS = 2000


@dataclass
class RunOutcome:
    """What a run did, or why it did not run."""

    #: Why it did not run: ``missing``, ``disabled``, ``stopped`` or ``unimplemented`` (None: it ran).
    skipped: str | None = None
    #: Executions to send to ``execute`` (queued ones; a duplicate proposal's is not sent again).
    executions: list[str] = field(default_factory=list)
    proposed: int = 0
    events: int = 0
    #: Proposals refused as invalid, with why (the run goes on with the others).
    invalid: list[str] = field(default_factory=list)
    error: str | None = None


def event_item(agent: str, event: AgentEvent, *, now: datetime) -> dict[str, Any]:
    """An observation as the raw item the web tier would publish for ``POST /api/v1/events/webhook``."""
    payload = {
        "source": f"agent:{agent}", "event_type": event.event_type, "severity": event.severity, "title": event.title,
        "host": event.resource, "service": event.service, "description": event.description or None,
        "metadata": {"agent": agent, **dict(event.data)}, "tags": list(event.tags),
    }  # fmt: skip
    return make_item(id=str(uuid7()), source_type="webhook", received_at=now.timestamp(), payload=payload,
                     source=f"agent:{agent}")  # fmt: skip


def _record(name: str, outcome: RunOutcome, now: datetime, trigger: Mapping[str, Any] | None) -> None:
    AgentConfig.update(
        last_run_at=now, last_error=outcome.error,
        last_result={"proposed": outcome.proposed, "executions": outcome.executions, "events": outcome.events,
                     "invalid": outcome.invalid, "trigger": dict(trigger or {"trigger": "schedule"})},
    ).where(AgentConfig.name == name).execute()  # fmt: skip


def run_agent(
    name: str, *, settings: Settings, publish: Callable[[list[dict[str, Any]]], None], agent: Agent | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC), trigger: Mapping[str, Any] | None = None,
) -> RunOutcome:  # fmt: skip
    """Run agent ``name`` once, if it is enabled and started.

    Parameters:
      publish: Publishes raw items durably to ``normalize`` (a :class:`app.publishing.Publisher`'s ``publish``).
      agent: The implementation (default: its kind's, :data:`app.agents.base.IMPLEMENTATIONS`).
      trigger: Why it runs (the message's trigger), kept with its last result.

    Returns:
      What it did; a failed run (the agent raised) is logged, kept in its status, and not retried.

    Raises:
      TransientError: the database or the broker is away (the message is retried).
    """
    row = in_transaction(lambda: AgentConfig.get_or_none(AgentConfig.name == name))
    if row is None:
        return RunOutcome(skipped="missing")
    state = registry.state_of(row)
    if state != "started":
        return RunOutcome(skipped=state)
    if row.route_pending_at is not None:  # this run takes in the routed events: later ones send the next
        in_transaction(lambda: routing.release(name))
    agent = agent or implementation(row.kind)
    if agent is None:
        logger.warning("Agent %r: no %s agent is implemented here; nothing runs.", name, row.kind)
        return RunOutcome(skipped="unimplemented")
    config = registry.settings_of(row)
    if trigger and trigger.get("trigger") == "events":
        config = replace(config, event_ids=tuple(str(i) for i in trigger.get("event_ids") or ()))
    outcome = RunOutcome()
    try:
        results = list(agent.run(config))
    except TransientError:
        raise
    except Exception as e:  # noqa: BLE001 - an agent's failure is its run's, shown in its status
        logger.error("Agent %r failed its run.", name, exc_info=True)
        outcome.error = f"{type(e).__name__}: {e}"[:MAX_ERROR_CHARS]
        in_transaction(lambda: _record(name, outcome, now(), trigger))
        return outcome
    items = []
    for result in results:
        if isinstance(result, AgentAction):
            try:
                proposal = propose(config, result, settings=settings, now=now())
            except InvalidInput as e:
                logger.error("Agent %r proposed an invalid %r: %s (%s).", name, result.type, e.message, e.field)
                outcome.invalid.append(f"{result.type}: {e.field}: {e.message}")
                continue
            outcome.proposed += 1
            if proposal.execution_id is not None and not proposal.duplicate:
                outcome.executions.append(proposal.execution_id)
        elif isinstance(result, AgentEvent):
            items.append(event_item(name, result, now=now()))
        else:
            outcome.invalid.append(f"not an AgentAction nor an AgentEvent: {type(result).__name__}")
    if items:
        publish(items)
        outcome.events = len(items)
    in_transaction(lambda: _record(name, outcome, now(), trigger))
    logger.info("Agent %r ran: %d proposals (%d executions), %d events, %d invalid.", name, outcome.proposed,
                len(outcome.executions), outcome.events, len(outcome.invalid))  # fmt: skip
    return outcome

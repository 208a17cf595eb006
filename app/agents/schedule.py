"""The agents' schedule, kept by the clock: each enabled, started agent is sent ``run`` every ``interval_seconds``.

:func:`due` claims the agents whose interval has passed by moving their ``last_scheduled_at``
forward in the same statement that finds them (a conditional UPDATE): two clocks running at once
send each run once. A stopped or disabled agent is not scheduled; started again, it runs at the
next sweep.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ..models import AgentConfig
from .base import RUNNABLE_KINDS


def due(now: datetime) -> list[tuple[str, str]]:
    """The ``(kind, name)`` of each agent to run now, marked as scheduled (call inside a transaction)."""
    found = []
    candidates = AgentConfig.select().where(
        AgentConfig.enabled == True, AgentConfig.stopped_at.is_null(), AgentConfig.kind.in_(RUNNABLE_KINDS)  # noqa: E712
    )
    for agent in candidates.order_by(AgentConfig.name):
        last = agent.last_scheduled_at
        if last is not None and last + timedelta(seconds=agent.interval_s) > now:
            continue
        same = AgentConfig.last_scheduled_at.is_null() if last is None else AgentConfig.last_scheduled_at == last
        claimed = AgentConfig.update(last_scheduled_at=now).where(AgentConfig.id == agent.id, same).execute()
        if claimed:
            found.append((agent.kind, agent.name))
    return found

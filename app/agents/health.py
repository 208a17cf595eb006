"""Agents' health: their processes heartbeat, the clock reports the ones that stopped.

Each process serving an agent kind (a worker consuming ``agent_<kind>``, and the clock for the
orchestrator) upserts its row of ``ops.agent_heartbeats`` every ``AGENT_HEARTBEAT_SECONDS``
(:func:`beat`). An agent is **up** when a process of its kind beat within
:data:`MISSED_BEATS` of its intervals. An enabled, started agent that is not up — and has been
expected to be for as long — is **down**: the clock pages it once (trigger ``agent_down``,
through the notification policies) and ``/metrics`` shows ``opsconductor_agent_up{agent} 0``
(:func:`check_down`). Its queue keeps its messages; a returning process takes them.

The functions here run inside a transaction and hold no state.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from peewee import EXCLUDED

from ..models import AgentConfig, AgentHeartbeat
from ..notifications import routing
from ..present import iso

logger = logging.getLogger(__name__)

#: Beats a process may miss before it counts as gone.
MISSED_BEATS = 3
#: Rows of processes not heard from for this long are deleted.
FORGET_AFTER = timedelta(days=1)


@dataclass(frozen=True, kw_only=True)
class Beater:
    """One process heartbeating for one agent kind, for its whole life."""

    kind: str
    hostname: str
    pid: int
    started_at: datetime

    @classmethod
    def of_this_process(cls, kind: str, *, started_at: datetime) -> Beater:
        return cls(kind=kind, hostname=socket.gethostname(), pid=os.getpid(), started_at=started_at)

    @property
    def process(self) -> str:
        return f"{self.hostname}:{self.pid}:{int(self.started_at.timestamp() * 1000)}:{self.kind}"


def beat(beater: Beater, *, at: datetime, interval_s: float) -> None:
    """Upsert the row of ``beater`` as of ``at``; forget processes silent for :data:`FORGET_AFTER`."""
    AgentHeartbeat.insert(
        process=beater.process, kind=beater.kind, hostname=beater.hostname, pid=beater.pid,
        started_at=beater.started_at, beat_at=at, interval_s=interval_s,
    ).on_conflict(
        conflict_target=[AgentHeartbeat.process],
        update={AgentHeartbeat.beat_at: EXCLUDED.beat_at, AgentHeartbeat.interval_s: EXCLUDED.interval_s},
    ).execute()  # fmt: skip
    AgentHeartbeat.delete().where(AgentHeartbeat.beat_at < at - FORGET_AFTER).execute()


def beat_all(beaters: list[Beater], *, at: datetime, interval_s: float) -> None:
    """:func:`beat` for each kind this process serves."""
    for beater in beaters:
        beat(beater, at=at, interval_s=interval_s)


def forget(beaters: list[Beater]) -> None:
    """The process stops serving these kinds (a clean shutdown): their rows go at once."""
    AgentHeartbeat.delete().where(AgentHeartbeat.process.in_([b.process for b in beaters])).execute()


def _live(beat_row: AgentHeartbeat, now: datetime) -> bool:
    return beat_row.beat_at > now - timedelta(seconds=beat_row.interval_s * MISSED_BEATS)


def processes(now: datetime) -> dict[str, list[dict[str, Any]]]:
    """The live processes of each kind."""
    found: dict[str, list[dict[str, Any]]] = {}
    for row in AgentHeartbeat.select().order_by(AgentHeartbeat.kind, AgentHeartbeat.process):
        if _live(row, now):
            found.setdefault(row.kind, []).append({
                "hostname": row.hostname, "pid": row.pid, "started_at": iso(row.started_at),
                "last_heartbeat_at": iso(row.beat_at),
            })  # fmt: skip
    return found


def _expected(agent: AgentConfig, interval_s: float, now: datetime) -> bool:
    """Whether the agent should be up by now: enabled, started, and given time for three beats."""
    return (
        agent.enabled and agent.stopped_at is None
        and agent.expected_since <= now - timedelta(seconds=interval_s * MISSED_BEATS)
    )  # fmt: skip


def health(now: datetime, *, interval_s: float) -> dict[str, dict[str, Any]]:
    """Each agent's health by name: ``up`` (a live process of its kind), ``down`` (expected and not up),
    its live processes, and since when it has been down."""
    live = processes(now)
    shown = {}
    for agent in AgentConfig.select().order_by(AgentConfig.name):
        up = bool(live.get(agent.kind))
        shown[agent.name] = {
            "up": up,
            "down": not up and _expected(agent, interval_s, now),
            "down_since": iso(agent.down_since),
            "processes": live.get(agent.kind, []),
        }
    return shown


def check_down(now: datetime, *, interval_s: float) -> list[str]:
    """Page each agent newly found down (once per outage), and clear those back up; return the names paged.

    Parameters:
      interval_s: ``AGENT_HEARTBEAT_SECONDS``: an agent enabled or started more recently than
        :data:`MISSED_BEATS` of it is not down yet.
    """
    paged = []
    state = health(now, interval_s=interval_s)
    for agent in AgentConfig.select().order_by(AgentConfig.name):
        seen = state[agent.name]
        if seen["down"] and agent.down_since is None:
            agent.down_since = now
            agent.save()
            routing.route(_page(agent, now, interval_s * MISSED_BEATS), now=now)
            logger.warning("Agent %r is down: no %s process has heartbeated for %g s.", agent.name, agent.kind,
                           interval_s * MISSED_BEATS)  # fmt: skip
            paged.append(agent.name)
        elif agent.down_since is not None and not seen["down"]:
            logger.info("Agent %r is back (down since %s).", agent.name, agent.down_since.isoformat())
            agent.down_since = None
            agent.save()
    return paged


def _page(agent: AgentConfig, now: datetime, silent_s: float) -> routing.Page:
    queue = f"agent_{agent.kind}" if agent.kind != "orchestrator" else "the clock process"
    return routing.Page(
        trigger="agent_down", subject=f"agent:{agent.name}", severity="high", services=(f"agent_{agent.kind}",),
        title=f"Agent down: {agent.name}",
        text=(f"No process serving agent {agent.name!r} ({agent.kind}) has heartbeated in the last "
              f"{silent_s:g} s (checked at {now.isoformat()}). Its schedule does not run; the messages of "
              f"{queue} wait for a process to return. Start one (Procfile: "
              f"{'clock' if agent.kind == 'orchestrator' else 'agent-' + agent.kind})."),
        details={"agent": agent.name, "type": agent.kind},
        links=({"label": "Agent status", "url": "/api/v1/agents/status"},),
    )  # fmt: skip


def up_by_agent(now: datetime) -> dict[str, bool]:
    """For ``/metrics``: whether each enabled, started agent is up."""
    live = processes(now)
    return {
        agent.name: bool(live.get(agent.kind))
        for agent in AgentConfig.select().where(AgentConfig.enabled == True, AgentConfig.stopped_at.is_null())  # noqa: E712
    }

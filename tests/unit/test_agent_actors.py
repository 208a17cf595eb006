"""The agents' actors on Dramatiq's stub broker: what a run sends on, and what a stopped agent's queue does."""

from __future__ import annotations

from datetime import UTC, datetime

import dramatiq
import pytest

from app.agents import registry
from app.agents.base import IMPLEMENTATIONS, AgentAction, AgentSettings
from app.db import in_transaction
from app.models import Execution


class Proposer:
    """A stand-in agent kind: proposes one change, low risk, to a host."""

    def run(self, config: AgentSettings):
        step = {"id": "resize", "type": "http", "method": "POST", "url": "http://127.0.0.1:9/resize"}
        return [AgentAction(type="rightsize", description="Resize", target_resources=("db-01",), steps=(step,),
                            purpose="cost", key="db-01")]  # fmt: skip

    def status(self, config: AgentSettings):
        return {"ready": True}


@pytest.fixture
def actors(stub_broker, sqlite_db, monkeypatch) -> dict[str, dramatiq.Actor]:
    import app.actors.agents as module

    for actor in module.AGENT_ACTORS.values():  # bound to whichever broker was global when first imported
        actor.broker = stub_broker
        stub_broker.declare_actor(actor)
    monkeypatch.setitem(IMPLEMENTATIONS, "cost", f"{__name__}:Proposer")
    now = datetime.now(UTC)
    in_transaction(lambda: registry.configure({"name": "costs", "kind": "cost", "enabled": True}, actor="a", now=now))
    return module.AGENT_ACTORS


def _messages(broker, queue: str) -> list[dramatiq.Message]:
    found = []
    while not broker.queues[queue].empty():
        found.append(dramatiq.Message.decode(broker.queues[queue].get_nowait()))
    return found


def test_a_run_proposes_and_sends_the_execution_to_the_executor(stub_broker, actors):
    # When the cost agent's actor takes a scheduled run
    actors["cost"].fn("costs", {"trigger": "schedule"})
    # Then its proposal is stored as an execution and sent to ``execute`` (after the commit)
    sent = _messages(stub_broker, "execute")
    assert len(sent) == 1
    row = in_transaction(lambda: Execution.get_by_id(sent[0].args[0]))
    assert row.requested_by == "agent:costs" and row.definition["target_resources"] == ["host:db-01"]


def test_a_stopped_agent_keeps_routed_work_waiting_and_drops_scheduled_runs(stub_broker, actors):
    # Given the agent stopped by an operator
    in_transaction(lambda: registry.set_running("costs", running=False, actor="a", now=datetime.now(UTC)))
    # When a scheduled run and events routed to it arrive on its queue
    actors["cost"].fn("costs", {"trigger": "schedule"})
    actors["cost"].fn("costs", {"trigger": "events", "event_ids": ["e1"]})
    # Then nothing ran, the scheduled run is gone, and the events' message waits (delayed) for a start
    assert _messages(stub_broker, "execute") == []
    delayed = _messages(stub_broker, "agent_cost.DQ")
    assert [list(m.args) for m in delayed] == [["costs", {"trigger": "events", "event_ids": ["e1"]}]]
    assert delayed[0].options["eta"] > 0


def test_the_clock_heartbeats_as_the_orchestrator_and_sends_each_due_agent_its_run(stub_broker, actors):
    from app import clock
    from app.agents import health
    from app.config import Settings
    from app.models import AgentHeartbeat

    # Given the clock process's identity as the orchestrator
    beater = health.Beater.of_this_process("orchestrator", started_at=datetime.now(UTC))
    # When it tends the agents twice in a row
    clock.tend_agents(Settings(), beater, interval_s=60)
    clock.tend_agents(Settings(), beater, interval_s=60)
    # Then the started cost agent got one scheduled run, and the orchestrator beats with the clock's interval
    assert [list(m.args) for m in _messages(stub_broker, "agent_cost")] == [["costs", {"trigger": "schedule"}]]
    row = in_transaction(lambda: AgentHeartbeat.get(AgentHeartbeat.kind == "orchestrator"))
    assert row.interval_s == 60 and row.pid == beater.pid

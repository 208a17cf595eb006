"""The agents' actors: one per kind, each on its own queue ``agent_<kind>`` (queue name = actor name).

A message is ``(name, trigger)``: run agent ``name`` once (:func:`app.agents.runner.run_agent`),
then send each execution it proposed to ``execute``. ``trigger`` says why: ``{"trigger":
"schedule"}`` from the clock, ``{"trigger": "operator", "by": ...}`` from ``POST
/api/v1/agents/{name}/run``, ``{"trigger": "events", "event_ids": [...]}`` for events routed to it.

While an operator has the agent stopped, its queue's messages are not worked: a scheduled run is
dropped (the clock sends none while it is stopped, and sends the next once it is started again),
any other message is put back with a delay of :data:`STOPPED_RECHECK_MS` until the agent is
started, so nothing routed to it is lost.

Each worker process consuming an agent queue heartbeats for that kind (:class:`AgentHeartbeats`),
which the clock reads to tell a live agent from a dead one (:mod:`app.agents.health`).
"""

from __future__ import annotations

import logging
import threading
from functools import partial
from typing import Any

import dramatiq

from ..agents import health
from ..agents.base import RUNNABLE_KINDS
from ..agents.runner import run_agent
from ..config import get_settings
from ..db import in_transaction, release_connection
from ..errors import InvalidMessage
from ..publishing import DirectPublisher
from ..timeutil import now
from .executor import execute

logger = logging.getLogger(__name__)

#: Delay before a message for a stopped agent is looked at again, in milliseconds.
STOPPED_RECHECK_MS = 60_000
#: An agent's run may take this long (a ``terraform plan`` of a large workspace), in milliseconds.
RUN_TIME_LIMIT_MS = 30 * 60_000


def _actor(kind: str) -> dramatiq.Actor[..., None]:
    name = f"agent_{kind}"

    def run(agent: str, trigger: dict[str, Any] | None = None) -> None:
        if not isinstance(agent, str) or not (trigger is None or isinstance(trigger, dict)):
            raise InvalidMessage(f"an {name} message carries an agent's name and a trigger object")
        trigger = trigger or {"trigger": "schedule"}
        outcome = run_agent(agent, settings=get_settings(), publish=DirectPublisher(dramatiq.get_broker()).publish,
                            trigger=trigger)  # fmt: skip
        if outcome.skipped == "stopped" and trigger.get("trigger") != "schedule":
            logger.info("Agent %r is stopped: its %s message waits %d s.", agent, trigger.get("trigger"),
                        STOPPED_RECHECK_MS // 1000)  # fmt: skip
            actor.send_with_options(args=(agent, trigger), delay=STOPPED_RECHECK_MS)
        elif outcome.skipped is not None:
            logger.info("Agent %r did not run: %s.", agent, outcome.skipped)
        for execution_id in outcome.executions:  # committed by propose(): the executor takes them from here
            execute.send(execution_id)

    run.__name__ = run.__qualname__ = name
    actor: dramatiq.Actor[..., None] = dramatiq.actor(
        actor_name=name, queue_name=name, throws=(InvalidMessage,), time_limit=RUN_TIME_LIMIT_MS
    )(run)
    return actor


#: The actor of each runnable kind, by kind.
AGENT_ACTORS = {kind: _actor(kind) for kind in RUNNABLE_KINDS}


class AgentHeartbeats(dramatiq.Middleware):
    """While a worker consumes agent queues, its process heartbeats for each of those kinds.

    Started after the worker booted (its queues are known then), stopped before it shuts down,
    when the rows are deleted: a clean stop is not taken for a crash. Beats never stop the worker:
    a database that does not answer is logged once, and tried again at the next beat.
    """

    def __init__(self, *, interval_s: float | None = None) -> None:
        #: Seconds between beats (None: ``AGENT_HEARTBEAT_SECONDS`` of the settings the worker booted with).
        self.interval_s = interval_s or 0.0
        self.configured = interval_s
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.beaters: list[health.Beater] = []

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self.interval_s = self.configured or get_settings().agent_heartbeat_s
        queues = worker.consumer_whitelist
        started = now()
        self.beaters = [health.Beater.of_this_process(kind, started_at=started) for kind in RUNNABLE_KINDS
                        if not queues or f"agent_{kind}" in queues]  # fmt: skip
        if self.beaters:
            self.stop.clear()
            self.thread = threading.Thread(target=self._run, name="agent-heartbeats", daemon=True)
            self.thread.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        if self.thread is None:
            return
        self.stop.set()
        self.thread.join(timeout=10)
        try:
            in_transaction(partial(health.forget, self.beaters))
        except Exception:  # noqa: BLE001 - shutting down: the rows go stale and are read as gone
            logger.warning("Could not remove this process's agent heartbeats.", exc_info=True)
        finally:
            release_connection()

    def _run(self) -> None:
        failing = False
        while True:
            try:
                in_transaction(partial(health.beat_all, self.beaters, at=now(), interval_s=self.interval_s))
                if failing:
                    logger.warning("Agent heartbeats reach the database again.")
                failing = False
            except Exception:  # noqa: BLE001 - a beat must never stop the worker
                if not failing:
                    logger.warning("Agent heartbeat failed; trying again every %g s.", self.interval_s, exc_info=True)
                failing = True
            finally:
                release_connection()
            if self.stop.wait(self.interval_s):
                return


dramatiq.get_broker().add_middleware(AgentHeartbeats())

"""The ``clock`` process (``opsconductor clock``): a periodic sweep.

Every interval, approvals past their timeout are rejected and executions or rollbacks whose
message was lost are sent again (:func:`app.executions.recovery.sweep`), and incidents idle for
``INCIDENT_AUTO_RESOLVE_MINUTES`` are resolved (:func:`app.incidents.lifecycle.auto_resolve`); every hour, events
older than ``RETENTION_DAYS`` are purged and expired console sessions deleted; notifications that are due are
sent to ``notify``; the clock
heartbeats as the orchestrator agent, pages agents that stopped heartbeating and sends each enabled,
started agent its scheduled run (:func:`tend_agents`). Import this module after :func:`app.runtime.bootstrap`:
it imports the actors, which Dramatiq binds to the broker set there.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from .actors.agents import AGENT_ACTORS
from .actors.executor import execute
from .actors.notifier import send_all
from .actors.rollbacker import rollback
from .agents import health as agent_health
from .agents.schedule import due as agents_due
from .config import Settings
from .db import in_transaction
from .errors import TransientError
from .events.retention import purge
from .executions.notices import page_approvers
from .executions.recovery import sweep
from .incidents.lifecycle import auto_resolve
from .models import Approval
from .models.console import delete_expired_sessions
from .notifications.delivery import due
from .notifications.routing import collected
from .timeutil import now

logger = logging.getLogger(__name__)

#: Seconds between two purges of events past their retention.
PURGE_EVERY_S = 3600


def run(settings: Settings, *, interval_s: int, once: bool = False) -> int:
    """Sweep every ``interval_s`` seconds until the process is stopped, or once when ``once``.

    A database that does not answer skips a sweep (logged); the next one tries again.
    """
    logger.info("Clock started: sweeping every %d s.", interval_s)
    next_purge = 0.0
    # The clock is the orchestrator's process: it heartbeats as the orchestrator agent.
    beater = agent_health.Beater.of_this_process("orchestrator", started_at=now())
    while True:
        try:
            if time.monotonic() >= next_purge:
                if settings.retention_days:
                    purge(before=now() - timedelta(days=settings.retention_days))
                prune_sessions()
                next_purge = time.monotonic() + PURGE_EVERY_S
            resend_and_expire()
            # Incidents with no new event for INCIDENT_AUTO_RESOLVE_MINUTES are resolved (0: never).
            auto_resolve(idle_minutes=settings.incident_auto_resolve_minutes)
            send_notifications(settings)
            tend_agents(settings, beater, interval_s=interval_s)
        except TransientError as e:
            logger.warning("Clock sweep failed (%s); trying again next time.", e)
        if once:
            return 0
        time.sleep(interval_s)


def prune_sessions() -> None:
    """Delete the console sessions past their expiry (sign-in deletes them too, but only when someone signs in)."""
    pruned = in_transaction(lambda: delete_expired_sessions(now()))
    if pruned:
        logger.info("Clock: deleted %d expired console sessions.", pruned)


def resend_and_expire() -> None:
    """One sweep: overdue approvals expired, lost executions and rollbacks sent again."""
    found = in_transaction(sweep)
    for execution_id in found.execute:
        execute.send(execution_id)
    for execution_id in found.rollback:
        rollback.send(execution_id)
    if found.execute or found.rollback or found.expired:
        logger.warning("Clock: resent %d executions, %d rollbacks; expired %d approvals.",
                       len(found.execute), len(found.rollback), len(found.expired))  # fmt: skip


def tend_agents(settings: Settings, beater: agent_health.Beater, *, interval_s: float | None = None) -> None:
    """Heartbeat as the orchestrator, page the agents found down, send each due agent its scheduled ``run``.

    Parameters:
      interval_s: Seconds until this process beats again (default ``AGENT_HEARTBEAT_SECONDS``; the
        clock's own sweep interval when it is longer, so a slow clock does not look dead).
    """
    at = now()
    every = max(settings.agent_heartbeat_s, interval_s or 0.0)

    def tend() -> tuple[list[str], list[tuple[str, str]]]:
        agent_health.beat(beater, at=at, interval_s=every)
        return agent_health.check_down(at, interval_s=settings.agent_heartbeat_s), agents_due(at)

    with collected() as paged:
        _down, runs = in_transaction(tend)
    send_all(paged)
    for kind, name in runs:
        AGENT_ACTORS[kind].send(name, {"trigger": "schedule"})
    if runs:
        logger.info("Clock: sent %d scheduled agent runs.", len(runs))


#: Approvers not paged this long after their request (the executor stopped in between) are paged by the clock.
APPROVAL_PAGE_GRACE = timedelta(minutes=1)


def send_notifications(settings: Settings) -> None:
    """Page approval requests the executor did not, and send the notifications that are due.

    Due: a lost ``notify`` message, a retry's backoff over, quiet hours ended.
    """
    at = now()

    def find() -> list[int]:
        unpaged = Approval.select(Approval.id).where(
            Approval.status == "pending", Approval.notified_at.is_null(), Approval.created_at <= at - APPROVAL_PAGE_GRACE
        )
        for approval in unpaged:
            page_approvers(approval.id, settings=settings, now=at)
        return due(now=at)

    ids = in_transaction(find)
    send_all(ids)
    if ids:
        logger.info("Clock: sent %d due notifications to notify.", len(ids))

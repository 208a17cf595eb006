"""Resource leases on PostgreSQL: executions targeting one resource never act at once.

Real runners (``app.executions.runner.run``) on real connections — threads of this process and a
child process killed mid-step — against a local HTTP target that records when each step arrives.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from datetime import UTC, datetime, timedelta

import pytest

from app.config import Settings
from app.db import in_transaction, init_database
from app.decisions import risk
from app.executions.rollback import WAITING, run_rollback
from app.executions.runner import run
from app.executions.store import create_execution, snapshot
from app.ids import uuid7
from app.models import (
    AuditLog,
    Execution,
    ExecutionLog,
    ExecutionStep,
    ProcessedEvent,
    ResourceLease,
    ResourceLeaseWait,
)
from tests.processes import wait_for
from tests.targets import http_target

SETTINGS = Settings(lease_retry_s=1, lease_max_wait_minutes=10)


def _execution(url: str, *, resource: str = "k8s:shop/deployment/web", purpose: str | None = None) -> str:
    """A queued execution with one remediation step (an HTTP call) that declares its target."""
    action = {"id": "change", "name": "change", "type": "remediation", "http": {"method": "POST", "url": url}}
    assessment = risk.assess(action, risk.Context(system_criticality="low"))
    definition = {**snapshot({"name": "agent change"}, [action], [assessment], set()), "target_resources": [resource]}
    if purpose:
        definition["purpose"] = purpose

    def create() -> str:
        return str(create_execution(definition=definition, requested_by="test", decision_id=None).id)

    return in_transaction(create)


def _status(execution_id: str) -> str:
    return in_transaction(lambda: Execution.get_by_id(execution_id).status)


def test_two_executions_targeting_one_resource_never_act_at_once_and_the_loser_waits(pg_db, pg_url):
    # Given a target whose answer to the first execution's step takes a second
    with http_target(delay_s={"/slow": 1.0}) as target:
        first = _execution(f"{target.url}/slow/first")
        second = _execution(f"{target.url}/slow/second")
        results: dict[str, object] = {}

        def runner(execution_id: str) -> None:
            init_database(pg_url, application_name="opsconductor-tests", max_connections=4)
            results[execution_id] = run(execution_id, settings=SETTINGS)

        # When both run at the same moment, each on its own thread and connection
        threads = [threading.Thread(target=runner, args=(e,)) for e in (first, second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        # Then exactly one ran its step; the other was told to wait and ask again, and logged why
        ran = [e for e in (first, second) if results[e].status == "completed"]  # type: ignore[attr-defined]
        waited = [e for e in (first, second) if results[e].wait_s is not None]  # type: ignore[attr-defined]
        assert len(ran) == 1 and len(waited) == 1, results
        assert len(target.requests) == 1
        assert _status(waited[0]) == "queued"
        logs = in_transaction(lambda: [r.message for r in ExecutionLog.select().where(ExecutionLog.execution_id == waited[0])])
        assert any("Waiting for a resource: k8s:shop/deployment/web held by execution " + ran[0] in m for m in logs), logs
        # When the loser asks again, the holder having completed
        again = run(waited[0], settings=SETTINGS)
        # Then it runs: the resource is free, and the two steps never overlapped
        assert again.status == "completed"
        first_at, second_at = sorted(r["at"] for r in target.requests)
        assert second_at - first_at >= 1.0
        assert in_transaction(lambda: ResourceLeaseWait.select().count()) == 0


def test_a_free_resource_goes_to_the_highest_priority_waiting_then_the_oldest(pg_db):
    # Given a cost change holding a node, a drift fix and an incident response waiting for it (in that order)
    with http_target(delay_s={"/hold": 2.0}) as target:
        holder = _execution(f"{target.url}/hold", resource="host:db-01", purpose="cost")
        drift = _execution(f"{target.url}/drift", resource="host:db-01", purpose="drift")
        incident = _execution(f"{target.url}/incident", resource="host:db-01", purpose="incident")
        done = threading.Event()
        holding = threading.Thread(target=lambda: (run(holder, settings=SETTINGS), done.set()))
        holding.start()
        wait_for(lambda: target.requests, message="the holder's step to start")
        assert run(drift, settings=SETTINGS).wait_s is not None
        assert run(incident, settings=SETTINGS).wait_s is not None
        holding.join(30)
        assert done.is_set() and _status(holder) == "completed"
        # When the drift fix, waiting longer but of lower priority, asks first after the holder finished
        drift_again = run(drift, settings=SETTINGS)
        # Then it still waits: the incident response goes first
        assert drift_again.wait_s is not None and _status(drift) == "queued"
        logs = in_transaction(lambda: [r.message for r in ExecutionLog.select().where(ExecutionLog.execution_id == drift)])
        assert any(f"promised first to execution {incident} (incident response, priority 4)" in m for m in logs), logs
        # When the incident response asks, it runs; then the drift fix does
        assert run(incident, settings=SETTINGS).status == "completed"
        assert run(drift, settings=SETTINGS).status == "completed"
        assert [r["path"] for r in target.requests] == ["/hold", "/incident", "/drift"]


def test_a_lower_priority_waiter_is_cancelled_with_the_reason_when_a_higher_priority_holds_the_resource_long(pg_db):
    # Given an incident response holding a workload (its worker's lease current) and a cost change waiting for it
    with http_target() as target:
        holder = _execution(f"{target.url}/incident", resource="k8s:shop/deployment/api", purpose="incident")
        cost = _execution(f"{target.url}/cost", resource="k8s:shop/deployment/api", purpose="cost")
        start = datetime.now(UTC)

        def hold(until: datetime) -> None:
            Execution.update(status="running", started_at=start, heartbeat_at=until).where(Execution.id == holder).execute()
            ResourceLease.create(resource="k8s:shop/deployment/api", execution_id=holder, priority=4, purpose="incident",
                                 acquired_at=start)  # fmt: skip

        in_transaction(lambda: hold(start + timedelta(hours=1)))
        assert run(cost, settings=SETTINGS, now=lambda: start).wait_s is not None
        # When it asks again past LEASE_MAX_WAIT_MINUTES, the holder still running
        late = start + timedelta(minutes=SETTINGS.lease_max_wait_minutes, seconds=1)
        result = run(cost, settings=SETTINGS, now=lambda: late)
        # Then it is cancelled, its step never ran, and the reason names the resource and the holder (audited)
        assert result.status == "cancelled" and not target.requests
        row = in_transaction(lambda: Execution.get_by_id(cost))
        assert row.status == "cancelled"
        assert f"k8s:shop/deployment/api held by execution {holder} (incident response, priority 4)" in row.error_message
        steps = in_transaction(lambda: [s.status for s in ExecutionStep.select().where(ExecutionStep.execution_id == cost)])
        assert steps == ["cancelled"]
        audited = in_transaction(lambda: AuditLog.get(AuditLog.subject == f"execution:{cost}",
                                                      AuditLog.action == "execution.cancelled"))  # fmt: skip
        assert audited.details["held_by"] == [holder] and audited.actor == "executor"


def _run_in_child(pg_url: str, execution_id: str) -> None:
    """A worker process: runs the execution (its step hangs until the process is killed)."""
    init_database(pg_url, application_name="opsconductor-tests-child", max_connections=2)
    run(execution_id, settings=SETTINGS)


def test_the_lease_of_a_killed_worker_expires_and_the_next_execution_takes_the_resource(pg_db, pg_url):
    # Given a worker process running a step on a host, its target never answering
    with http_target(delay_s={"/hang": 120.0}) as target:
        victim = _execution(f"{target.url}/hang", resource="web-01")
        other = _execution(f"{target.url}/next", resource="host:web-01")
        child = multiprocessing.get_context("spawn").Process(target=_run_in_child, args=(pg_url, victim))
        child.start()
        try:
            wait_for(lambda: target.requests, timeout=30, message="the worker's step to reach the target")
            # And another execution on the same host, told to wait while the worker lives
            assert run(other, settings=SETTINGS).wait_s is not None
            # When the worker is killed mid-step (no clean shutdown, no release)
            os.kill(child.pid, signal.SIGKILL)
            child.join(10)
        finally:
            if child.is_alive():
                child.kill()
        held = in_transaction(lambda: ResourceLease.get_by_id("host:web-01"))
        assert str(held.execution_id) == victim
        # Then once the dead worker's lease has run out, the other execution takes the host and runs
        after = in_transaction(lambda: Execution.get_by_id(victim).heartbeat_at) + timedelta(seconds=1)
        result = run(other, settings=SETTINGS, now=lambda: after)
        assert result.status == "completed"
        assert [r["path"] for r in target.requests] == ["/hang", "/next"]
        assert str(in_transaction(lambda: ResourceLease.get_by_id("host:web-01")).execution_id) == other


def _playbook_on_host(url: str, host: str) -> str:
    """A rule firing's execution: a remediation for an event of ``host``, declaring no target."""
    event = ProcessedEvent.create(id=uuid7(), source_type="webhook", event_type="threshold_breach", severity="high",
                                  source_host=host, title="CPU high", occurred_at=datetime.now(UTC), fingerprint="f")  # fmt: skip
    action = {"id": "restart", "type": "remediation", "http": {"method": "POST", "url": url}}
    assessment = risk.assess(action, risk.Context(system_criticality="low"))
    return str(create_execution(definition=snapshot({"name": "restart"}, [action], [assessment], set()),
                                requested_by="decider", decision_id=None, event_id=event.id).id)  # fmt: skip


@pytest.mark.parametrize("target_kind", ["declared", "incident host"])
def test_a_playbook_that_only_diagnoses_takes_no_lease_and_one_that_remediates_leases_its_hosts(pg_db, target_kind):
    # Given a diagnostic-only execution and a remediation on a host (declared, or the event's host)
    with http_target() as target:
        diagnose = {"id": "look", "type": "diagnostic", "http": {"method": "GET", "url": f"{target.url}/look"}}
        assessment = risk.assess(diagnose, risk.Context(system_criticality="low"))

        def create() -> str:
            return str(create_execution(definition=snapshot({"name": "look"}, [diagnose], [assessment], set()),
                                        requested_by="test", decision_id=None).id)  # fmt: skip

        looking = in_transaction(create)
        if target_kind == "declared":
            changing = _execution(f"{target.url}/change", resource="web-07")
        else:
            changing = in_transaction(lambda: _playbook_on_host(f"{target.url}/change", "web-07"))
        # When both run
        assert run(looking, settings=SETTINGS).status == "completed"
        assert run(changing, settings=SETTINGS).status == "completed"
        # Then only the remediation took a lease, on the host
        leases = in_transaction(lambda: {(r.resource, str(r.execution_id)) for r in ResourceLease.select()})
        assert leases == {("host:web-07", changing)}


def test_a_failed_execution_keeps_its_resource_for_its_rollback(pg_db):
    # Given an execution whose step failed on a host (its rollback not started yet)
    with http_target(responses={"/broken": (500, {"error": "boom"})}) as target:
        failing = _execution(f"{target.url}/broken", resource="host:app-01")
        result = run(failing, settings=SETTINGS)
        assert result.status == "failed" and result.rollback
        other = _execution(f"{target.url}/other", resource="host:app-01")
        # When another execution claims the host at once, and again once the grace for the rollback is over
        at_once = run(other, settings=SETTINGS)
        failed_at = in_transaction(lambda: Execution.get_by_id(failing).completed_at)
        later = run(other, settings=SETTINGS, now=lambda: failed_at + timedelta(seconds=31))
        # Then it waits for the rollback first, and runs after
        assert at_once.wait_s is not None and later.status == "completed"


def test_a_rollback_waits_while_another_execution_acts_on_its_resource(pg_db):
    # Given a completed change on a host, with its compensating action
    with http_target(delay_s={"/slow": 1.5}) as target:
        change = {"id": "change", "type": "remediation", "http": {"method": "POST", "url": f"{target.url}/change"},
                  "rollback": {"id": "undo", "http": {"method": "POST", "url": f"{target.url}/undo"}}}  # fmt: skip
        assessment = risk.assess(change, risk.Context(system_criticality="low"))
        definition = {**snapshot({"name": "change"}, [change], [assessment], set()), "target_resources": ["app-02"]}
        done = in_transaction(lambda: str(create_execution(definition=definition, requested_by="test", decision_id=None).id))
        assert run(done, settings=SETTINGS).status == "completed"
        # And another execution acting on the host right now (its step under way)
        other = _execution(f"{target.url}/slow", resource="host:app-02")
        acting = threading.Thread(target=lambda: run(other, settings=SETTINGS))
        acting.start()
        wait_for(lambda: len(target.requests) == 2, message="the other execution's step to start")
        # When an operator rolls the first back meanwhile
        while_held = run_rollback(done, settings=SETTINGS)
        # Then the rollback waits: nothing is undone while the other acts, and the wait is logged
        assert while_held == WAITING and _status(done) == "completed"
        assert [r["path"] for r in target.requests] == ["/change", "/slow"]
        logs = in_transaction(lambda: [r.message for r in ExecutionLog.select().where(ExecutionLog.execution_id == done)])
        assert any(f"host:app-02 held by execution {other}" in m for m in logs), logs
        # And once the other has finished, the rollback runs, holding the host while it does
        acting.join(30)
        assert _status(other) == "completed"
        assert run_rollback(done, settings=SETTINGS) == "rolled_back"
        assert [r["path"] for r in target.requests] == ["/change", "/slow", "/undo"]
        assert str(in_transaction(lambda: ResourceLease.get_by_id("host:app-02")).execution_id) == done

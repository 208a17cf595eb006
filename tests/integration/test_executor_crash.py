"""A crashed executor's execution is never silently stuck: after a kill -9 mid-step, the next
worker resumes an idempotent step and fails a non-idempotent one ("effect unknown")."""

from __future__ import annotations

import signal

from dramatiq import Message
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from app.decisions import risk
from app.executions.store import create_execution, snapshot
from app.models import Execution, ExecutionStep
from tests.processes import start_worker, wait_for
from tests.targets import http_target


def _execution(url: str, *, idempotent: bool) -> str:
    action = {"id": "call", "type": "diagnostic", "idempotent": idempotent, "http": {"method": "POST", "url": url}}
    assessment = risk.assess(action, risk.Context(system_criticality="low"))
    row = create_execution(definition=snapshot({"name": "crash"}, [action], [assessment], set()),
                           requested_by="test", decision_id=None)  # fmt: skip
    return str(row.id)


def test_a_killed_executor_leaves_nothing_stuck(stack_env, rabbitmq_url):
    with http_target(delay_s={"/crash/": 6.0}) as target:
        resumable = _execution(f"{target.url}/crash/idempotent", idempotent=True)
        unsafe = _execution(f"{target.url}/crash/once", idempotent=False)
        # Given an executor in the middle of both steps
        first = start_worker(stack_env, queues=("execute", "rollback"), threads=10, gevent=True)
        broker = RabbitmqBroker(url=rabbitmq_url, confirm_delivery=True)
        for execution_id in (resumable, unsafe):
            broker.enqueue(
                Message(queue_name="execute", actor_name="execute", args=(execution_id,), kwargs={}, options={})
            )
        broker.close()
        target.wait_for(2, timeout_s=30)
        # When it is killed (no cleanup at all) and another executor starts
        first.signal(signal.SIGKILL)
        second = start_worker(stack_env, queues=("execute", "rollback"), threads=10, gevent=True)
        try:
            # Then once the dead worker's lease runs out, the idempotent step runs again and completes,
            # and the other is failed rather than repeated
            def settled():
                rows = {str(r.id): r.status for r in Execution.select().where(Execution.id.in_([resumable, unsafe]))}
                return rows if rows[resumable] == "completed" and rows[unsafe] == "failed" else None

            wait_for(settled, timeout=120, interval=1, message="both executions to settle after the crash")
        finally:
            second.stop()
    paths = [r["path"] for r in target.requests]
    assert paths.count("/crash/idempotent") == 2 and paths.count("/crash/once") == 1
    step = ExecutionStep.get(ExecutionStep.execution_id == unsafe)
    assert step.status == "failed" and "effect is unknown" in step.error_message

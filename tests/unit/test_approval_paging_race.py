"""An approval given while the executor pages its approvers stays approved (PostgreSQL, two sessions).

The executor pages the approvers right after it committed the request, so a quick operator answers
while the paging transaction is still open. That transaction once saved the whole approval it had
read, writing ``pending`` back over the answer: the execution then asked again and timed out.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from app.config import Settings, set_settings
from app.db import database, in_transaction, release_connection
from app.executions import approvals, notices
from app.ids import uuid7
from app.models import Approval, Execution
from tests.processes import wait_for


def _in_thread(fn: Callable[[], object], done: list[object]) -> threading.Thread:
    def work() -> None:
        try:
            done.append(in_transaction(fn))
        except Exception as e:  # the test asserts on it
            done.append(e)
        finally:
            release_connection()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


def _waiting_on_a_lock() -> bool:
    cursor = database.execute_sql(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    return cursor.fetchone()[0] > 0


def test_an_answer_while_the_approvers_are_paged_is_kept(pg_db, monkeypatch):
    settings = Settings(public_url="https://ops.example.com")
    set_settings(settings)
    execution = Execution.create(id=uuid7(), definition={"actions": []}, status="awaiting_approval",
                                 requested_by="decider")  # fmt: skip
    approval = Approval.create(execution_id=execution.id, requested_by="decider", approvers=["operator", "admin"],
                               reason="restart: medium risk", risk_level="medium", risk_score=0.5,
                               requested_actions=[{"action_id": "restart", "risk_level": "medium"}],
                               timeout_minutes=30, expires_at=datetime.now(UTC) + timedelta(minutes=30))  # fmt: skip
    # Given the executor paging the approvers, held inside its transaction
    paging, release = threading.Event(), threading.Event()
    route = notices.routing.route

    def held_route(page, **kwargs):
        paging.set()
        release.wait(20)
        return route(page, **kwargs)

    monkeypatch.setattr(notices.routing, "route", held_route)
    paged: list[object] = []
    pager = _in_thread(lambda: notices.page_approvers(approval.id, settings=settings), paged)
    assert paging.wait(20)
    # When an operator approves meanwhile (it waits for the execution's lock, or, unfixed, commits at once)
    answered: list[object] = []
    answer = _in_thread(lambda: approvals.answer(str(execution.id), approve=True, actor=f"key:2:bob-{uuid.uuid4().hex[:4]}",
                                                 role="operator"), answered)  # fmt: skip
    in_transaction(lambda: wait_for(lambda: answered or _waiting_on_a_lock(), message="the answer to commit or wait"))
    release.set()
    pager.join(20)
    answer.join(20)
    # Then the answer stands and the request was paged once
    assert not any(isinstance(r, Exception) for r in paged + answered), (paged, answered)
    stored = in_transaction(lambda: Approval.get_by_id(approval.id))
    assert stored.status == "approved" and stored.decided_by.startswith("key:2:bob")
    assert stored.notified_at is not None
    assert in_transaction(lambda: Execution.get_by_id(execution.id).status) == "queued"

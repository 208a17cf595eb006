"""Approval tokens and who may approve: single use, bound to the decision, the approved actions,
the approver and the request's expiry; two-person rule by person; authors do not approve their
own rules' runs. On both databases, with real rows (the concurrency test on PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time

from app.config import Settings
from app.db import in_transaction, release_connection
from app.errors import ActionNotAllowed, Conflict
from app.executions import approvals, control
from app.executions.runner import run
from app.models import (
    ApiKey,
    Approval,
    AuditLog,
    DecisionLog,
    Execution,
    ResponseTemplateVersion,
)
from tests.approvals import decision as stored_decision
from tests.approvals import operator, race

#: A remediation needing an approval, and a critical one that needs its own.
ACTIONS = [
    {"id": "restart", "type": "remediation", "approval_required": True,
     "http": {"method": "POST", "url": "http://127.0.0.1:9/restart"}},
    {"id": "wipe", "type": "remediation", "approval_required": True, "risk_level": "critical",
     "http": {"method": "POST", "url": "http://127.0.0.1:9/wipe"}},
]  # fmt: skip


@pytest.fixture
def settings():
    return Settings(approval_timeout_minutes=30, autonomy_mode="auto")


@pytest.fixture
def people(any_db):
    """Keys as the web tier names them: alice (two keys), bob, carol; ``actor`` strings by person."""

    return {"alice": operator("alice-laptop", person="alice"), "alice-phone": operator("alice-phone", person="alice"),
            "bob": operator("bob", person="bob"), "carol": operator("carol", person="carol")}  # fmt: skip


def decision(*, author: str | None = None) -> int:
    """A decision on an event whose rule and template ``author`` wrote."""
    return stored_decision(ACTIONS, author=author)


def approved_token(decision_id: int, settings: Settings, *, requester: str, approver: str,
                   action_ids: list[str] | None = None) -> str:  # fmt: skip
    """Request an execution of ``action_ids``, let the runner ask for approval, approve it: the token."""
    body = {"decision_id": decision_id, **({"action_ids": action_ids} if action_ids else {})}
    first = control.request_execution(body, settings=settings, actor=requester)
    assert run(str(first.id), settings=settings).status == "awaiting_approval"
    return approvals.answer(str(first.id), approve=True, actor=approver, role="operator")["approval_token"]


def execute(decision_id: int, token: str, settings: Settings, *, actor: str, action_ids: list[str]) -> Execution:
    body = {"decision_id": decision_id, "approval_token": token, "action_ids": action_ids}
    return control.request_execution(body, settings=settings, actor=actor)


def test_an_approval_token_is_used_up_by_one_execution(people, settings):
    # Given alice's request for restart, approved by bob
    decision_id = decision()
    token = approved_token(decision_id, settings, requester=people["alice"], approver=people["bob"],
                           action_ids=["restart"])  # fmt: skip
    # When alice runs restart again with the token, it is pre-approved
    second = execute(decision_id, token, settings, actor=people["alice"], action_ids=["restart"])
    assert Approval.get(Approval.execution_id == second.id).status == "approved"
    # Then a second use of the same token is refused, and no third execution exists
    with pytest.raises(Conflict, match="used already"):
        execute(decision_id, token, settings, actor=people["alice"], action_ids=["restart"])
    assert Execution.select().where(Execution.decision_id == decision_id).count() == 2
    used = Approval.get(Approval.token_hash.is_null(False))
    assert used.token_used_for == second.id and used.token_used_by == people["alice"]
    assert AuditLog.select().where(AuditLog.action == "approval.token_used").count() == 1


def test_a_token_for_restart_does_not_approve_wipe(people, settings):
    # Given a token from an approval of restart only
    decision_id = decision()
    token = approved_token(decision_id, settings, requester=people["alice"], approver=people["bob"],
                           action_ids=["restart"])  # fmt: skip
    # When alice asks for restart and wipe with it
    with pytest.raises(ActionNotAllowed, match=r"\['wipe'\] need their own approval"):
        execute(decision_id, token, settings, actor=people["alice"], action_ids=["restart", "wipe"])
    # Then nothing was created and the token is still unused: restart alone may still use it
    assert Execution.select().where(Execution.decision_id == decision_id).count() == 1
    again = execute(decision_id, token, settings, actor=people["alice"], action_ids=["restart"])
    assert [a["id"] for a in again.definition["actions"]] == ["restart"]


def test_a_token_expires_with_its_request(people, settings):
    decision_id = decision()
    token = approved_token(decision_id, settings, requester=people["alice"], approver=people["bob"])
    # When the request's 30 minutes have passed
    with freeze_time(datetime.now(UTC) + timedelta(minutes=31)):
        with pytest.raises(ActionNotAllowed, match="expired"):
            execute(decision_id, token, settings, actor=people["alice"], action_ids=["restart"])
    assert Execution.select().where(Execution.decision_id == decision_id).count() == 1


def test_a_token_of_another_decision_is_refused(people, settings):
    first, other = decision(), decision()
    token = approved_token(first, settings, requester=people["alice"], approver=people["bob"])
    with pytest.raises(ActionNotAllowed, match="another decision"):
        execute(other, token, settings, actor=people["alice"], action_ids=["restart"])


def test_the_approver_cannot_use_their_own_token(people, settings):
    # Given bob approved alice's request (the issue: the approver's key then ran the actions)
    decision_id = decision()
    token = approved_token(decision_id, settings, requester=people["alice"], approver=people["bob"])
    # When bob, or bob's person under any key, redeems it: refused
    with pytest.raises(ActionNotAllowed, match="'bob' gave this approval"):
        execute(decision_id, token, settings, actor=people["bob"], action_ids=["restart"])


def test_a_token_of_a_revoked_approver_is_refused(people, settings):
    decision_id = decision()
    token = approved_token(decision_id, settings, requester=people["alice"], approver=people["bob"])
    ApiKey.update(revoked_at=datetime.now(UTC)).where(ApiKey.name == "bob").execute()
    with pytest.raises(ActionNotAllowed, match="revoked"):
        execute(decision_id, token, settings, actor=people["alice"], action_ids=["restart"])


def test_two_keys_of_one_person_cannot_approve_each_others_requests(people, settings):
    # Given alice's request, made with her laptop's key
    decision_id = decision()
    first = control.request_execution({"decision_id": decision_id}, settings=settings, actor=people["alice"])
    run(str(first.id), settings=settings)
    # When her phone's key approves it: refused, by person
    with pytest.raises(ActionNotAllowed, match="'alice' requested this execution"):
        approvals.answer(str(first.id), approve=True, actor=people["alice-phone"], role="operator")
    # Then another person may, and the audit row names the person
    approvals.answer(str(first.id), approve=True, actor=people["carol"], role="operator")
    audited = AuditLog.get(AuditLog.action == "approval.approved")
    assert audited.person == "carol" and audited.details["requested_by"] == "alice"
    approval = Approval.get(Approval.execution_id == first.id)
    assert (approval.requested_person, approval.decided_person) == ("alice", "carol")
    # And any audit row written by a key's actor records its person
    AuditLog.create(actor=people["alice-phone"], action="test.touched")
    assert AuditLog.get(AuditLog.action == "test.touched").person == "alice"


def test_the_author_of_the_rule_and_template_cannot_approve_its_runs(people, settings):
    # Given a decision on carol's rule and template, requested by alice
    decision_id = decision(author="carol")
    first = control.request_execution({"decision_id": decision_id}, settings=settings, actor=people["alice"])
    run(str(first.id), settings=settings)
    # When carol approves: refused
    with pytest.raises(ActionNotAllowed, match="'carol' wrote the rule or template"):
        approvals.answer(str(first.id), approve=True, actor=people["carol"], role="operator")
    # Then unless the policy allows authors (APPROVAL_ALLOW_AUTHOR=true)
    answered = approvals.answer(str(first.id), approve=True, actor=people["carol"], role="operator", allow_author=True)
    assert answered["status"] == "approved"


def test_a_template_versions_author_cannot_approve_either(people, settings):
    decision_id = decision()
    row = DecisionLog.get_by_id(decision_id)
    ResponseTemplateVersion.update(created_by=people["bob"]).where(
        ResponseTemplateVersion.template_id == row.response_template_id
    ).execute()
    first = control.request_execution({"decision_id": decision_id}, settings=settings, actor=people["alice"])
    run(str(first.id), settings=settings)
    with pytest.raises(ActionNotAllowed, match="'bob' wrote"):
        approvals.answer(str(first.id), approve=True, actor=people["bob"], role="operator")


def test_two_concurrent_uses_of_one_token_run_one_execution(pg_db, settings):
    # Given a token on PostgreSQL
    alice, bob = operator("alice"), operator("bob")
    decision_id = in_transaction(decision)
    token = in_transaction(lambda: approved_token(decision_id, settings, requester=alice, approver=bob))
    release_connection()

    def use() -> Execution:
        return execute(decision_id, token, settings, actor=alice, action_ids=["restart"])

    # When two requests use it at the same time
    outcomes = race(use, lambda: in_transaction(use), refused=Conflict)
    # Then exactly one execution was pre-approved, the other request refused
    assert isinstance(outcomes["first"], Execution)
    assert isinstance(outcomes["second"], Conflict), outcomes["second"]
    executions = in_transaction(lambda: Execution.select().where(Execution.decision_id == decision_id).count())
    assert executions == 2  # the approved one and one redemption

"""Signed one-time approval links: a valid link answers once; reused, expired, tampered, foreign,
another approver's, or a link to an answered request is refused. On both databases with real rows
(the concurrent use on PostgreSQL)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.fernet import Fernet
from freezegun import freeze_time

from app.config import Settings, get_settings, set_settings
from app.db import in_transaction, release_connection
from app.errors import ActionNotAllowed, InvalidLink
from app.executions import approvals, control, links
from app.executions.runner import run
from app.models import (
    Approval,
    ApprovalLinkUse,
    AuditLog,
    Execution,
    SigningKey,
)
from tests.approvals import decision, operator, race

ACTIONS = [{"id": "restart", "type": "remediation", "approval_required": True,
            "http": {"method": "POST", "url": "http://127.0.0.1:9/restart"}}]  # fmt: skip
BASE_URL = "https://ops.example.com/"


@pytest.fixture
def settings():
    """The process's settings while the test runs (links read them as the web and workers do)."""
    try:
        before: Settings | None = get_settings()
    except RuntimeError:
        before = None
    settings = Settings(approval_timeout_minutes=30, autonomy_mode="auto")
    set_settings(settings)
    yield settings
    set_settings(before)  # type: ignore[arg-type]


@pytest.fixture
def people(any_db):
    """``actor`` strings of operator keys held by alice (the requester), bob and carol."""

    return {name: operator(name, person=name) for name in ("alice", "bob", "carol")}


def pending_approval(settings: Settings, *, requester: str) -> Approval:
    """A decision's execution requested by ``requester``, waiting for its approval."""
    execution = control.request_execution({"decision_id": decision(ACTIONS)}, settings=settings, actor=requester)
    assert run(str(execution.id), settings=settings).status == "awaiting_approval"
    return Approval.get(Approval.execution_id == execution.id)


def token_of(link: str) -> str:
    return parse_qs(urlsplit(link).query)["token"][0]


def test_a_valid_link_answers_its_approval_once(people, settings):
    # Given alice's request and a link made for bob
    approval = pending_approval(settings, requester=people["alice"])
    link = links.make_link(approval.id, "bob", base_url=BASE_URL)
    assert link.startswith("https://ops.example.com/console/approvals/confirm?token=")
    token = token_of(link)
    # When bob opens it, nothing changes; when he confirms, the approval is approved
    claims = links.verify(token, person="bob")
    assert (claims.approval_id, claims.execution_id, claims.person) == (approval.id, str(approval.execution_id), "bob")
    assert claims.expires_at == approval.expires_at
    assert Approval.get_by_id(approval.id).status == "pending"
    answered = links.redeem(token, person="bob", actor=people["bob"], role="operator", approve=True, comment="ok")
    # Then the approval is approved by bob, with a token for the executor, and the use is recorded
    assert answered["status"] == "approved" and answered["approval_token"]
    assert Approval.get_by_id(approval.id).decided_person == "bob"
    assert Execution.get_by_id(approval.execution_id).status == "queued"
    assert ApprovalLinkUse.get(ApprovalLinkUse.nonce == claims.nonce).actor == people["bob"]
    used = AuditLog.get(AuditLog.action == "approval_link.redeemed")
    assert used.subject == f"approval:{approval.id}" and used.person == "bob" and used.details["approved"] is True


def test_a_used_link_is_refused(people, settings):
    # Given bob rejected alice's request through his link
    approval = pending_approval(settings, requester=people["alice"])
    token = token_of(links.make_link(approval.id, "bob", base_url=BASE_URL))
    links.redeem(token, person="bob", actor=people["bob"], role="operator", approve=False, comment="not now")
    assert Approval.get_by_id(approval.id).status == "rejected"
    assert Execution.get_by_id(approval.execution_id).status == "cancelled"
    # When the link is used again, to approve
    with pytest.raises(InvalidLink, match="used already") as refused:
        links.redeem(token, person="bob", actor=people["bob"], role="operator", approve=True, comment=None)
    # Then it is refused and the answer stands
    assert refused.value.reason == "used"
    assert Approval.get_by_id(approval.id).status == "rejected"


def test_an_expired_link_is_refused(people, settings):
    # Given a link to a request that expires in 30 minutes
    approval = pending_approval(settings, requester=people["alice"])
    token = token_of(links.make_link(approval.id, "bob", base_url=BASE_URL))
    # When bob uses it 31 minutes later
    with freeze_time(datetime.now(UTC) + timedelta(minutes=31)):
        with pytest.raises(InvalidLink, match="expired") as refused:
            links.redeem(token, person="bob", actor=people["bob"], role="operator", approve=True, comment=None)
    # Then it is refused and nothing was answered
    assert refused.value.reason == "expired"
    assert Approval.get_by_id(approval.id).status == "pending"
    assert ApprovalLinkUse.select().count() == 0


def test_a_link_is_refused_to_another_approver(people, settings):
    # Given a link made for bob
    approval = pending_approval(settings, requester=people["alice"])
    token = token_of(links.make_link(approval.id, "bob", base_url=BASE_URL))
    # When carol opens it, or confirms it naming bob but signed in with her own key
    with pytest.raises(InvalidLink, match="sent to 'bob', not to 'carol'") as refused:
        links.verify(token, person="carol")
    assert refused.value.reason == "wrong_approver"
    with pytest.raises(InvalidLink, match="not to 'carol'"):
        links.redeem(token, person="bob", actor=people["carol"], role="operator", approve=True, comment=None)
    # Then nothing was answered and bob's link is still good
    assert Approval.get_by_id(approval.id).status == "pending"
    assert links.verify(token, person="bob").approval_id == approval.id


@pytest.mark.parametrize("part", ["claims", "signature"])
def test_a_tampered_link_is_refused(people, settings, part):
    # Given bob's link to one request and carol's to another
    approval = pending_approval(settings, requester=people["alice"])
    token = token_of(links.make_link(approval.id, "bob", base_url=BASE_URL))
    other = token_of(links.make_link(pending_approval(settings, requester=people["alice"]).id, "carol",
                                     base_url=BASE_URL))  # fmt: skip
    # When the claims are swapped for carol's (or the signature for hers)
    body, signature = token.split(".")
    other_body, other_signature = other.split(".")
    tampered = f"{other_body}.{signature}" if part == "claims" else f"{body}.{other_signature}"
    # Then the signature does not hold, and no approval is answered
    with pytest.raises(InvalidLink, match="bad signature") as refused:
        links.redeem(tampered, person="carol", actor=people["carol"], role="operator", approve=True, comment=None)
    assert refused.value.reason == "bad_signature"
    assert Approval.select().where(Approval.status != "pending").count() == 0


@pytest.mark.parametrize("token", ["", "no-dot", "a.b.c", "!!!.???", "e30.e30"])
def test_a_malformed_link_is_refused_as_a_bad_signature(people, settings, token):
    with pytest.raises(InvalidLink) as refused:
        links.verify(token, person="bob")
    assert refused.value.reason == "bad_signature"


def test_a_link_naming_another_approvals_decision_is_refused(people, settings):
    # Given two pending requests, and a link signed with the product's key whose approval is the
    # first's but whose execution and decision are the second's
    first = pending_approval(settings, requester=people["alice"])
    second = pending_approval(settings, requester=people["alice"])
    key = in_transaction(links.signing_keys)[0]
    claims = links.verify(token_of(links.make_link(second.id, "bob", base_url=BASE_URL)), person="bob")
    mixed = links.signed_token(replace(claims, approval_id=first.id), key)
    # When bob uses it
    with pytest.raises(InvalidLink, match="does not belong") as refused:
        links.redeem(mixed, person="bob", actor=people["bob"], role="operator", approve=True, comment=None)
    # Then it is refused and neither request is answered
    assert refused.value.reason == "other_decision"
    assert {a.status for a in Approval.select()} == {"pending"}


def test_a_link_to_a_request_rejected_by_its_timeout_is_refused(people, settings):
    # Given a link, and its request rejected by the timeout (the link's own expiry set aside)
    approval = pending_approval(settings, requester=people["alice"])
    token = token_of(links.make_link(approval.id, "bob", base_url=BASE_URL))
    with freeze_time(datetime.now(UTC) + timedelta(minutes=31)):
        assert approvals.expire(approval.id) == "expired"
    # When bob opens it before the link's expiry
    with pytest.raises(InvalidLink, match="is rejected: nothing awaits an answer") as refused:
        links.verify(token, person="bob")
    # Then it is refused
    assert refused.value.reason == "not_pending"


def test_a_link_to_a_request_rejected_by_someone_else_is_refused(people, settings):
    # Given links for bob and carol; carol rejects through hers
    approval = pending_approval(settings, requester=people["alice"])
    bobs = token_of(links.make_link(approval.id, "bob", base_url=BASE_URL))
    carols = token_of(links.make_link(approval.id, "carol", base_url=BASE_URL))
    links.redeem(carols, person="carol", actor=people["carol"], role="operator", approve=False, comment="no")
    # When bob approves through his
    with pytest.raises(InvalidLink) as refused:
        links.redeem(bobs, person="bob", actor=people["bob"], role="operator", approve=True, comment=None)
    # Then it is refused: the request is no longer pending
    assert refused.value.reason == "not_pending"
    assert Approval.get_by_id(approval.id).status == "rejected"


def test_a_link_keeps_the_rules_of_an_answer_and_is_not_used_up_by_a_refusal(people, settings):
    # Given a link made for alice, who requested the execution
    approval = pending_approval(settings, requester=people["alice"])
    token = token_of(links.make_link(approval.id, "alice", base_url=BASE_URL))
    # When she approves her own request through it: refused by the two-person rule
    with pytest.raises(ActionNotAllowed, match="'alice' requested this execution"):
        links.redeem(token, person="alice", actor=people["alice"], role="operator", approve=True, comment=None)
    # Then nothing was answered and the link was not used up (its nonce rolled back with the answer)
    assert Approval.get_by_id(approval.id).status == "pending"
    assert ApprovalLinkUse.select().count() == 0
    # And a viewer's role may not answer either
    bobs = token_of(links.make_link(approval.id, "bob", base_url=BASE_URL))
    with pytest.raises(ActionNotAllowed, match="role 'viewer' is not among the approvers"):
        links.redeem(bobs, person="bob", actor=people["bob"], role="viewer", approve=True, comment=None)


def test_links_are_signed_with_the_secret_keys_and_survive_their_rotation(people, settings):
    # Given OPSCONDUCTOR_SECRET_KEYS with one key, and a link signed under it
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    set_settings(replace(settings, secret_keys=(old,)))
    approval = pending_approval(settings, requester=people["alice"])
    token = token_of(links.make_link(approval.id, "bob", base_url=BASE_URL))
    # When a new key is put first: the link still verifies
    set_settings(replace(settings, secret_keys=(new, old)))
    assert links.verify(token, person="bob").approval_id == approval.id
    # Then once the old key is gone, it no longer does; and no database key was ever made
    set_settings(replace(settings, secret_keys=(new,)))
    with pytest.raises(InvalidLink, match="bad signature"):
        links.verify(token, person="bob")
    assert SigningKey.select().count() == 0


def test_without_secret_keys_the_database_keeps_one_random_key(people, settings):
    # Given no OPSCONDUCTOR_SECRET_KEYS (the embedded default)
    approval = pending_approval(settings, requester=people["alice"])
    # When two links are made
    first = token_of(links.make_link(approval.id, "bob", base_url=BASE_URL))
    second = token_of(links.make_link(approval.id, "carol", base_url=BASE_URL))
    # Then one key was made and stored, and it verifies both (different nonces)
    assert SigningKey.select().count() == 1
    assert links.verify(first, person="bob").nonce != links.verify(second, person="carol").nonce


def test_two_concurrent_uses_of_one_link_answer_once(pg_db, settings):
    # Given bob's link on PostgreSQL
    actors = {name: operator(name, person=name) for name in ("alice", "bob")}
    approval = in_transaction(lambda: pending_approval(settings, requester=actors["alice"]))
    token = token_of(links.make_link(approval.id, "bob", base_url=BASE_URL))
    release_connection()

    def use(approve: bool) -> dict:
        return links.redeem(token, person="bob", actor=actors["bob"], role="operator", approve=approve, comment=None)

    # When bob's two clicks arrive at the same time (the first's answer is a savepoint of its held transaction)
    outcomes = race(lambda: use(True), lambda: use(False), refused=InvalidLink)
    # Then the first approved and the second was refused as a used link
    assert isinstance(outcomes["first"], dict) and outcomes["first"]["status"] == "approved"
    assert isinstance(outcomes["second"], InvalidLink) and outcomes["second"].reason == "used", outcomes["second"]
    assert in_transaction(lambda: Approval.get_by_id(approval.id).status) == "approved"
    assert in_transaction(lambda: ApprovalLinkUse.select().count()) == 1


def test_a_refused_link_answers_403_with_its_reason():
    # Given the app's error handling and a resource that refuses an expired link
    import falcon
    import falcon.testing

    from app.http import errors

    class Refusing:
        def on_post(self, req, resp):
            raise InvalidLink("this approval link expired at 2025-01-01T00:00:00+00:00", reason="expired")

    app = falcon.App()
    errors.install(app)
    app.add_route("/confirm", Refusing())
    # When it is called
    reply = falcon.testing.TestClient(app).simulate_post("/confirm")
    # Then the answer is a 403 that names the reason
    assert reply.status_code == 403
    assert reply.json == {
        "error": "not_allowed",
        "message": "this approval link expired at 2025-01-01T00:00:00+00:00",
        "reason": "expired",
    }

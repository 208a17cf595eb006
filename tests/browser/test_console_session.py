"""Signing in and out of the console, and what a session protects: CSRF, roles, revoked keys, links."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from app.config import Settings, set_settings
from app.executions import links
from app.models import ApiKey, Approval
from tests.browser.helpers import execution_of, incident_of, post_event, rule, unique_host
from tests.http import request
from tests.targets import http_target

pytestmark = pytest.mark.integration


def test_a_page_opened_without_a_session_leads_to_sign_in_and_back(stack, browser, console_keys, shot):
    # Given a browser with no session, opening the approvals page
    context = browser.new_context(base_url=stack.base)
    page = context.new_page()
    page.goto("/console/approvals")

    # Then it is on the sign-in page; a wrong key is refused there
    expect(page).to_have_url(re.compile(r"/console/login\?next=%2Fconsole%2Fapprovals"))
    page.get_by_label("API key").fill("oc_" + "x" * 43)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("unknown or revoked")
    shot(page, "refused")

    # And with a good key it lands where it was going, with an HttpOnly, SameSite=Strict cookie
    page.get_by_label("API key").fill(console_keys["operator"])
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/console/approvals$"))
    cookie = next(c for c in context.cookies() if c["name"] == "oc_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/console"
    context.close()


def test_an_ingest_key_cannot_sign_in(stack, browser, console_keys):
    page = browser.new_context(base_url=stack.base).new_page()
    page.goto("/console/login")
    page.get_by_label("API key").fill(console_keys["ingest"])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("cannot sign in")


def test_a_form_posted_without_its_csrf_token_is_refused(stack, page, shot):
    # Given an open incident and a signed-in operator
    incident_id = incident_of(stack, post_event(stack, host=unique_host("csrf"), title="CSRF target"))

    # When a form reaches the console with the session's cookie but without its token (as from another site)
    reply = page.request.post(f"/console/incidents/{incident_id}/acknowledge", form={"comment": "forged"})

    # Then it is refused with 403 and the incident did not change
    assert reply.status == 403
    assert "security token" in reply.text()
    shown = request("GET", f"{stack.base}/api/v1/incidents/{incident_id}", key=stack.viewer).json()
    assert shown["status"] == "open"


def test_signing_out_ends_the_session(stack, page, shot):
    # Given a signed-in operator whose session cookie is kept
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "oc_session")

    # When it signs out
    page.get_by_role("button", name="Sign out").click()

    # Then it is on the sign-in page, and the old cookie opens nothing any more
    expect(page.get_by_role("status")).to_contain_text("You are signed out.")
    shot(page, "signed-out")
    reply = request("GET", f"{stack.base}/console/incidents", headers={"Cookie": f"oc_session={token}"})
    assert b'name="api_key"' in reply.body  # redirected (and followed) to the sign-in form


def test_a_revoked_key_ends_its_sessions(stack, sign_in, console_keys, db):
    # Given a viewer signed in
    viewer = sign_in("viewer")
    # When its key is revoked
    ApiKey.update(revoked_at=ApiKey.created_at).where(ApiKey.name == "test viewer").execute()
    try:
        # Then its next page leads to the sign-in page
        viewer.goto("/console/incidents")
        expect(viewer).to_have_url(re.compile(r"/console/login"))
    finally:
        ApiKey.update(revoked_at=None).where(ApiKey.name == "test viewer").execute()


def test_a_signed_link_approves_once_and_only_for_its_approver(stack, sign_in, console_keys, db, shot):
    # Given a pending approval and a link made for the operator's person
    with http_target() as target:
        host = unique_host("link")
        rule(stack, host=host, actions=[{"id": "restart", "name": "Restart", "type": "remediation",
                                         "http": {"method": "POST", "url": f"{target.url}/restart"}}])  # fmt: skip
        execution = execution_of(stack, post_event(stack, host=host, title=f"Down on {host}"), "awaiting_approval")
        approval = Approval.get(Approval.execution_id == execution["execution_id"])
        set_settings(Settings())  # the links' signing key comes from the settings (none set: the database's)
        url = links.make_link(approval.id, "console operator", base_url=stack.base)

        # When another person opens it, it is refused
        admin = sign_in("admin")
        admin.goto(url)
        expect(admin.get_by_role("alert")).to_contain_text("not to")

        # And when its approver opens it, the page only asks; confirming approves
        operator = sign_in("operator")
        operator.goto(url)
        expect(operator.get_by_role("heading", level=1)).to_contain_text(f"Answer approval {approval.id}")
        assert Approval.get_by_id(approval.id).status == "pending"  # opening changed nothing
        shot(operator, "confirm")
        operator.get_by_role("button", name="Approve").click()
        expect(operator.get_by_role("heading", level=1)).to_have_text("Approved")
        assert execution_of(stack, execution["event_id"], "completed")

        # And the link cannot be used a second time
        operator.goto(url)
        expect(operator.get_by_role("alert")).to_contain_text("used already")

"""Approvals in a real browser (AUTONOMY_MODE=suggest: every action waits for a person)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import execution_of, post_event, rule, unique_host
from tests.http import request
from tests.targets import http_target

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def target():
    with http_target() as server:
        yield server


def _playbook(target, host: str) -> list[dict]:
    return [
        {"id": "restart", "name": "Restart the web service", "type": "remediation",
         "http": {"method": "POST", "url": f"{target.url}/restart/{host}", "json": {"host": "{{ event.host }}"}}},
        {"id": "check", "name": "Check it answers", "type": "diagnostic", "depends_on": ["restart"],
         "http": {"method": "GET", "url": f"{target.url}/check/{host}"}},
    ]  # fmt: skip


def test_an_operator_approves_a_pending_action_and_watches_its_steps_complete(stack, page, target, shot):
    # Given a rule whose playbook waits for an approval, and an event that fired it
    host = unique_host("app")
    rule(stack, host=host, actions=_playbook(target, host))
    event_id = post_event(stack, host=host, title=f"Service down on {host}")
    execution = execution_of(stack, event_id, "awaiting_approval")

    # When the operator opens the approvals queue, reads the exact request and approves it
    page.goto("/console/approvals")
    request_card = page.locator("article.approval").filter(has_text=f"playbook for {host}")
    expect(request_card).to_contain_text(f"POST {target.url}/restart/{host}")
    expect(request_card).to_contain_text("Restart the web service")
    shot(page, "queue")
    request_card.get_by_label("Comment").fill("go ahead")
    request_card.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("status").filter(has_text="Approved")).to_be_visible()

    # Then on the execution's page the steps complete while it is watched (live, no reload)
    page.goto(f"/console/executions/{execution['execution_id']}")
    expect(page.locator("#execution-status")).to_have_text("completed", timeout=30_000)
    expect(page.locator('#steps tr[data-step="check"]')).to_contain_text("completed")
    shot(page, "completed")
    # And the requests reached the target, in order
    assert [r["path"] for r in target.requests if host in r["path"]] == [f"/restart/{host}", f"/check/{host}"]


def test_an_operator_rejects_a_pending_action_and_nothing_runs(stack, page, target, shot):
    # Given a pending approval
    host = unique_host("app")
    rule(stack, host=host, actions=_playbook(target, host))
    event_id = post_event(stack, host=host, title=f"Service slow on {host}")
    execution = execution_of(stack, event_id, "awaiting_approval")

    # When the operator rejects it from the execution's own page, saying why
    page.goto(f"/console/executions/{execution['execution_id']}")
    page.get_by_label("Comment").fill("not during the release")
    page.get_by_role("button", name="Reject").click()

    # Then the execution is cancelled, nothing reached the target, and the answer is kept
    expect(page.get_by_role("status").filter(has_text="Rejected")).to_be_visible()
    expect(page.locator("#execution-status")).to_have_text("cancelled")
    shot(page, "rejected")
    shown = request("GET", f"{stack.base}/api/v1/autonomous/executions/{execution['execution_id']}",
                    key=stack.viewer).json()  # fmt: skip
    assert shown["status"] == "cancelled"
    assert shown["approval"]["status"] == "rejected" and shown["approval"]["comment"] == "not during the release"
    assert not [r for r in target.requests if host in r["path"]]


def test_a_viewer_sees_no_approve_button_and_its_direct_post_is_refused(stack, sign_in, target, shot):
    # Given a pending approval, and a viewer signed in
    host = unique_host("app")
    rule(stack, host=host, actions=_playbook(target, host))
    execution = execution_of(stack, post_event(stack, host=host, title=f"Queue stuck on {host}"), "awaiting_approval")
    viewer = sign_in("viewer")

    # When the viewer opens the queue
    viewer.goto("/console/approvals")

    # Then it sees the request but no button to answer it
    expect(viewer.locator("article.approval").filter(has_text=f"playbook for {host}")).to_be_visible()
    expect(viewer.get_by_role("button", name=re.compile("Approve|Reject"))).to_have_count(0)
    shot(viewer, "viewer-queue")

    # And when it posts the approve form directly, with its own valid CSRF token, it is refused
    csrf = viewer.locator('form[action="/console/logout"] input[name="csrf_token"]').input_value()
    reply = viewer.request.post(f"/console/approvals/{execution['execution_id']}/approve",
                                form={"csrf_token": csrf, "comment": "sneaky"})  # fmt: skip
    assert reply.status == 403
    assert "may not operate" in reply.text()
    # And the request still waits
    assert execution_of(stack, execution["event_id"], "awaiting_approval")["execution_id"] == execution["execution_id"]

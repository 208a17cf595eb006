"""The console's incidents in a real browser: see one a posted event made, work it, silence it."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from app.models import RuleExecution
from tests.browser.helpers import incident_of, post_event, rule, unique_host
from tests.http import request
from tests.processes import wait_for

pytestmark = pytest.mark.integration


def test_an_operator_sees_an_incident_a_posted_event_made_and_acknowledges_then_resolves_it(stack, page, shot):
    # Given the incidents page open on a host, and then an event posted for it
    host = unique_host("web")
    page.goto(f"/console/incidents?host={host}")
    title = f"CPU high on {host}"
    event_id = post_event(stack, host=host, title=title)

    # When the list refreshes by itself (no reload), the incident appears
    link = page.get_by_role("link", name=title)
    expect(link).to_be_visible(timeout=20_000)
    shot(page, "list")

    # And the operator opens it, acknowledges it with a comment, then resolves it
    link.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(title)
    page.get_by_label("Comment (optional)").fill("looking at it")
    page.get_by_role("button", name="Acknowledge").click()
    expect(page.get_by_role("status").filter(has_text="Incident acknowledged.")).to_be_visible()
    expect(page.locator("#incident-status")).to_have_text("acknowledged")
    shot(page, "acknowledged")
    page.get_by_role("button", name="Resolve").click()
    expect(page.locator("#incident-status")).to_have_text("resolved")
    shot(page, "resolved")

    # Then the incident is resolved in the database, and its timeline shows who did what
    incident_id = incident_of(stack, event_id)
    shown = request("GET", f"{stack.base}/api/v1/incidents/{incident_id}", key=stack.viewer).json()
    assert shown["status"] == "resolved"
    assert shown["acknowledged_by"] and shown["resolved_by"]
    expect(page.locator(".timeline")).to_contain_text("looking at it")


def test_a_silence_made_from_an_incident_keeps_the_next_matching_event_from_firing(stack, page, db, shot):
    # Given a rule on a host that fired once for its first event
    host = unique_host("db")
    rule_id = rule(stack, host=host)
    first = post_event(stack, host=host, title=f"Disk full on {host}")
    incident_id = incident_of(stack, first)
    fired = lambda: RuleExecution.select().where(RuleExecution.trigger_rule_id == rule_id).count()  # noqa: E731
    wait_for(lambda: fired() == 1, message="the rule fired for the first event")

    # When the operator silences the incident's host from its page
    page.goto(f"/console/incidents/{incident_id}")
    page.get_by_label("Why").fill("known: disk being replaced")
    page.get_by_role("button", name="Create silence").click()
    expect(page.get_by_role("status").filter(has_text="Silence created")).to_be_visible()
    shot(page, "silenced")

    # And the next matching event arrives, once evaluators have read the new silence (within 2 s)
    time.sleep(2.5)
    second = post_event(stack, host=host, title=f"Disk full on {host} again")

    # Then it is stored and marked silenced, and the rule did not fire again
    def silenced() -> dict | None:
        reply = request("GET", f"{stack.base}/api/v1/events/{second}", key=stack.viewer)
        return reply.json() if reply.status == 200 and reply.json().get("silenced_by") else None

    shown = wait_for(silenced, message="the second event stored as silenced")
    assert shown["silenced_by"]
    assert fired() == 1


def test_the_incidents_page_is_usable_on_a_phone(stack, sign_in, shot):
    # Given an incident, and a phone-sized screen
    host = unique_host("edge")
    incident_of(stack, post_event(stack, host=host, title=f"Link down on {host}"))
    phone = sign_in("viewer", viewport={"width": 390, "height": 844})

    # When the viewer opens the incidents page
    phone.goto(f"/console/incidents?host={host}")

    # Then the page is no wider than the screen and the incident is reachable
    expect(phone.get_by_role("link", name=re.compile(f"Link down on {host}"))).to_be_visible()
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390 + 1
    shot(phone, "phone")

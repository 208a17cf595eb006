"""Operators' regular expressions over the real stack (gunicorn, a dramatiq worker, RabbitMQ, PostgreSQL):
a pattern RE2 cannot run is refused with a 400 naming it, and a pattern that backtracks
exponentially under Python's ``re`` freezes neither the web process nor the evaluator."""

from __future__ import annotations

import time
import uuid

import pytest

from app.events.envelope import make_item
from app.events.store import store_batch
from app.ids import new_id
from app.models import RuleExecution
from tests.http import request
from tests.processes import wait_for

#: The title that, with ``(a+)+$``, kept an evaluator at 100 % CPU until SIGKILL.
HOSTILE_TITLE = "a" * 40 + "!"


@pytest.mark.parametrize("pattern", ["(a)\\1", "(?<=x)a", "a\\Z"])
def test_a_rule_whose_regex_re2_cannot_run_is_refused_naming_it(stack, pattern):
    # Given a rule with a backreference, a lookbehind or Python's \Z in an $or branch
    rule = {"name": "bad regex", "conditions": {"$or": [{"host": "x"}, {"title": {"$regex": pattern}}]}}

    # When an operator writes it
    reply = request("POST", f"{stack.base}/api/v1/rules/triggers", json=rule, key=stack.admin)

    # Then it is refused with a 400 naming the pattern's place, and saying why
    assert reply.status == 400, reply.body
    body = reply.json()
    assert body["field"] == "conditions.$or[1].title.$regex"
    assert "RE2" in reply.body.decode()


def test_testing_a_backtracking_rule_over_hostile_events_answers_at_once(stack, db):
    # Given the rule that froze the web process (on hosts of this test only: other tests' events of
    # the last day may have titles ending in "a"), and stored events with the title that does it
    tag = uuid.uuid4().hex[:6]
    hosts = [f"{tag}-h{i}" for i in range(3)]
    rule = {"name": f"nested {tag}", "conditions": {"host": hosts, "title": {"$regex": "(a+)+$"}}}
    created = request("POST", f"{stack.base}/api/v1/rules/triggers", json=rule, key=stack.admin)
    assert created.status == 201, created.body
    items = [
        make_item(id=new_id(), source_type="webhook", received_at=time.time(),
                  payload={"source": "t", "host": host, "title": HOSTILE_TITLE})
        for host in hosts
    ]  # fmt: skip
    store_batch(items, window_s=300)

    # When a viewer tests the rule over the last day
    started = time.monotonic()
    reply = request(
        "POST", f"{stack.base}/api/v1/rules/triggers/{created.json()['rule_id']}/test", key=stack.viewer, json={}
    )
    took = time.monotonic() - started

    # Then the answer comes at once (Python's re never finished) and nothing matched
    assert reply.status == 200, reply.body
    assert reply.json()["events_examined"] >= 3
    assert (reply.json()["matched"], reply.json()["fired"]) == (0, 0)
    assert took < 5.0
    assert request("GET", f"{stack.base}/healthz").status == 200


def test_a_backtracking_rule_does_not_freeze_the_evaluator(stack, db):
    # Given the backtracking rule and, after it, a rule on the host of the coming event
    host = f"canary-{uuid.uuid4().hex[:6]}"
    nested = {"name": f"nested {host}", "conditions": {"title": {"$regex": "(a+)+$"}}}
    assert request("POST", f"{stack.base}/api/v1/rules/triggers", json=nested, key=stack.admin).status == 201
    canary = {"name": f"canary {host}", "conditions": {"host": host}}
    created = request("POST", f"{stack.base}/api/v1/rules/triggers", json=canary, key=stack.admin)
    rule_id = created.json()["rule_id"]
    time.sleep(2.5)  # evaluators pick up rule changes within 2 s

    # When an event with the hostile title arrives for that host
    event = {"source": "nagios", "event_type": "probe", "severity": "high", "host": host, "title": HOSTILE_TITLE}
    posted = request("POST", f"{stack.base}/api/v1/events/webhook", json=event, key=stack.ingest)
    assert posted.status == 202, posted.body

    # Then the evaluator decides both rules and the canary fires
    execution = wait_for(
        lambda: RuleExecution.get_or_none(
            (RuleExecution.trigger_rule_id == rule_id)
            & (RuleExecution.triggering_event_id == posted.json()["event_id"])
        ),
        timeout=30,
        message="the canary rule's firing",
    )
    assert execution is not None

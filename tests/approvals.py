"""What the approval tests share (links by email/chat, tokens by API): operators, a decision to run, a race of two uses."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from app.auth import create_key
from app.db import in_transaction, release_connection
from app.ids import uuid7
from app.models import ApiKey, DecisionLog, ProcessedEvent, ResponseTemplate, ResponseTemplateVersion, TriggerRule


def operator(name: str, *, person: str | None = None) -> str:
    """Create an operator key ``name`` held by ``person``; return its ``actor`` string as the web tier names it."""
    create_key(role="operator", name=name, person=person)
    return f"key:{ApiKey.get(ApiKey.name == name).id}:{name}"


def decision(actions: list[dict[str, Any]], *, author: str | None = None) -> int:
    """A decision on a stored event, with a rule and a template of ``actions`` that ``author`` wrote; its id."""
    event = ProcessedEvent.create(
        id=uuid7(), source_type="webhook", event_type="threshold_breach", severity="high", source_host="web-01",
        title="disk full", occurred_at=datetime.now(UTC), fingerprint="f", event_data={},
    )  # fmt: skip
    rule = TriggerRule.create(rule_name="r", event_conditions={}, created_by_person=author, updated_by_person=author)
    definition = {"name": "t", "response_type": "remediation", "actions": actions}
    template = ResponseTemplate.create(template_name="t", template_type="remediation", response_definition=definition,
                                       created_by_person=author, updated_by_person=author)  # fmt: skip
    ResponseTemplateVersion.create(template_id=template.id, version=1, definition=definition)
    return DecisionLog.create(event_id=event.id, decision_type="remediate", confidence_score=0.5, reasoning="r",
                              trigger_rule_id=rule.id, response_template_id=template.id, template_version=1).id  # fmt: skip


def race(first: Callable[[], object], second: Callable[[], object], *, refused: type[Exception]) -> dict[str, object]:
    """Two uses of one credential at the same time, on two threads (PostgreSQL: SQLite has one writer).

    ``first`` runs inside a transaction held open until ``second`` has started and read the
    credential as unused, so ``second`` must wait on the first's lock and then see it used.

    Returns:
      ``{"first": what it returned, "second": what it returned or the ``refused`` it raised}``.
    """
    outcomes: dict[str, object] = {}
    first_inside, second_started = threading.Event(), threading.Event()

    def run_first() -> None:
        def work() -> None:
            outcomes["first"] = first()
            first_inside.set()
            second_started.wait(5)
            time.sleep(0.5)  # the second use reads the credential as unused and waits on its row

        in_transaction(work)
        release_connection()

    def run_second() -> None:
        first_inside.wait(5)
        second_started.set()
        try:
            outcomes["second"] = second()
        except refused as e:
            outcomes["second"] = e
        finally:
            release_connection()

    threads = [threading.Thread(target=run_first), threading.Thread(target=run_second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    return outcomes

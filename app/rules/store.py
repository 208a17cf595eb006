"""Trigger rules: create, read, replace and delete, each write audited (the API, CLI and console share it).

Every function is called inside a transaction (:func:`app.db.in_transaction`), so a write and
its audit row commit together.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .. import audit
from ..crud import Table
from ..models import TriggerRule
from .evaluation import body_of, columns_of
from .triggers import TriggerSpec

#: Rules as the API, the CLI and the console read them (their audit rows keep the columns written, not a before/after).
TABLE = Table(TriggerRule, noun="trigger rule", subject="trigger_rule")


def listing(*, active: bool | None = None) -> list[dict[str, Any]]:
    """Every rule as the API shows it, by id (``active``: only the rules that are, or are not, active)."""
    query = TriggerRule.select().order_by(TriggerRule.id)
    if active is not None:
        query = query.where(TriggerRule.active == active)
    return [body_of(r) for r in query]


def get(rule_id: int) -> TriggerRule:
    """Raises:
    NotFound: there is no rule ``rule_id``.
    """
    return TABLE.get(rule_id)


def create(spec: TriggerSpec, *, actor: str, person: str | None = None, key_id: int | None = None) -> int:
    """Store a new rule; return its id.

    Parameters:
      actor: Who writes it, for the audit log (``key:<id>:<name>``, ``cli``).
      person: The person behind ``actor`` (its author may not approve the runs it causes).
      key_id: The API key that wrote it, if a key did.
    """
    row = TriggerRule.create(**columns_of(spec), created_by=key_id, created_by_person=person, updated_by_person=person)
    audit.record(audit.Action.TRIGGER_RULE_CREATED, actor=actor, subject=f"trigger_rule:{row.id}",
                 details=columns_of(spec))  # fmt: skip
    return row.id


def replace(rule_id: int, spec: TriggerSpec, *, actor: str, person: str | None = None) -> None:
    """Replace every field of rule ``rule_id`` with ``spec``.

    Raises:
      NotFound: there is no rule ``rule_id``.
    """
    get(rule_id)
    TriggerRule.update(**columns_of(spec), updated_at=datetime.now(UTC), updated_by_person=person).where(
        TriggerRule.id == rule_id
    ).execute()
    audit.record(audit.Action.TRIGGER_RULE_UPDATED, actor=actor, subject=f"trigger_rule:{rule_id}",
                 details=columns_of(spec))  # fmt: skip


def delete(rule_id: int, *, actor: str) -> None:
    """Raises:
    NotFound: there is no rule ``rule_id``.
    """
    get(rule_id)
    TriggerRule.delete().where(TriggerRule.id == rule_id).execute()
    audit.record(audit.Action.TRIGGER_RULE_DELETED, actor=actor, subject=f"trigger_rule:{rule_id}")

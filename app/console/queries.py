"""What the console's lists read: bounded pages and counts (plain queries; the views render them).

Every list is one page (:data:`PAGE_SIZE` rows, offset paging) ordered by an indexed column,
and every count is a ``GROUP BY`` in the database, so a page stays fast with 100,000 events and
5,000 incidents stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import peewee

from ..correlation.query import STATUSES, has_host, incident_json
from ..db import in_transaction
from ..errors import InvalidInput
from ..events.schema import SEVERITIES
from ..executions.store import STATUSES as EXECUTION_STATUSES
from ..models import Approval, Execution, ExecutionStep, Incident

#: Rows on one page of a console list.
PAGE_SIZE = 50
#: Highest page number a list accepts (offset paging past this is not what a person does).
MAX_PAGE = 10_000


@dataclass(frozen=True)
class IncidentFilter:
    """The incident list's filters, each optional; checked by :func:`incident_filter`."""

    status: str | None = None
    severity: str | None = None
    host: str | None = None
    assignee: str | None = None

    def params(self) -> dict[str, str]:
        return {k: v for k, v in vars(self).items() if v}


def incident_filter(
    *, status: str | None, severity: str | None, host: str | None, assignee: str | None
) -> IncidentFilter:
    """The filters of the incident list, blank ones dropped.

    Raises:
      InvalidInput: an unknown status or severity, or a host or assignee over 200 characters.
    """
    status, severity = (status or "").strip() or None, (severity or "").strip() or None
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)}", field="status")
    if severity is not None and severity not in SEVERITIES:
        raise InvalidInput(f"severity must be one of {', '.join(SEVERITIES)}", field="severity")
    host, assignee = (host or "").strip() or None, (assignee or "").strip() or None
    for name, value in (("host", host), ("assignee", assignee)):
        if value is not None and len(value) > 200:
            raise InvalidInput(f"{name} is at most 200 characters", field=name)
    return IncidentFilter(status=status, severity=severity, host=host, assignee=assignee)


def page_number(value: str | None) -> int:
    """A 1-based page number from the query string.

    Raises:
      InvalidInput: not a whole number from 1 to :data:`MAX_PAGE`.
    """
    if value in (None, ""):
        return 1
    try:
        number = int(value or "")
    except ValueError:
        raise InvalidInput(f"page must be a whole number, got {value!r}", field="page") from None
    if not 1 <= number <= MAX_PAGE:
        raise InvalidInput(f"page must be between 1 and {MAX_PAGE}", field="page")
    return number


def _where(query: Any, f: IncidentFilter, *, skip: str = "") -> Any:
    if f.status and skip != "status":
        query = query.where(Incident.status == f.status)
    if f.severity and skip != "severity":
        query = query.where(Incident.severity == f.severity)
    if f.host:
        query = query.where(has_host(f.host))
    if f.assignee:
        query = query.where(Incident.assignee == f.assignee)
    return query


def _counts(query: Any) -> dict[str, int]:
    """``{value: count}`` of a two-column ``GROUP BY`` query."""
    return {value: n for value, n in query.tuples()}


def incidents_page(f: IncidentFilter, *, page: int) -> dict[str, Any]:
    """One page of incidents (most recent activity first), the total, and counts by status and severity.

    The status counts keep the other filters but not the status one (so each count is what
    clicking it shows); the severity counts likewise.
    """

    def work() -> dict[str, Any]:
        query = _where(Incident.select(), f)
        rows = list(query.order_by(Incident.last_event_at.desc()).limit(PAGE_SIZE + 1).offset((page - 1) * PAGE_SIZE))
        by_status = _where(Incident.select(Incident.status, peewee.fn.COUNT(Incident.id)), f, skip="status")
        by_severity = _where(Incident.select(Incident.severity, peewee.fn.COUNT(Incident.id)), f,
                             skip="severity")  # fmt: skip
        statuses = _counts(by_status.group_by(Incident.status))
        severities = _counts(by_severity.group_by(Incident.severity))
        return {
            "incidents": [incident_json(r) for r in rows[:PAGE_SIZE]],
            "has_more": len(rows) > PAGE_SIZE,
            "total": query.count(),
            "by_status": [(s, statuses.get(s, 0)) for s in STATUSES],
            "by_severity": [(s, severities.get(s, 0)) for s in SEVERITIES],
        }

    return in_transaction(work)


def pending_approvals(*, page: int) -> dict[str, Any]:
    """Approval requests still pending, oldest first (the first to time out on top), with their executions."""

    def work() -> dict[str, Any]:
        rows = list(
            Approval.select()
            .where(Approval.status == "pending")
            .order_by(Approval.expires_at, Approval.id)
            .limit(PAGE_SIZE + 1)
            .offset((page - 1) * PAGE_SIZE)
        )
        ids = [r.execution_id for r in rows[:PAGE_SIZE]]
        executions = {x.id: x for x in Execution.select().where(Execution.id.in_(ids))} if ids else {}
        return {
            "approvals": [(r, executions.get(r.execution_id)) for r in rows[:PAGE_SIZE]],
            "has_more": len(rows) > PAGE_SIZE,
            "total": Approval.select().where(Approval.status == "pending").count(),
        }

    return in_transaction(work)


def executions_page(*, status: str | None, page: int) -> dict[str, Any]:
    """One page of executions, newest first, with each one's step counts (one grouped query).

    Raises:
      InvalidInput: an unknown status.
    """
    status = (status or "").strip() or None
    if status is not None and status not in EXECUTION_STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(EXECUTION_STATUSES)}", field="status")

    def work() -> dict[str, Any]:
        query = Execution.select()
        if status:
            query = query.where(Execution.status == status)
        rows = list(query.order_by(Execution.created_at.desc()).limit(PAGE_SIZE + 1).offset((page - 1) * PAGE_SIZE))
        ids = [r.id for r in rows[:PAGE_SIZE]]
        steps: dict[Any, dict[str, int]] = {}
        if ids:
            counted = (
                ExecutionStep.select(
                    ExecutionStep.execution_id, ExecutionStep.status, peewee.fn.COUNT(ExecutionStep.id)
                )  # fmt: skip
                .where(ExecutionStep.execution_id.in_(ids), ExecutionStep.phase == "action")
                .group_by(ExecutionStep.execution_id, ExecutionStep.status)
            )
            rows_: Any = counted.tuples()
            for execution_id, step_status, n in rows_:
                steps.setdefault(execution_id, {})[step_status] = n
        counts = Execution.select(Execution.status, peewee.fn.COUNT(Execution.id)).group_by(Execution.status)
        by_status = _counts(counts)
        return {
            "executions": [(r, steps.get(r.id, {})) for r in rows[:PAGE_SIZE]],
            "has_more": len(rows) > PAGE_SIZE,
            "by_status": [(s, by_status.get(s, 0)) for s in EXECUTION_STATUSES],
            "selected": status,
        }

    return in_transaction(work)

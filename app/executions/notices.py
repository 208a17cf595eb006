"""Telling the approvers that an execution waits for them, with a signed link for each.

The request is paged through the notification policies (trigger ``approval_requested``); when
none takes it, it is emailed to NOTIFY_EMAIL_TO as before policies existed. Each message carries
one single-use link per approver (:func:`app.executions.links.make_link`): the persons holding an
active key of an approver role, but the requester and the authors of the rule or template, who
may not approve. The rows are written with ``notified_at`` in one transaction, so a request is
paged once, under the execution's row lock (as every answer takes it), so an approval given
meanwhile is never written back to pending; the executor makes the first attempt at once (the request's timeout runs), and
failed attempts are retried by the ``notify`` actor through the clock.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from ..config import Settings
from ..db import in_transaction
from ..models import ApiKey, Approval, Execution
from ..models.ops import person_of
from ..notifications import delivery, pages, routing
from .approvals import authors
from .links import make_link
from .runner import locked
from .store import log, requests_text

logger = logging.getLogger(__name__)

#: The most approvers a message lists a link for.
MAX_LINKS = 20


def approver_persons(approval: Approval) -> list[str]:
    """The persons who may approve ``approval``: active keys of its roles, but its requester and authors."""
    row = Execution.get_or_none(Execution.id == approval.execution_id)
    excluded = {person_of(approval.requested_by)} | (authors(row) if row is not None else set())
    keys = ApiKey.select(ApiKey.name, ApiKey.person).where(
        ApiKey.role.in_(list(approval.approvers)), ApiKey.revoked_at.is_null()
    )
    return sorted({k.person or k.name for k in keys} - excluded)[:MAX_LINKS]


def page_approvers(approval_id: int, *, settings: Settings, now: datetime | None = None) -> list[int]:
    """Write the notifications of a pending, not yet notified request (call inside a transaction).

    Returns:
      The ids of the notifications due now; empty when the request was already paged or answered.
    """
    now = now or datetime.now(UTC)
    approval = Approval.get_or_none(Approval.id == approval_id)
    if approval is None or approval.notified_at is not None or approval.status != "pending":
        return []
    execution = locked(str(approval.execution_id))  # an answer waits until the request is paged
    approval = Approval.get_by_id(approval_id)  # read again under the lock: answered meanwhile?
    if approval.notified_at is not None or approval.status != "pending":
        return []
    actions = ", ".join(f"{a['action_id']} ({a.get('risk_level')})" for a in approval.requested_actions)
    text = (
        f"Execution {approval.execution_id} waits for an approval.\n\nWhy: {approval.reason}\n"
        f"Risk: {approval.risk_level} ({approval.risk_score}); business impact: {approval.business_impact}\n"
        f"Requests (secrets masked):\n{requests_text(approval.requested_actions)}\n"
        f"Actions: {actions}\nApprovers: {', '.join(approval.approvers)}; "
        f"rejected automatically at {approval.expires_at.isoformat()}.\n\n"
        f"POST /api/v1/autonomous/executions/{approval.execution_id}/approve (or /reject)\n"
    )
    links = [{"label": f"Answer as {person}", "url": make_link(approval.id, person, base_url=settings.base_url),
              "person": person} for person in approver_persons(approval)]  # fmt: skip
    page = pages.approval_requested(
        approval_id=approval.id, execution_id=str(approval.execution_id), title=f"Approval needed: {actions}",
        text=text, event_id=execution.event_id if execution else None,
        incident_id=execution.incident_id if execution else None, links=links,
        details={"risk": f"{approval.risk_level} ({approval.risk_score})", "expires_at": approval.expires_at.isoformat()},
    )  # fmt: skip
    ids = routing.route(page, now=now, fallback=settings)
    approval.notified_at = now
    approval.save(only=[Approval.notified_at])  # this column only: the answer's columns are not ours to write
    log(approval.execution_id, f"Approvers paged: {len(ids)} notifications, {len(links)} approver links.")
    return ids


def notify_approvers(approval_id: int, *, settings: Settings) -> bool:
    """Page the approvers of a request once and make the first attempt at each notification now.

    Returns:
      Whether a notification was sent. A failed attempt is logged on the execution and retried
      later (the request stands either way).
    """
    ids = in_transaction(lambda: page_approvers(approval_id, settings=settings))
    sent = False
    for notification_id in ids:
        status = delivery.deliver(notification_id, settings=settings)
        sent = sent or status == "sent"
        if status != "sent":
            logger.warning("Could not notify approvers of approval %r yet (notification %r).", approval_id,
                           notification_id)  # fmt: skip
    return sent

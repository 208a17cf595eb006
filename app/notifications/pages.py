"""The pages of each trigger: what an escalation, an approval request, a failed execution or a
failed rollback says, and what policies match it on (call inside a transaction: they read the
event and incident behind it). Links to the console are paths (``/console/...``): delivery puts
OPSCONDUCTOR_PUBLIC_URL in front of them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .routing import Page, targets_of


def _targets(event_id: Any, incident_id: Any) -> dict[str, Any]:
    facts = targets_of(event_id, incident_id)
    return {k: facts[k] for k in ("severity", "hosts", "services", "tags", "incident_id")}


def escalation(*, decision_id: int, reasoning: str, event_id: Any, incident_id: Any, confidence: float) -> Page:
    """An ``escalate`` decision: a human must look at the incident."""
    facts = targets_of(event_id, incident_id)
    subject = f"incident:{facts['incident_id']}" if facts["incident_id"] else f"decision:{decision_id}"
    links = [{"label": "Open the incident", "url": f"/console/incidents/{facts['incident_id']}"}] if (
        facts["incident_id"]) else []  # fmt: skip
    return Page(
        trigger="escalation", subject=subject, title=f"Escalated: {facts['title'] or 'an incident'}",
        text=reasoning, details={"decision_id": decision_id, "confidence": confidence,
                                 "hosts": ", ".join(facts["hosts"]), "services": ", ".join(facts["services"])},
        links=tuple(links), **_targets(event_id, incident_id),
    )  # fmt: skip


def approval_requested(*, approval_id: int, execution_id: str, title: str, text: str, event_id: Any,
                       incident_id: Any, links: Sequence[Mapping[str, str]], details: Mapping[str, Any]) -> Page:  # fmt: skip
    """An execution waits for an approval; ``links`` are the approvers' signed links."""
    return Page(
        trigger="approval_requested", subject=f"approval:{approval_id}", title=title, text=text,
        details={"execution_id": execution_id, **details}, links=tuple(links), **_targets(event_id, incident_id),
    )  # fmt: skip


def execution_failed(*, execution_id: str, error: str | None, event_id: Any, incident_id: Any) -> Page:
    """An execution failed (a step failed, or it ran out of time)."""
    facts = _targets(event_id, incident_id)
    subject = f"incident:{facts['incident_id']}" if facts["incident_id"] else f"execution:{execution_id}"
    return Page(
        trigger="execution_failed", subject=subject, title=f"Execution failed: {execution_id}",
        text=f"Execution {execution_id} failed: {error or 'no error recorded'}.",
        details={"execution_id": execution_id},
        links=({"label": "Open the execution", "url": f"/console/executions/{execution_id}"},), **facts,
    )  # fmt: skip


def rollback_failed(*, execution_id: str, error: str | None, event_id: Any, incident_id: Any) -> Page:
    """A rollback failed: the target may be half-changed."""
    return Page(
        trigger="rollback_failed", subject=f"execution:{execution_id}", title=f"Rollback failed: execution {execution_id}",
        text=(f"The rollback of execution {execution_id} failed: {error}\nThe target may be partly changed; "
              f"see GET /api/v1/autonomous/executions/{execution_id}."),
        details={"execution_id": execution_id},
        links=({"label": "Open the execution", "url": f"/console/executions/{execution_id}"},),
        **_targets(event_id, incident_id),
    )  # fmt: skip

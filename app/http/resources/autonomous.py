"""Autonomous response: ``/api/v1/autonomous/analyze | decisions | execute | executions | feedback``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import falcon

from ...config import Settings
from ...db import in_transaction
from ...decisions import learning
from ...decisions.analysis import analysis_json, analyze_event
from ...errors import BrokerUnavailable, InvalidInput, NotFound
from ...executions import approvals, control
from ...executions.store import STATUSES, execution_json
from ...models import DecisionLog, Execution
from ...present import iso
from ...publishing import Dispatcher
from ..media import read_json
from ..middleware import actor_of, principal_of
from ..params import integer, page, parse_uuid, timestamp

logger = logging.getLogger(__name__)


def _execution_id(value: str) -> str:
    parsed = parse_uuid(value.removeprefix("exec_"))
    if parsed is None:
        raise NotFound(f"no execution {value}")
    return str(parsed)


class Analyze:
    permissions = {"POST": "operate"}

    def __init__(self, *, settings: Settings, max_body_bytes: int) -> None:
        self.settings, self.max_body_bytes = settings, max_body_bytes

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = read_json(req, max_bytes=self.max_body_bytes)
        if not isinstance(body, dict) or parse_uuid(str(body.get("event_id"))) is None:
            raise InvalidInput("event_id (an event's id) is required", field="event_id")
        if not isinstance(body.get("context") or {}, dict):
            raise InvalidInput("context is an object", field="context")
        resp.media = analyze_event(body, settings=self.settings, actor=actor_of(req))


class Decisions:
    permissions = {"GET": "read"}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        limit, offset = page(req)
        query = DecisionLog.select().order_by(DecisionLog.id.desc())
        event_id, since = req.get_param("event_id"), timestamp(req, "since")
        if event_id:
            query = query.where(DecisionLog.event_id == parse_uuid(event_id))
        for name in ("decision_type", "decided_by", "risk_level"):
            if req.get_param(name):
                query = query.where(getattr(DecisionLog, name) == req.get_param(name))
        if req.get_param("rule_id"):
            query = query.where(DecisionLog.trigger_rule_id == integer(req, "rule_id", 0))
        if since:
            query = query.where(DecisionLog.created_at >= since)

        def work() -> dict[str, Any]:
            rows = [_decision_json(r) for r in query.limit(limit).offset(offset)]
            return {"decisions": rows, "total_count": query.count(), "limit": limit, "offset": offset}

        resp.media = in_transaction(work)


def _decision_json(row: DecisionLog) -> dict[str, Any]:
    return {
        **analysis_json(row),
        "event_id": str(row.event_id) if row.event_id else None,
        "incident_id": str(row.incident_id) if row.incident_id else None,
        "rule_id": row.trigger_rule_id,
        "rule_execution_id": row.rule_execution_id,
        "decision_type": row.decision_type,
        "decided_by": row.decided_by,
        "created_at": iso(row.created_at),
    }


class DecisionResource:
    permissions = {"GET": "read"}

    def on_get(self, req: falcon.Request, resp: falcon.Response, decision_id: int) -> None:
        row = in_transaction(lambda: DecisionLog.get_or_none(DecisionLog.id == decision_id))
        if row is None:
            raise NotFound(f"no decision {decision_id}")
        resp.media = _decision_json(row)


class Execute:
    permissions = {"POST": "operate"}

    def __init__(self, *, settings: Settings, max_body_bytes: int, dispatch: Dispatcher) -> None:
        self.settings, self.max_body_bytes, self.dispatch = settings, max_body_bytes, dispatch

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = read_json(req, max_bytes=self.max_body_bytes)
        row = in_transaction(lambda: control.request_execution(body, settings=self.settings, actor=actor_of(req)))
        try:
            self.dispatch("execute", str(row.id))
        except BrokerUnavailable:
            in_transaction(lambda: control.cancel(str(row.id), actor="system:broker-unavailable"))
            raise
        resp.status = falcon.HTTP_202
        # The row as this request queued it: read again, an executor may already have started it (the reply said
        # "running" for a request that queued), and the read was a second round trip.
        resp.media = execution_json(row)


class Executions:
    permissions = {"GET": "read"}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        limit, offset = page(req)
        query = Execution.select().order_by(Execution.created_at.desc())
        status = req.get_param("status")
        if status:
            if status not in STATUSES:
                raise InvalidInput(f"status is one of {', '.join(STATUSES)}", field="status")
            query = query.where(Execution.status == status)
        event_id, start, end = req.get_param("event_id"), timestamp(req, "start_time"), timestamp(req, "end_time")
        if event_id:
            query = query.where(Execution.event_id == parse_uuid(event_id))
        if req.get_param("decision_id"):
            query = query.where(Execution.decision_id == integer(req, "decision_id", 0))
        if start:
            query = query.where(Execution.created_at >= start)
        if end:
            query = query.where(Execution.created_at < end)

        def work() -> dict[str, Any]:
            rows = [execution_json(r, detail=False) for r in query.limit(limit).offset(offset)]
            return {"executions": rows, "total_count": query.count(), "limit": limit, "offset": offset}

        resp.media = in_transaction(work)


class ExecutionResource:
    """One execution, and its controls: cancel, rollback, approve, reject."""

    permissions = {"GET": "read", "POST": "operate"}

    def __init__(self, *, max_body_bytes: int, dispatch: Dispatcher, settings: Settings | None = None) -> None:
        self.max_body_bytes, self.dispatch, self.settings = max_body_bytes, dispatch, settings or Settings()

    def on_get(self, req: falcon.Request, resp: falcon.Response, execution_id: str) -> None:
        key = _execution_id(execution_id)

        def work() -> dict[str, Any]:
            row = Execution.get_or_none(Execution.id == key)
            if row is None:
                raise NotFound(f"no execution {execution_id}")
            return execution_json(row)

        resp.media = in_transaction(work)

    def _comment(self, req: falcon.Request) -> str | None:
        if not req.content_length:
            return None
        body = read_json(req, max_bytes=self.max_body_bytes)
        comment = body.get("comment") if isinstance(body, dict) else None
        if comment is not None and not isinstance(comment, str):
            raise InvalidInput("comment is a string", field="comment")
        return comment

    def on_post_cancel(self, req: falcon.Request, resp: falcon.Response, execution_id: str) -> None:
        key = _execution_id(execution_id)
        in_transaction(lambda: control.cancel(key, actor=actor_of(req)))
        resp.media = in_transaction(lambda: execution_json(Execution.get_by_id(key)))

    def on_post_rollback(self, req: falcon.Request, resp: falcon.Response, execution_id: str) -> None:
        key = _execution_id(execution_id)
        in_transaction(lambda: control.check_rollback(key))
        self.dispatch("rollback", key, actor_of(req))
        resp.status = falcon.HTTP_202
        resp.media = {"execution_id": key, "status": "rollback_requested"}

    def _answer(self, req: falcon.Request, resp: falcon.Response, execution_id: str, *, approve: bool) -> None:
        key, comment = _execution_id(execution_id), self._comment(req)
        principal = principal_of(req)
        role = principal.role if principal else "anonymous"
        answer: Callable[[], dict[str, Any]] = lambda: approvals.answer(  # noqa: E731
            key, approve=approve, actor=actor_of(req), role=role, comment=comment,
            allow_author=self.settings.approval_allow_author,
        )
        approval = in_transaction(answer)
        if approve:
            self.dispatch("execute", key)
        resp.media = {"execution_id": key, "approval": approval,
                      "status": in_transaction(lambda: Execution.get_by_id(key).status)}  # fmt: skip

    def on_post_approve(self, req: falcon.Request, resp: falcon.Response, execution_id: str) -> None:
        self._answer(req, resp, execution_id, approve=True)

    def on_post_reject(self, req: falcon.Request, resp: falcon.Response, execution_id: str) -> None:
        self._answer(req, resp, execution_id, approve=False)


class FeedbackResource:
    permissions = {"POST": "operate"}

    def __init__(self, *, max_body_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = learning.parse_feedback(read_json(req, max_bytes=self.max_body_bytes))
        resp.status = falcon.HTTP_201
        resp.media = in_transaction(lambda: learning.record_feedback(body, actor=actor_of(req)))


class TemplateApproval:
    """``DELETE /api/v1/autonomous/templates/{id}/approval-requirement``: an admin clears ``dangerous``."""

    permissions = {"DELETE": "admin"}

    def on_delete(self, req: falcon.Request, resp: falcon.Response, template_id: int) -> None:
        cleared = in_transaction(lambda: learning.clear_approval_requirement(template_id, actor=actor_of(req)))
        resp.media = {"template_id": template_id, "requires_approval": False, "changed": cleared}

"""Approvals: the queue of pending requests, answering one, and the signed links' confirmation page.

``GET /console/approvals`` lists what waits (risk, reasoning, business impact, the exact planned
requests with secrets masked); ``POST /console/approvals/{execution_id}/approve|reject`` answers
through :func:`app.executions.approvals.answer`, as the API does. ``GET
/console/approvals/confirm?token=…`` is where a signed link from an email or chat lands: it only
shows the request (:func:`app.executions.links.verify`); the answer is a POST with the session's
CSRF token (:func:`app.executions.links.redeem`). Nothing is approved by a GET.
"""

from __future__ import annotations

from typing import Any

import falcon

from ...db import in_transaction
from ...errors import ActionNotAllowed, Conflict, InvalidInput, InvalidLink
from ...executions import approvals, links
from ...executions.store import requests_text
from ...http.middleware import actor_of
from ...models import Approval, Execution
from ...publishing import Dispatcher
from ..forms import text
from ..page import Page, PageError, with_query
from ..queries import page_number, pending_approvals
from ..render import render

#: Longest comment kept with an answer, in characters.
MAX_COMMENT = 2000
#: The answers a form may give.
ANSWERS = ("approve", "reject")


def plan_of(approval: Approval, execution: Execution | None) -> dict[str, Any]:
    """What an approver reads: each requested action with its masked request, and every step planned."""
    requested = [{**entry, "text": requests_text([entry])} for entry in approval.requested_actions or []]
    steps = []
    if execution is not None:
        by_id = {str(a["id"]): a for a in execution.definition.get("actions") or []}
        for action_id in execution.definition.get("execution_order") or list(by_id):
            action = by_id.get(str(action_id)) or {}
            steps.append({"action_id": action_id, "name": action.get("name") or action_id,
                          "type": action.get("type") or action.get("integration"), "gated": bool(action.get("gated")),
                          "risk_level": (action.get("assessment") or {}).get("risk_level")})  # fmt: skip
    return {"requested": requested, "steps": steps}


def _dispatch_execute(dispatch: Dispatcher, execution_id: str) -> None:
    dispatch("execute", execution_id)


class ApprovalQueue(Page):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            page = page_number(req.get_param("page"))
        except InvalidInput as e:
            raise PageError(falcon.HTTP_400, f"{e.message}.") from None
        found = pending_approvals(page=page)
        items = [(a, x, plan_of(a, x)) for a, x in found["approvals"]]
        template = "_approvals.html" if req.get_param("fragment") == "1" else "approvals.html"
        render(req, resp, template, items=items, page=page, has_more=found["has_more"], total=found["total"],
               fragment_url=with_query("/console/approvals", page=page if page > 1 else None, fragment=1),
               link=lambda **p: with_query("/console/approvals", **p))  # fmt: skip


class ApprovalAnswer(Page):
    """``POST /console/approvals/{execution_id}/{approve|reject}`` with an optional comment."""

    def on_post(self, req: falcon.Request, resp: falcon.Response, execution_id: str, answer: str) -> None:
        if answer not in ANSWERS:
            raise PageError(falcon.HTTP_404, f"There is no answer {answer!r}: approve or reject.")
        signed, form, actor = self.signed(req), self.form(req), actor_of(req)
        role = signed.principal.role if signed else "anonymous"
        approve = answer == "approve"
        back = req.get_param("back") or "/console/approvals"
        back = back if back.startswith("/console/") else "/console/approvals"

        def work() -> dict[str, Any]:
            comment = text(form, "comment", max_length=MAX_COMMENT)
            result = in_transaction(lambda: approvals.answer(
                execution_id, approve=approve, actor=actor, role=role, comment=comment,
                allow_author=self.deps.settings.approval_allow_author))  # fmt: skip
            if approve:
                _dispatch_execute(self.deps.dispatch, execution_id)
            return result

        done = (f"Approved: execution {execution_id[:8]} is queued to run." if approve
                else f"Rejected: execution {execution_id[:8]} is cancelled.")  # fmt: skip
        self.act(req, resp, work, back=back, done=done)


class LinkConfirmation(Page):
    """Where a signed approval link lands: GET shows the request, POST answers it (once)."""

    access = {"GET": "read", "POST": "operate"}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        token = req.get_param("token") or ""
        signed = self.signed(req)
        person = signed.principal.person if signed else ""
        try:
            claims = links.verify(token, person=person)
        except InvalidLink as e:
            raise PageError(falcon.HTTP_403, f"{str(e)[:1].upper()}{str(e)[1:]}.") from None

        def load() -> tuple[Approval, Execution | None]:
            approval = Approval.get_by_id(claims.approval_id)
            return approval, Execution.get_or_none(Execution.id == claims.execution_id)

        approval, execution = in_transaction(load)
        render(req, resp, "approval_confirm.html", token=token, claims=claims, approval=approval, execution=execution,
               plan=plan_of(approval, execution))  # fmt: skip

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        signed, form, actor = self.signed(req), self.form(req), actor_of(req)
        answer = form.get("answer")
        if answer not in ANSWERS:
            raise PageError(falcon.HTTP_400, "Choose approve or reject.")
        try:
            comment = text(form, "comment", max_length=MAX_COMMENT)
        except InvalidInput as e:
            raise PageError(falcon.HTTP_400, f"{e.message}.") from None
        token = form.get("token") or ""
        person, role = (signed.principal.person, signed.principal.role) if signed else ("", "anonymous")
        try:
            result = links.redeem(token, person=person, actor=actor, role=role, approve=answer == "approve",
                                  comment=comment)  # fmt: skip
        except InvalidLink as e:
            raise PageError(falcon.HTTP_403, f"{str(e)[:1].upper()}{str(e)[1:]}.") from None
        except (ActionNotAllowed, Conflict) as e:  # the answer's own rules (requester, role, author), or answered
            raise PageError(falcon.HTTP_403 if isinstance(e, ActionNotAllowed) else falcon.HTTP_409, f"{e}.") from None
        execution_id = _execution_of(result)
        if answer == "approve" and execution_id:
            _dispatch_execute(self.deps.dispatch, execution_id)
        render(req, resp, "approval_answered.html", approved=answer == "approve", execution_id=execution_id,
               approval=result)  # fmt: skip


def _execution_of(result: dict[str, Any]) -> str:
    approval_id = result.get("approval_id")
    if approval_id is None:
        return ""
    row = in_transaction(lambda: Approval.get_or_none(Approval.id == approval_id))
    return str(row.execution_id) if row else ""


def routes(deps: Any) -> list[tuple[Any, ...]]:
    return [
        ("/console/approvals", ApprovalQueue(deps)),
        ("/console/approvals/confirm", LinkConfirmation(deps)),
        ("/console/approvals/{execution_id}/{answer}", ApprovalAnswer(deps)),
    ]

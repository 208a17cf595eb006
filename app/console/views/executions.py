"""Executions: the list and one execution (live step progress and logs), with cancel and rollback.

``GET /console/executions``, ``GET /console/executions/{id}`` (``?fragment=1`` answers the live
part the page's script swaps in), ``POST /console/executions/{id}/cancel|rollback`` through
:mod:`app.executions.control`, as the API does (a rollback is handed to the ``rollback`` actor
through ``deps.dispatch``).
"""

from __future__ import annotations

from typing import Any

import falcon

from ...db import in_transaction
from ...errors import InvalidInput
from ...executions import control
from ...executions.rollback import ROLLBACK_FROM
from ...executions.store import TERMINAL, execution_json
from ...http.middleware import actor_of
from ...http.params import parse_uuid
from ...models import Approval, Execution
from ..page import Page, PageError, with_query
from ..queries import executions_page, page_number
from ..render import render
from .approvals import plan_of

#: Seconds between two refreshes of a running execution's page.
LIVE_INTERVAL_S = 2


def _key(execution_id: str) -> str:
    parsed = parse_uuid(execution_id.removeprefix("exec_"))
    if parsed is None:
        raise PageError(falcon.HTTP_404, f"There is no execution {execution_id!r}.")
    return str(parsed)


class ExecutionList(Page):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            page = page_number(req.get_param("page"))
            found = executions_page(status=req.get_param("status"), page=page)
        except InvalidInput as e:
            raise PageError(falcon.HTTP_400, f"{e.message}.") from None
        status = found["selected"]
        template = "_executions.html" if req.get_param("fragment") == "1" else "executions.html"
        render(req, resp, template, page=page, **found,
               fragment_url=with_query("/console/executions", status=status, page=page if page > 1 else None, fragment=1),
               link=lambda **p: with_query("/console/executions", **{"status": status, **p}))  # fmt: skip


class ExecutionPage(Page):
    def on_get(self, req: falcon.Request, resp: falcon.Response, execution_id: str) -> None:
        key = _key(execution_id)

        def load() -> dict[str, Any] | None:
            row = Execution.get_or_none(Execution.id == key)
            if row is None:
                return None
            approval = Approval.get_or_none(Approval.execution_id == row.id)
            pending = approval if approval is not None and approval.status == "pending" else None
            return {"x": execution_json(row), "definition": row.definition,
                    "plan": plan_of(pending, row) if pending else None, "pending": pending}  # fmt: skip

        found = in_transaction(load)
        if found is None:
            raise PageError(falcon.HTTP_404, f"There is no execution {execution_id!r}.")
        x = found["x"]
        live = x["status"] not in TERMINAL or x["status"] == "rolling_back"
        template = "_execution.html" if req.get_param("fragment") == "1" else "execution.html"
        render(req, resp, template, x=x, name=found["definition"].get("name"), live=live, pending=found["pending"],
               plan=found["plan"], interval=LIVE_INTERVAL_S, fragment_url=f"/console/executions/{key}?fragment=1",
               may_cancel=x["status"] not in TERMINAL and x["status"] != "rolling_back",
               may_rollback=x["status"] in ROLLBACK_FROM and not x["dry_run"])  # fmt: skip


class ExecutionControl(Page):
    """``POST /console/executions/{id}/cancel|rollback`` (role ``operate``)."""

    def on_post(self, req: falcon.Request, resp: falcon.Response, execution_id: str, control_name: str) -> None:
        key, actor = _key(execution_id), actor_of(req)
        back = f"/console/executions/{key}"
        if control_name == "cancel":
            self.act(req, resp, lambda: in_transaction(lambda: control.cancel(key, actor=actor)), back=back,
                     done="Execution cancelled: no further step starts (a running step finishes).")  # fmt: skip
        elif control_name == "rollback":

            def rollback() -> None:
                in_transaction(lambda: control.check_rollback(key))
                self.deps.dispatch("rollback", key, actor)

            self.act(req, resp, rollback, back=back,
                     done="Rollback requested: the completed steps' compensating actions run, newest first.")  # fmt: skip
        else:
            raise PageError(falcon.HTTP_404, f"There is no control {control_name!r} of an execution.")


def routes(deps: Any) -> list[tuple[Any, ...]]:
    return [
        ("/console/executions", ExecutionList(deps)),
        ("/console/executions/{execution_id}", ExecutionPage(deps)),
        ("/console/executions/{execution_id}/{control_name}", ExecutionControl(deps)),
    ]

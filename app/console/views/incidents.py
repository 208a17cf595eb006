"""Incidents: the list (filters, counts, live refresh, pages) and one incident (timeline and its lifecycle).

``GET /console/incidents``, ``GET /console/incidents/{id}``, and the operators' changes
``POST /console/incidents/{id}/{change}`` (acknowledge, resolve, close, reopen, assign, note,
silence), each through the same domain functions as the API and the CLI. The timeline names the
agent behind each of its proposals' decisions, approvals and executions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import falcon

from ...agents.status import actions
from ...correlation.query import STATUSES
from ...db import in_transaction
from ...errors import InvalidInput, NotFound
from ...events.schema import SEVERITIES
from ...http.middleware import actor_of
from ...incidents import lifecycle
from ...incidents.timeline import timeline
from ..forms import integer, text
from ..page import Page, PageError, with_query
from ..queries import incident_filter, incidents_page, page_number
from ..render import render

#: The lifecycle's buttons: change -> (label, the statuses it applies to), in the order shown.
TRANSITIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    verb: (verb.capitalize(), sources) for verb, (sources, _, _) in lifecycle.TRANSITIONS.items()
}
#: What the page says once a change is made.
DONE = {"acknowledge": "Incident acknowledged.", "resolve": "Incident resolved.", "close": "Incident closed.",
        "reopen": "Incident reopened."}  # fmt: skip
#: How long a silence made from an incident lasts unless the form says otherwise (minutes).
SILENCE_MINUTES = 120


class IncidentList(Page):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            f = incident_filter(status=req.get_param("status"), severity=req.get_param("severity"),
                                        host=req.get_param("host"), assignee=req.get_param("assignee"))  # fmt: skip
            page = page_number(req.get_param("page"))
        except InvalidInput as e:
            raise PageError(falcon.HTTP_400, f"{e.message}.") from None
        found = incidents_page(f, page=page)
        template = "_incidents.html" if req.get_param("fragment") == "1" else "incidents.html"
        params = f.params()
        render(req, resp, template, filter=f, page=page, statuses=STATUSES, severities=SEVERITIES, **found,
               self_url=with_query("/console/incidents", **params, page=page if page > 1 else None),
               fragment_url=with_query("/console/incidents", **params, page=page if page > 1 else None, fragment=1),
               link=lambda **changes: with_query("/console/incidents", **{**params, **changes}))  # fmt: skip


class IncidentPage(Page):
    def on_get(self, req: falcon.Request, resp: falcon.Response, incident_id: str) -> None:
        try:
            shown = timeline(incident_id)
        except NotFound:
            raise PageError(falcon.HTTP_404, f"There is no incident {incident_id!r}.") from None
        incident = shown["incident"]
        entries = shown["entries"]
        executions = [e["details"] for e in entries if e["kind"] == "execution"]
        # agents' proposals for this incident, and which timeline entries are theirs
        agent_actions = in_transaction(lambda: actions(incident_id=incident["id"]))
        by_agent = {("execution", a["execution_id"]): a["agent"] for a in agent_actions}
        by_agent.update({("decision", a["decision_id"]): a["agent"] for a in agent_actions})
        render(req, resp, "incident.html", incident=incident, entries=list(reversed(entries)),
               agent_actions=agent_actions, agent_of=lambda e: by_agent.get(("execution", e["details"].get(
                   "execution_id"))) or by_agent.get(("decision", e["details"].get("decision_id"))),
               omitted=shown.get("omitted") or {}, executions=executions,
               transitions=[(verb, label) for verb, (label, sources) in TRANSITIONS.items()
                            if incident["status"] in sources],
               root_causes=[e for e in entries if e["kind"] == "correlation"][-5:],
               silence_minutes=SILENCE_MINUTES)  # fmt: skip


class IncidentChange(Page):
    """The operator's changes to one incident (POST, role ``operate``, CSRF-checked by the gate)."""

    def on_post(self, req: falcon.Request, resp: falcon.Response, incident_id: str, change: str) -> None:
        form, actor = self.form(req), actor_of(req)
        back = f"/console/incidents/{incident_id}"
        work: Callable[[], Any]
        comment = _optional(form, "comment")
        if change in TRANSITIONS:
            verb = getattr(lifecycle, change)
            work = lambda: verb(incident_id, actor=actor, comment=comment())  # noqa: E731
            done = DONE[change]
        elif change == "assign":
            work = lambda: lifecycle.assign(  # noqa: E731
                incident_id,
                assignee=text(form, "assignee", required=True, max_length=lifecycle.MAX_NAME) or "",
                actor=actor,
                comment=comment(),
            )
            done = f"Incident assigned to {(form.get('assignee') or '').strip()}."
        elif change == "note":
            work = lambda: lifecycle.add_note(  # noqa: E731
                incident_id, text=text(form, "text", required=True, max_length=lifecycle.MAX_TEXT) or "", actor=actor
            )
            done = "Note added."
        elif change == "silence":
            from ...silences.store import silence_from_incident

            def work() -> Any:
                minutes = integer(form, "duration_minutes", default=SILENCE_MINUTES, low=1, high=10080)
                return silence_from_incident(incident_id, actor=actor, duration_minutes=minutes, comment=comment())

            done = "Silence created: matching events are stored but fire no rule and page nobody."
        else:
            raise PageError(falcon.HTTP_404, f"There is no change {change!r} of an incident.")
        self.act(req, resp, work, back=back, done=done)


def _optional(form: dict[str, str], name: str) -> Callable[[], str | None]:
    return lambda: text(form, name, max_length=lifecycle.MAX_TEXT)


def routes(deps: Any) -> list[tuple[Any, ...]]:
    return [
        ("/console/incidents", IncidentList(deps)),
        ("/console/incidents/{incident_id}", IncidentPage(deps)),
        ("/console/incidents/{incident_id}/{change}", IncidentChange(deps)),
    ]

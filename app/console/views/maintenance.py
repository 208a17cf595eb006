"""Maintenance windows: list, create (prefilled from an incident's hosts), delete.

``GET /console/maintenance[?incident_id=]``, ``POST /console/maintenance`` and
``POST /console/maintenance/{id}/delete``, through :mod:`app.decisions.maintenance_store` and the
API's validation (:func:`app.decisions.maintenance.parse_window`). A window blocks remediation of
the hosts, services and tags in its scope while it is in force, and notifications when it says so.
"""

from __future__ import annotations

import uuid
from typing import Any

import falcon

from ...db import in_transaction
from ...decisions import maintenance_store
from ...decisions.maintenance import parse_window
from ...errors import InvalidInput
from ...http.middleware import actor_of
from ...models import Incident
from ..page import Page, PageError
from ..render import render

#: The form's fields an error may name (others are shown above the form).
FIELDS = ("name", "description", "hosts", "services", "tags", "starts_at", "ends_at")


def _names(text: str | None) -> list[str]:
    return [n.strip() for n in (text or "").replace("\n", ",").split(",") if n.strip()]


def body_of_form(form: dict[str, str]) -> dict[str, Any]:
    """The form as the API's body (comma-separated scope names; blank times left out)."""
    body: dict[str, Any] = {
        "name": (form.get("name") or "").strip(),
        "scope": {key: _names(form.get(key)) for key in ("hosts", "services", "tags")},
        "suppress_notifications": form.get("suppress_notifications") == "on",
    }
    if (form.get("description") or "").strip():
        body["description"] = form["description"].strip()
    for key in ("starts_at", "ends_at"):
        if (form.get(key) or "").strip():
            body[key] = form[key].strip()
    return body


def prefill(incident_id: str) -> dict[str, str]:
    try:
        key = uuid.UUID(incident_id)
    except ValueError:
        raise PageError(falcon.HTTP_404, f"There is no incident {incident_id!r}.") from None
    incident = in_transaction(lambda: Incident.get_or_none(Incident.id == key))
    if incident is None:
        raise PageError(falcon.HTTP_404, f"There is no incident {incident_id!r}.")
    return {"name": f"Maintenance for {incident.title}"[:200], "hosts": ", ".join(incident.hosts or []),
            "services": ", ".join(incident.services or [])}  # fmt: skip


class Windows(Page):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        incident_id = req.get_param("incident_id")
        self._page(req, resp, form=prefill(incident_id) if incident_id else {}, errors={})

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        form = self.form(req)
        try:
            columns = parse_window(body_of_form(form))
        except InvalidInput as e:
            field = (e.field or "form").split(".")[-1] if (e.field or "").startswith("scope.") else (e.field or "form")
            self._page(req, resp, form=form, errors={field if field in FIELDS else "form": e.message},
                       status=falcon.HTTP_400)  # fmt: skip
            return
        self.act(req, resp, lambda: in_transaction(lambda: maintenance_store.create(columns, actor=actor_of(req))),
                 back="/console/maintenance", done=lambda w: f"Maintenance window {w['name']!r} created.")  # fmt: skip

    def _page(self, req: falcon.Request, resp: falcon.Response, *, form: dict[str, str], errors: dict[str, str],
              status: str = falcon.HTTP_200) -> None:  # fmt: skip
        windows = in_transaction(maintenance_store.listing)
        render(req, resp, "maintenance.html", status=status, windows=windows, form=form, errors=errors)


class WindowDelete(Page):
    def on_post(self, req: falcon.Request, resp: falcon.Response, window_id: int) -> None:
        self.act(req, resp, lambda: in_transaction(lambda: maintenance_store.delete(window_id, actor=actor_of(req))),
                 back="/console/maintenance", done=f"Maintenance window {window_id} deleted.")  # fmt: skip


def routes(deps: Any) -> list[tuple[Any, ...]]:
    return [
        ("/console/maintenance", Windows(deps)),
        ("/console/maintenance/{window_id:int}/delete", WindowDelete(deps)),
    ]

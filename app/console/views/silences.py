"""Silences: active, pending and expired ones, a form to create one (prefilled from an incident), expire.

``GET /console/silences?state=&incident_id=``, ``POST /console/silences`` (create) and
``POST /console/silences/{id}/expire``, through :mod:`app.silences.store` like the API. The form
takes one matcher a line, written as on Alertmanager's command line (``host=web-1``,
``service=~api|web``, ``severity!=info``); ``?incident_id=`` fills in the matchers of the
incident's hosts and services and a comment, so silencing an incident is one click and a submit.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import falcon

from ...db import in_transaction
from ...errors import InvalidInput
from ...http.middleware import actor_of
from ...models import Incident
from ...present import iso
from ...silences import store
from ...silences.matching import escape, parse_matcher_text
from ...timeutil import now as utcnow
from ..forms import integer
from ..page import Page, PageError
from ..render import render

#: Minutes a silence made from the form lasts unless the form says otherwise.
DEFAULT_MINUTES = 120
#: Silences shown per state.
LIMIT = 100


def _one_of(name: str, values: list[str]) -> str:
    return f"{name}={values[0]}" if len(values) == 1 else f"{name}=~{'|'.join(escape(v) for v in values)}"


def prefill(incident_id: str) -> dict[str, str]:
    """The form's fields for silencing incident ``incident_id``: its hosts and services, and why.

    Raises:
      PageError: 404, there is no such incident.
    """
    try:
        key = uuid.UUID(incident_id)
    except ValueError:
        raise PageError(falcon.HTTP_404, f"There is no incident {incident_id!r}.") from None
    incident = in_transaction(lambda: Incident.get_or_none(Incident.id == key))
    if incident is None:
        raise PageError(falcon.HTTP_404, f"There is no incident {incident_id!r}.")
    hosts = sorted({h for h in incident.hosts or [] if h})
    services = sorted({s for s in incident.services or [] if s})
    lines = ([_one_of("host", hosts)] if hosts else []) + ([_one_of("service", services)] if services else [])
    return {"matchers": "\n".join(lines), "duration_minutes": str(DEFAULT_MINUTES),
            "comment": f"Silenced from incident {incident_id}: {incident.title}"[: store.MAX_COMMENT_CHARS]}  # fmt: skip


def body_of_form(form: dict[str, str]) -> dict[str, Any]:
    """The form as the API's body, for :func:`app.silences.store.create`.

    Raises:
      InvalidInput: a matcher line, the duration or the start is not well formed (naming the field).
    """
    lines = [line for line in (form.get("matchers") or "").splitlines() if line.strip()]
    if not lines:
        raise InvalidInput("at least one matcher is required, e.g. host=web-1", field="matchers")
    minutes = integer(
        form, "duration_minutes", default=DEFAULT_MINUTES, low=1, high=store.MAX_INCIDENT_SILENCE_MINUTES
    )
    starts = (form.get("starts_at") or "").strip() or None
    body: dict[str, Any] = {"matchers": [parse_matcher_text(line) for line in lines],
                            "comment": (form.get("comment") or "").strip()}  # fmt: skip
    if starts:
        try:  # a datetime-local field has no offset: UTC, as the API takes it
            begin = datetime.fromisoformat(starts.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput(f"starts_at is a date and time, got {starts!r}", field="starts_at") from None
        begin = begin if begin.tzinfo else begin.replace(tzinfo=UTC)
        body["starts_at"] = iso(begin)
    else:
        begin = utcnow()
    body["ends_at"] = iso(begin + timedelta(minutes=minutes))
    return body


class Silences(Page):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        incident_id = req.get_param("incident_id")
        form = prefill(incident_id) if incident_id else {"duration_minutes": str(DEFAULT_MINUTES)}
        self._page(req, resp, form=form, errors={}, incident_id=incident_id)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        form = self.form(req)
        actor = actor_of(req)
        try:
            created = store.create(body_of_form(form), actor=actor)
        except InvalidInput as e:
            field = (e.field or "form").split(".", 1)[0].split("[", 1)[0]
            self._page(req, resp, form=form, errors={field if field in _FIELDS else "form": e.message},
                       incident_id=form.get("incident_id"), status=falcon.HTTP_400)  # fmt: skip
            return
        self.act(req, resp, lambda: created, back="/console/silences",
                 done=f"Silence {created['id']} created until {created['ends_at']}: matching events fire no rule.")  # fmt: skip

    def _page(self, req: falcon.Request, resp: falcon.Response, *, form: dict[str, str], errors: dict[str, str],
              incident_id: str | None, status: str = falcon.HTTP_200) -> None:  # fmt: skip
        lists = {state: store.list_silences(state=state, limit=LIMIT) for state in store.STATES}
        render(req, resp, "silences.html", status=status, lists=lists, form=form, errors=errors,
               incident_id=incident_id or "")  # fmt: skip


#: The form's fields an error may name (others are shown above the form).
_FIELDS = ("matchers", "duration_minutes", "starts_at", "ends_at", "comment")


class SilenceExpire(Page):
    def on_post(self, req: falcon.Request, resp: falcon.Response, silence_id: int) -> None:
        self.act(req, resp, lambda: store.expire(silence_id, actor=actor_of(req)), back="/console/silences",
                 done=f"Silence {silence_id} expired.")  # fmt: skip


def routes(deps: Any) -> list[tuple[Any, ...]]:
    return [("/console/silences", Silences(deps)), ("/console/silences/{silence_id:int}/expire", SilenceExpire(deps))]

"""The agents: their status (health, heartbeats, last run and error, readiness) and one agent's configuration.

``GET /console/agents`` lists what ``GET /api/v1/agents/status`` answers, with the resource leases
held now. ``GET /console/agents/{name}`` shows one agent; its configuration is changed by an admin
(``POST /console/agents/{name}/config``: enabled, automation level, approval required, thresholds,
interval, routes) and it is started or stopped by an operator (``POST .../start``, ``.../stop``),
through the registry functions the API uses (:mod:`app.agents.registry`), audited the same way.
"""

from __future__ import annotations

import math
from typing import Any

import falcon

from ...agents import registry, routing
from ...agents.status import actions, status
from ...db import in_transaction
from ...errors import InvalidInput, NotFound
from ...http.middleware import actor_of
from ...timeutil import now
from ..page import Page, PageError
from ..render import render

#: The form's fields an error may name (others are shown above the form).
FIELDS = ("automation_level", "thresholds", "interval_seconds", "routes")


def thresholds_of_text(text: str) -> dict[str, float]:
    """``name = number`` per line (the form's thresholds).

    Raises:
      InvalidInput: a line that is not ``name = number`` (``field="thresholds"``).
    """
    found: dict[str, float] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not sep or not name.strip() or not math.isfinite(number):
            raise InvalidInput(f"a threshold is written name = number, one per line, not {line.strip()!r}",
                               field="thresholds")  # fmt: skip
        found[name.strip()] = int(number) if number.is_integer() and "." not in value else number
    return found


def body_of_form(name: str, form: dict[str, str]) -> dict[str, Any]:
    """The form as the API's body for ``POST /api/v1/agents/config`` (every field: the form shows them all)."""
    body: dict[str, Any] = {
        "name": name,
        "enabled": form.get("enabled") == "on",
        "approval_required": form.get("approval_required") == "on",
        "automation_level": form.get("automation_level") or "",
        "thresholds": thresholds_of_text(form.get("thresholds") or ""),
        "routes": routing.routes_of_text(form.get("routes") or ""),
    }
    interval = (form.get("interval_seconds") or "").strip()
    try:
        body["interval_seconds"] = int(interval)
    except ValueError:
        raise InvalidInput(f"interval_seconds is a whole number of seconds, not {interval!r}",
                           field="interval_seconds") from None  # fmt: skip
    return body


def form_of(config: dict[str, Any]) -> dict[str, str]:
    """An agent's configuration as the form shows it."""
    return {
        "enabled": "on" if config["enabled"] else "",
        "approval_required": "on" if config["approval_required"] else "",
        "automation_level": config["automation_level"],
        "thresholds": "\n".join(f"{k} = {v}" for k, v in sorted(config["thresholds"].items())),
        "interval_seconds": str(config["interval_seconds"]),
        "routes": routing.routes_as_text(config["routes"]),
    }


class AgentList(Page):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        shown = status(now(), interval_s=self.deps.settings.agent_heartbeat_s)
        render(req, resp, "agents.html", agents=shown["agents"], leases=shown["leases"], checked_at=shown["checked_at"])


def show(page: Page, req: falcon.Request, resp: falcon.Response, name: str, *, form: dict[str, str] | None = None,
         errors: dict[str, str] | None = None, code: str = falcon.HTTP_200) -> None:  # fmt: skip
    """One agent's page: its status, and its configuration in the form (as sent back, with errors, after a 400)."""
    try:
        config = in_transaction(lambda: registry.config_json(registry.get(name)))
    except NotFound:
        raise PageError(falcon.HTTP_404, f"There is no agent {name!r}.") from None
    shown = status(now(), interval_s=page.deps.settings.agent_heartbeat_s)
    agent = next(a for a in shown["agents"] if a["name"] == name)
    recent = in_transaction(lambda: actions(agent=name, limit=20))
    mine = {a["execution_id"] for a in recent if not a["finished"]}
    leases = [lease for lease in shown["leases"] if lease["execution_id"] in mine]
    render(req, resp, "agent.html", status=code, config=config, agent=agent, form=form or form_of(config),
           errors=errors or {}, levels=registry.AUTOMATION_LEVELS, leases=leases, actions=recent,
           bounds=(registry.MIN_INTERVAL_S, registry.MAX_INTERVAL_S))  # fmt: skip


class AgentPage(Page):
    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        show(self, req, resp, name)


class AgentConfigure(Page):
    """An admin changes the configuration: it decides what runs without a human, as on the API."""

    access = {"POST": "admin"}

    def on_post(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        form = self.form(req)
        try:
            columns = registry.parse_config(body_of_form(name, form))
        except InvalidInput as e:
            field = (e.field or "form").split("[", 1)[0].split(".", 1)[0]
            show(self, req, resp, name, form=form, errors={field if field in FIELDS else "form": e.message},
                      code=falcon.HTTP_400)  # fmt: skip
            return
        self.act(req, resp, lambda: in_transaction(lambda: registry.configure(columns, actor=actor_of(req), now=now())),
                 back=f"/console/agents/{name}", done=f"Agent {name!r} configured.")  # fmt: skip


class AgentRunning(Page):
    """An operator starts or stops an agent: its schedule and its queue's work resume or pause."""

    def on_post(self, req: falcon.Request, resp: falcon.Response, name: str, verb: str) -> None:
        if verb not in ("start", "stop"):
            raise PageError(falcon.HTTP_404, f"There is no change {verb!r} of an agent.")
        running = verb == "start"
        self.act(req, resp, lambda: in_transaction(lambda: registry.set_running(name, running=running,
                                                                                actor=actor_of(req), now=now())),
                 back=f"/console/agents/{name}", done=f"Agent {name!r} {'started' if running else 'stopped'}.")  # fmt: skip


def routes(deps: Any) -> list[tuple[Any, ...]]:
    return [
        ("/console/agents", AgentList(deps)),
        ("/console/agents/{name}", AgentPage(deps)),
        ("/console/agents/{name}/config", AgentConfigure(deps)),
        ("/console/agents/{name}/{verb}", AgentRunning(deps)),
    ]

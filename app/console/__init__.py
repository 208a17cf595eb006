"""The web console at ``/console``: server-rendered pages over the same domain code as the API and CLI.

Layout: :mod:`.session` (sign-in sessions and cookies), :mod:`.gate` (the session, role and CSRF
checks of every page), :mod:`.page` (the base class of console resources), :mod:`.render` (Jinja2),
:mod:`.forms` (reading forms), and one module per page in :mod:`.views`. Like :mod:`app.http` it
never imports the actors: work for them goes through ``deps.dispatch``.
"""

from __future__ import annotations

from typing import Any

import falcon

from . import gate
from .page import Page, see_other
from .views import (
    agents,
    approvals,
    cost,
    deadletters,
    executions,
    health,
    incidents,
    maintenance,
    rules,
    signin,
    silences,
    static,
    topology,
)

#: The page modules whose ``routes(deps)`` are installed, in order.
VIEWS = [
    signin,
    static,
    incidents,
    approvals,
    executions,
    rules,
    silences,
    maintenance,
    topology,
    cost,
    agents,
    deadletters,
    health,
]


class Home(Page):
    """``/`` and ``/console`` lead to the incidents (via sign-in when there is no session)."""

    access = {"GET": None}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        see_other(resp, "/console/incidents")


def install(app: falcon.App, deps: Any) -> None:
    """Register the console's middleware, error pages and every page's routes on ``app``.

    Raises:
      TypeError: a route's resource is not a :class:`Page` (it would skip the gate: fail closed).
    """
    gate.install(app)
    home = Home(deps)
    app.add_route("/", home)
    app.add_route("/console", home)
    for view in VIEWS:
        for route in view.routes(deps):
            path, resource, *suffix = route
            if not isinstance(resource, Page):
                raise TypeError(f"{path}: console resources are Pages, so the gate checks them")
            app.add_route(path, resource, **({"suffix": suffix[0]} if suffix else {}))

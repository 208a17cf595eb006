"""Rendering console pages: one Jinja2 environment over the package's templates, autoescaped.

Every page extends ``base.html`` (``{% block title %}``, ``{% block content %}``) and gets, besides
what its view passes: ``principal`` (who is signed in, or None), ``may(permission)``,
``csrf_token`` for its forms, ``nav`` and ``flashes``. Templates and static files ship inside the
package: the console fetches nothing at run time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import falcon
import jinja2

from .. import __version__
from .session import Signed, take_flashes

#: The navigation, in order: (label, path). Pages match by path prefix.
NAV: tuple[tuple[str, str], ...] = (
    ("Incidents", "/console/incidents"),
    ("Approvals", "/console/approvals"),
    ("Executions", "/console/executions"),
    ("Rules", "/console/rules"),
    ("Silences", "/console/silences"),
    ("Maintenance", "/console/maintenance"),
    ("Topology", "/console/topology"),
    ("Agents", "/console/agents"),
    ("Cost", "/console/cost"),
    ("Dead letters", "/console/dead-letters"),
    ("Health", "/console/health"),
)


def when(value: datetime | str | None) -> str:
    """An instant as ``2024-05-01 03:00:00Z`` (UTC, seconds), or an em dash."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return str(value)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def ago(value: datetime | str | None, *, now: datetime | None = None) -> str:
    """How long ago ``value`` was, coarsely (``42 s``, ``5 min``, ``3 h``, ``2 d``)."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    seconds = max(0, int(((now or datetime.now(UTC)) - value).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("app.console", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    env.filters["ago"] = ago
    env.globals["version"] = __version__
    return env


#: Built once per process: templates compile on first use and stay cached.
environment = _environment()


def render(req: falcon.Request, resp: falcon.Response, template: str, /, *, status: str = falcon.HTTP_200,
           **context: Any) -> None:  # fmt: skip
    """Render ``template`` as the response's HTML, with the console's common context added.

    ``template`` is positional-only, so a page may pass a variable named ``template`` in ``context``.
    """
    signed: Signed | None = getattr(req.context, "console", None)
    principal = signed.principal if signed else None
    fragment = template.rsplit("/", 1)[-1].startswith("_")
    resp.status = status
    resp.content_type = falcon.MEDIA_HTML
    resp.text = environment.get_template(template).render(
        principal=principal,
        may=(lambda permission: bool(principal and principal.may(permission))),
        csrf_token=signed.csrf_token if signed else "",
        nav=[(label, path, req.path.startswith(path)) for label, path in NAV],
        # a fragment (a live part fetched by the page's script) leaves the messages to the next full page
        flashes=[] if fragment else take_flashes(signed),
        path=req.path,
        relative_uri=req.relative_uri,
        **context,
    )

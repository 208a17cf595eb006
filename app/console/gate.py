"""The console's gate: session, role and CSRF checks before every console responder, and its answers.

Falcon middleware, installed by :func:`app.console.install`. For a :class:`~app.console.page.Page`
it finds the session of the ``oc_session`` cookie, checks the role against the page's ``access``
(failing closed), and for every POST reads the form and requires its ``csrf_token`` to be the
session's. It also answers the console's errors with HTML pages and sends the security headers
(a strict Content-Security-Policy: scripts and styles from this site only).
"""

from __future__ import annotations

import logging
from typing import Any

import falcon

from ..errors import TransientError
from ..http import errors as api_errors
from .forms import read_form
from .page import Page, PageError, SignInRequired, with_query
from .render import render
from .session import COOKIE, find, tokens_match

logger = logging.getLogger(__name__)

#: Headers of every console answer. No inline script or style is allowed, so injected markup runs nothing.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # approval-link pages carry a token in their URL: never hand it to another site
    "Referrer-Policy": "no-referrer",
}


class Gate:
    """Authenticates console pages by session; see the module's docstring."""

    def process_resource(self, req: falcon.Request, resp: falcon.Response, resource: Any, params: dict) -> None:
        if not isinstance(resource, Page):
            return
        permission = resource.access.get(req.method, "admin")
        signed = find(req.cookies.get(COOKIE))
        req.context.console = signed
        if signed is not None:
            req.context.principal = signed.principal  # who acts, for the audit log (actor_of)
        if permission is None:
            return
        if signed is None:
            raise SignInRequired(req.relative_uri if req.method == "GET" else req.path)
        if not signed.principal.may(permission):
            raise PageError(falcon.HTTP_403, f"Your role ({signed.principal.role}) may not {permission} here.")
        if req.method == "POST":
            req.context.form = read_form(req)
            if not tokens_match(req.context.form.get("csrf_token"), signed.csrf_token):
                logger.warning("Refused a console POST to %s without a valid CSRF token (key %r).",
                               req.path, signed.principal.key_id)  # fmt: skip
                raise PageError(falcon.HTTP_403, "This form did not come from your console session "
                                "(a missing or stale security token). Reload the page and try again.")  # fmt: skip

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool) -> None:
        if req.path == "/console" or req.path.startswith("/console/"):
            for name, value in SECURITY_HEADERS.items():
                resp.set_header(name, value)
            if not req.path.startswith("/console/static/"):
                resp.set_header("Cache-Control", "no-store")


def _page_error(req: falcon.Request, resp: falcon.Response, ex: PageError, params: dict) -> None:
    render(req, resp, "error.html", status=ex.status, status_title=ex.status.split(" ", 1)[-1], message=ex.message)


def _sign_in(req: falcon.Request, resp: falcon.Response, ex: SignInRequired, params: dict) -> None:
    resp.status = falcon.HTTP_303
    resp.location = with_query("/console/login", next=ex.next_url)


def _unavailable(req: falcon.Request, resp: falcon.Response, ex: TransientError, params: dict) -> None:
    """Console pages answer an outage with a page (and Retry-After); the API keeps its JSON answer."""
    if not req.path.startswith("/console"):
        api_errors.handle_unavailable(req, resp, ex, params)
        return
    logger.error("Answering 503 to %s %s: %s", req.method, req.path, ex)
    resp.set_header("Retry-After", str(api_errors.RETRY_AFTER_S))
    req.context.console = None  # the session could not be read: render without it
    render(req, resp, "error.html", status=falcon.HTTP_503, status_title="Unavailable",
           message="A service the console needs (the database or the broker) is unavailable. Retry in a moment.")  # fmt: skip


def install(app: falcon.App) -> None:
    app.add_middleware(Gate())
    app.add_error_handler(PageError, _page_error)
    app.add_error_handler(SignInRequired, _sign_in)
    app.add_error_handler(TransientError, _unavailable)

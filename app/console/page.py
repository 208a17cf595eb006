"""The base of every console resource, and the errors a console page answers with.

A console resource authenticates by session, not by bearer key, so it declares ``access``
(never the API's ``permissions``): :class:`~app.console.gate.Gate` checks it before the
responder runs. It fails closed like the API: GET needs ``read``, POST ``operate``, any other
method ``admin``, unless the class says otherwise; ``None`` makes a method public (the sign-in
page and the static files only).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlencode

import falcon

from ..errors import ActionNotAllowed, Conflict, InvalidInput, NotFound
from .session import Signed, flash

T = TypeVar("T")


class PageError(Exception):
    """Answer with the error page: ``status`` (a Falcon status line) and a sentence for the person."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class SignInRequired(Exception):
    """No live session: the browser is sent to the sign-in page, which brings it back to ``next``."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


class Page:
    """A console resource; subclasses add ``on_get``/``on_post`` responders (with suffixes as they like)."""

    #: Method -> permission the session's role must hold; unlisted methods need ``admin``; None: public.
    access: ClassVar[dict[str, str | None]] = {"GET": "read", "POST": "operate"}

    def __init__(self, deps: Any) -> None:
        self.deps = deps

    @staticmethod
    def form(req: falcon.Request) -> dict[str, str]:
        """The POSTed form (read and CSRF-checked by the gate)."""
        return getattr(req.context, "form", None) or {}

    @staticmethod
    def signed(req: falcon.Request) -> Signed | None:
        return getattr(req.context, "console", None)

    def act(self, req: falcon.Request, resp: falcon.Response, work: Callable[[], T], *, back: str,
            done: str | Callable[[T], str]) -> T | None:  # fmt: skip
        """Run an operator's change; flash what happened (or why not) and send the browser ``back``.

        A change refused by the domain (bad input, a state that does not allow it, a safety rule)
        is shown as a message on the page it came from, not as an error page: the person fixes
        the form or reads why. Returns what ``work`` returned, or None when it was refused.
        """
        signed = self.signed(req)
        try:
            result = work()
        except (InvalidInput, Conflict, ActionNotAllowed, NotFound) as e:
            text = e.message if isinstance(e, InvalidInput) else str(e)
            flash(signed, text[:1000], kind="error")
            see_other(resp, back)
            return None
        flash(signed, done(result) if callable(done) else done)
        see_other(resp, back)
        return result


def see_other(resp: falcon.Response, url: str) -> None:
    """Redirect with 303 (after a POST the browser GETs ``url``: reloading does not post again)."""
    resp.status = falcon.HTTP_303
    resp.location = url
    resp.text = ""


def with_query(path: str, **params: Any) -> str:
    """``path`` with the non-empty ``params`` as its query string."""
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return f"{path}?{urlencode(kept)}" if kept else path


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a console path of this site only (never ``//evil`` or ``https://…``)."""
    if value and value.startswith("/console") and not value.startswith("//") and "\\" not in value:
        return value
    return "/console/incidents"

"""Signing in and out: ``/console/login`` (GET, POST) and ``/console/logout`` (POST)."""

from __future__ import annotations

import secrets
from typing import Any

import falcon

from ..forms import read_form
from ..page import Page, PageError, safe_next, see_other
from ..render import render
from ..session import (
    COOKIE,
    IDLE_HOURS,
    LOGIN_COOKIE,
    SIGN_IN_PERMISSION,
    clear_cookie,
    end,
    set_cookie,
    start,
    tokens_match,
)

#: Seconds the sign-in form's CSRF cookie lives (a person types a key within the hour).
LOGIN_COOKIE_S = 3600


class Login(Page):
    """The sign-in form: an API key, once; then the session's cookie does."""

    access = {"GET": None, "POST": None}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        next_url = safe_next(req.get_param("next"))
        if self.signed(req) is not None:
            see_other(resp, next_url)
            return
        self._form(req, resp, next_url=next_url)

    def _form(self, req: falcon.Request, resp: falcon.Response, *, next_url: str, error: str | None = None,
              status: str = falcon.HTTP_200) -> None:  # fmt: skip
        token = req.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)
        set_cookie(req, resp, LOGIN_COOKIE, token, max_age_s=LOGIN_COOKIE_S)
        render(req, resp, "login.html", status=status, login_csrf=token, next_url=next_url, error=error,
               signed_out=req.get_param("signed_out") == "1")  # fmt: skip

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        form = read_form(req)
        if not tokens_match(form.get("csrf_token"), req.cookies.get(LOGIN_COOKIE)):
            raise PageError(falcon.HTTP_403, "This sign-in form did not come from this console "
                            "(a missing or stale security token). Reload the page and try again.")  # fmt: skip
        next_url = safe_next(form.get("next"))
        key = (form.get("api_key") or "").strip()
        principal = self.deps.keys.verify(key) if key else None
        if principal is None:
            self._form(req, resp, next_url=next_url, status=falcon.HTTP_401,
                       error="That API key is unknown or revoked." if key else "Enter an API key.")  # fmt: skip
            return
        if not principal.may(SIGN_IN_PERMISSION):
            self._form(req, resp, next_url=next_url, status=falcon.HTTP_403,
                       error=f"A key of role {principal.role!r} cannot sign in: the console needs a viewer, "
                             "operator or admin key.")  # fmt: skip
            return
        set_cookie(req, resp, COOKIE, start(principal), max_age_s=IDLE_HOURS * 3600)
        clear_cookie(req, resp, LOGIN_COOKIE)
        see_other(resp, next_url)


class Logout(Page):
    """Sign out (any signed-in role); the session's row is deleted."""

    access = {"POST": "read"}

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        signed = self.signed(req)
        if signed is not None:
            end(signed)
        clear_cookie(req, resp, COOKIE)
        see_other(resp, "/console/login?signed_out=1")


def routes(deps: Any) -> list[tuple[Any, ...]]:
    return [("/console/login", Login(deps)), ("/console/logout", Logout(deps))]

"""One place that maps our errors to HTTP answers, with a JSON body naming the problem."""

from __future__ import annotations

import logging
import re
from typing import Any

import falcon

from ..errors import (
    ActionNotAllowed,
    BrokerUnavailable,
    Conflict,
    DatabaseUnavailable,
    InvalidInput,
    NotFound,
    TransientError,
)

logger = logging.getLogger(__name__)

#: Seconds a client is told to wait before retrying after a 503.
RETRY_AFTER_S = 5
#: The parameter a Falcon ``HTTPInvalidParam``/``HTTPMissingParam`` description names.
_PARAM_NAME = re.compile(r'The "([^"]+)" parameter')


def _body(error: str, message: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"error": error, "message": message}
    body.update({k: v for k, v in extra.items() if v is not None})
    return body


def handle_invalid_input(req: falcon.Request, resp: falcon.Response, ex: InvalidInput, params: dict) -> None:
    resp.status = falcon.HTTP_400
    resp.media = _body("invalid_input", ex.message, field=ex.field)


def handle_state_error(req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict) -> None:
    status, error = (
        (falcon.HTTP_404, "not_found")
        if isinstance(ex, NotFound)
        else (falcon.HTTP_409, "conflict")
        if isinstance(ex, Conflict)
        else (falcon.HTTP_403, "not_allowed")
    )
    resp.status = status
    # An InvalidLink says why in one word (expired, used, ...), for the page that shows it.
    resp.media = _body(error, str(ex), reason=getattr(ex, "reason", None))


def handle_unavailable(req: falcon.Request, resp: falcon.Response, ex: TransientError, params: dict) -> None:
    """A failure that may pass (database, broker, a service such as the LLM): 503 with Retry-After."""
    if isinstance(ex, BrokerUnavailable | DatabaseUnavailable):
        what = "broker" if isinstance(ex, BrokerUnavailable) else "database"
        error, message = f"{what}_unavailable", f"the {what} is unavailable; nothing was accepted, retry later"
    else:
        # The client learns that it may retry; the cause (a server's words) is for the log only.
        what, error, message = (
            type(ex).__name__,
            "service_unavailable",
            "a service this request needs is unavailable; retry later",
        )
    logger.error("Answering 503 to %s %s: %s unavailable: %s", req.method, req.path, what, ex)
    resp.status = falcon.HTTP_503
    resp.set_header("Retry-After", str(RETRY_AFTER_S))
    resp.media = _body(error, message)


def serialize_http_error(req: falcon.Request, resp: falcon.Response, ex: falcon.HTTPError) -> None:
    """Falcon's own errors (404, 405, 413, 415 ...) in the same JSON shape as ours."""
    resp.content_type = falcon.MEDIA_JSON
    field = getattr(ex, "field", None)
    if field is None and isinstance(ex, falcon.HTTPInvalidParam | falcon.HTTPMissingParam):
        # Falcon keeps the parameter's name only in its description: 'The "limit" parameter is invalid.'
        named = _PARAM_NAME.match(ex.description or "")
        field = named.group(1) if named else None
    resp.media = _body((ex.title or "error").lower().replace(" ", "_"), ex.description or ex.title or "", field=field)


def bad_request(message: str, *, field: str | None = None) -> falcon.HTTPBadRequest:
    error = falcon.HTTPBadRequest(title="Invalid input", description=message)
    error.field = field  # type: ignore[attr-defined]
    return error


def install(app: falcon.App) -> None:
    app.add_error_handler(InvalidInput, handle_invalid_input)
    app.add_error_handler(TransientError, handle_unavailable)
    for state_error in (NotFound, Conflict, ActionNotAllowed):
        app.add_error_handler(state_error, handle_state_error)
    app.set_error_serializer(serialize_http_error)

"""Notifications written while answering a request are handed to the ``notify`` actor after it.

An operator's change may page (acknowledging an incident acknowledges its PagerDuty alert;
a status change may match ``incident_status`` policies). The rows are written in the change's
transaction (:func:`app.notifications.routing.route`); this middleware collects their ids while
the resource answers and, once the response is ready (the transaction committed), sends each to ``notify``
through the injected dispatcher. A broker that is away costs nothing but time: the clock sends
due notifications on its next sweep.
"""

from __future__ import annotations

import logging
from contextvars import Token
from typing import Any

import falcon

from ..errors import BrokerUnavailable
from ..notifications.routing import collect, stop_collecting
from ..publishing import Dispatcher

logger = logging.getLogger(__name__)


class SendNotifications:
    """Falcon middleware: ``notify`` messages for the notifications a request wrote."""

    def __init__(self, dispatch: Dispatcher) -> None:
        self.dispatch = dispatch

    def process_resource(self, req: falcon.Request, resp: falcon.Response, resource: Any, params: dict) -> None:
        # A resource that keeps no database connection (``uses_database = False``: ingest) writes no rows, so no
        # notification either. PERF: the first ContextVar.set in a request's fresh greenlet makes the greenlet's
        # context: 0.6-0.8 % of the web worker's samples when accepting single events (py-spy), for nothing.
        if getattr(resource, "uses_database", True):
            req.context.notifications, req.context.notifications_token = collect()

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool) -> None:
        token: Token[list[int] | None] | None = getattr(req.context, "notifications_token", None)
        if token is None:
            return
        stop_collecting(token)
        for notification_id in req.context.notifications:
            try:
                self.dispatch("notify", notification_id)
            except BrokerUnavailable as e:
                logger.warning("Could not hand notification %r to notify (%s); the clock will send it.",
                               notification_id, e)  # fmt: skip
                return

"""Paging: ``/api/v1/notification-policies[/{policy_id}]`` and the outbox, ``/api/v1/notifications``."""

from __future__ import annotations

import falcon

from ...db import in_transaction
from ...notifications import outbox
from ...notifications import policies as store
from ...publishing import Dispatcher
from ..media import read_json
from ..middleware import actor_of
from ..params import page, parse_uuid


class Policies:
    """``GET`` lists the notification policies; ``POST`` creates one."""

    permissions = {"GET": "read", "POST": "operate"}

    def __init__(self, *, max_body_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        rows = in_transaction(store.listing)
        resp.media = {"policies": rows, "total_count": len(rows)}

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        columns = store.parse_policy(read_json(req, max_bytes=self.max_body_bytes))
        resp.status = falcon.HTTP_201
        resp.media = in_transaction(lambda: store.create(columns, actor=actor_of(req)))


class Policy:
    """One policy: ``GET``, ``PUT`` (replaces all its fields), ``DELETE`` (its notifications stay)."""

    permissions = {"GET": "read", "PUT": "operate", "DELETE": "operate"}

    def __init__(self, *, max_body_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes

    def on_get(self, req: falcon.Request, resp: falcon.Response, policy_id: int) -> None:
        resp.media = in_transaction(lambda: store.policy_json(store.get(policy_id)))

    def on_put(self, req: falcon.Request, resp: falcon.Response, policy_id: int) -> None:
        columns = store.parse_policy(read_json(req, max_bytes=self.max_body_bytes))
        resp.media = in_transaction(lambda: store.replace(policy_id, columns, actor=actor_of(req)))

    def on_delete(self, req: falcon.Request, resp: falcon.Response, policy_id: int) -> None:
        in_transaction(lambda: store.delete(policy_id, actor=actor_of(req)))
        resp.media = {"id": policy_id, "status": "deleted"}


class Notifications:
    """``GET`` the outbox, newest first (``?status=``, ``?trigger=``, ``?incident_id=``, ``limit``, ``offset``)."""

    permissions = {"GET": "read"}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        limit, offset = page(req)
        incident = req.get_param("incident_id")
        if incident is not None and parse_uuid(incident) is None:
            resp.media = {"notifications": [], "total_count": 0, "limit": limit, "offset": offset}
            return
        status, trigger = req.get_param("status"), req.get_param("trigger")
        resp.media = in_transaction(
            lambda: outbox.listing(status=status, trigger=trigger, incident_id=incident, limit=limit, offset=offset)
        )


class Retry:
    """``POST /notifications/{id}/retry``: a failed notification gets a fresh set of attempts, the first at once."""

    permissions = {"POST": "operate"}

    def __init__(self, *, dispatch: Dispatcher) -> None:
        self.dispatch = dispatch

    def on_post(self, req: falcon.Request, resp: falcon.Response, notification_id: int) -> None:
        shown = in_transaction(lambda: outbox.requeue(notification_id, actor=actor_of(req)))
        self.dispatch("notify", notification_id)
        resp.status = falcon.HTTP_202
        resp.media = shown

"""Named secrets: ``/api/v1/secrets[/{name}]`` (admin). Values go in; only names and times come out."""

from __future__ import annotations

import falcon

from ... import secrets
from ...config import Settings
from ...db import in_transaction
from ...errors import InvalidInput, NotFound
from ..media import read_json
from ..middleware import actor_of


def _body(req: falcon.Request, max_bytes: int) -> dict:
    body = read_json(req, max_bytes=max_bytes)
    if not isinstance(body, dict):
        raise InvalidInput("a secret is a JSON object {name, value}", field="body")
    unknown = sorted(set(body) - {"name", "value"})
    if unknown:
        raise InvalidInput(f"unknown key {unknown[0]!r}", field=unknown[0])
    return body


class Secrets:
    """``GET``: names and timestamps; ``POST {name, value}``: create or replace."""

    permissions = {"GET": "admin", "POST": "admin"}

    def __init__(self, *, settings: Settings, max_body_bytes: int) -> None:
        self.settings, self.max_body_bytes = settings, max_body_bytes

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        rows = in_transaction(secrets.listing)
        resp.media = {"secrets": rows, "total_count": len(rows)}

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = _body(req, self.max_body_bytes)
        name, value = secrets.check_name(body.get("name")), secrets.check_value(body.get("value"))
        created = in_transaction(lambda: secrets.put(name, value, keys=self.settings.secret_keys, actor=actor_of(req)))
        resp.status = falcon.HTTP_201 if created else falcon.HTTP_200
        resp.media = {"name": name, "status": "created" if created else "updated"}


class Secret:
    """``PUT {value}``: create or replace NAME; ``DELETE``: remove it."""

    permissions = {"PUT": "admin", "DELETE": "admin"}

    def __init__(self, *, settings: Settings, max_body_bytes: int) -> None:
        self.settings, self.max_body_bytes = settings, max_body_bytes

    def on_put(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        body = _body(req, self.max_body_bytes)
        if body.get("name", name) != name:
            raise InvalidInput("name differs from the one in the path", field="name")
        name, value = secrets.check_name(name), secrets.check_value(body.get("value"))
        created = in_transaction(lambda: secrets.put(name, value, keys=self.settings.secret_keys, actor=actor_of(req)))
        resp.status = falcon.HTTP_201 if created else falcon.HTTP_200
        resp.media = {"name": name, "status": "created" if created else "updated"}

    def on_delete(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        if not in_transaction(lambda: secrets.delete(name, actor=actor_of(req))):
            raise NotFound(f"no secret {name!r}")
        resp.media = {"name": name, "status": "deleted"}

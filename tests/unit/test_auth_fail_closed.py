"""Authentication fails closed: a responder nobody decided a permission for is admin-only."""

from __future__ import annotations

import falcon
import falcon.testing

from app.auth import KeyStore, create_key
from app.http.middleware import Authentication


class _Half:
    """A resource whose POST was added without a permission for it."""

    permissions = {"GET": "read"}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"read": True}

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"wrote": True}


class _Public:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"ok": True}


def _client() -> falcon.testing.TestClient:
    app = falcon.App(middleware=[Authentication(KeyStore())])
    app.add_route("/half", _Half())
    app.add_route("/public", _Public())
    return falcon.testing.TestClient(app)


def test_a_method_without_a_declared_permission_needs_an_admin(sqlite_db):
    # Given a viewer, an operator and an admin
    viewer, operator, admin = (create_key(role=r, name=f"fail-closed {r}") for r in ("viewer", "operator", "admin"))
    client = _client()
    # When each calls the declared GET and the undeclared POST
    def call(method: str, key: str | None) -> int:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return client.simulate_request(method, "/half", headers=headers).status_code

    # Then the GET is the viewer's, and the POST nobody decided for is refused to all but an admin
    assert call("GET", viewer) == 200
    assert call("POST", None) == 401
    assert call("POST", viewer) == 403
    assert call("POST", operator) == 403
    assert call("POST", admin) == 200


def test_a_resource_that_declares_no_permissions_is_public(sqlite_db):
    assert _client().simulate_get("/public").status_code == 200

"""Bare Falcon: the ceiling the web tier is measured against, in the same run, on the same server settings.

``gunicorn -c python:app.http.gunicorn_conf bench.falcon_bare:app`` serves one route that does what
any JSON webhook must (read the body, decode it with orjson, answer 202 with a small JSON body) and
nothing of the product: no key, no validation, no broker. ``bench/webhook.py --compare-bare`` runs
it before each run of the product and reports the product's requests/s as a fraction of it.
"""

from __future__ import annotations

import falcon
import orjson


class Accept:
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = orjson.loads(req.bounded_stream.read())
        resp.status = falcon.HTTP_202
        resp.content_type = falcon.MEDIA_JSON
        resp.data = orjson.dumps({"status": "accepted", "count": len(body) if isinstance(body, list) else 1})


class Health:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"status": "ok"}


def create_app() -> falcon.App:
    app = falcon.App()
    app.add_route("/api/v1/events/webhook", Accept())
    app.add_route("/healthz", Health())
    return app


app = create_app()

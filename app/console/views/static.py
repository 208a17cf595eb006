"""The console's CSS, script and images, served from the package (no CDN): ``/console/static/{name}``."""

from __future__ import annotations

from importlib import resources
from typing import Any

import falcon

from ..page import Page, PageError

#: Content types by file extension; a file of another kind is not served.
TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml",
         ".png": "image/png", ".ico": "image/x-icon"}  # fmt: skip
#: Seconds browsers may keep a static file (pages name them with the version, so a release is seen).
MAX_AGE_S = 3600


def _load() -> dict[str, tuple[str, bytes]]:
    """Every static file, read once: the set is small and fixed, and nothing outside it can be named."""
    files: dict[str, tuple[str, bytes]] = {}
    for entry in resources.files("app.console").joinpath("static").iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1] if "." in entry.name else ""
        if entry.is_file() and suffix in TYPES:
            files[entry.name] = (TYPES[suffix], entry.read_bytes())
    return files


class Static(Page):
    access = {"GET": None}

    def __init__(self, deps: Any) -> None:
        super().__init__(deps)
        self.files = _load()

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        found = self.files.get(name)
        if found is None:
            raise PageError(falcon.HTTP_404, f"There is no static file {name!r}.")
        resp.content_type, resp.data = found
        resp.set_header("Cache-Control", f"public, max-age={MAX_AGE_S}")


def routes(deps: Any) -> list[tuple[Any, ...]]:
    return [("/console/static/{name}", Static(deps))]

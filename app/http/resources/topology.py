"""The topology: ``/api/v1/topology`` (read, replace, patch; JSON or CSV), its versions and the NetBox import.

- ``GET /api/v1/topology``: the current map (``?version=N``: an earlier one; ``?format=csv``: as CSV);
  the answer's ``ETag`` is its version.
- ``PUT /api/v1/topology``: replace it, from JSON (either shape), ``text/csv``, or ``?format=netbox``.
- ``PATCH /api/v1/topology``: add or remove nodes and edges.
- ``GET /api/v1/topology/versions``: who changed it, when and how, newest first.
- ``POST /api/v1/topology/import/netbox``: replace it from a NetBox export.

A write may send ``If-Match: "<version>"``: it is refused (409) when the map changed since.
"""

from __future__ import annotations

from typing import Any

import falcon

from ...errors import InvalidInput
from ...topology import store
from ...topology.csvfile import parse_csv, to_csv
from ...topology.netbox import parse_netbox
from ..media import decode_json, read_body, read_json
from ..middleware import actor_of
from ..params import integer, page

#: Formats of ``GET ?format=`` and ``PUT ?format=``.
FORMATS = ("json", "csv", "netbox")
CSV_TYPE = "text/csv; charset=utf-8"


def _expected_version(req: falcon.Request) -> int | None:
    """The version ``If-Match`` names (``"3"``, ``3`` or ``W/"3"``), or None."""
    value = req.get_header("If-Match")
    if not value or value.strip() == "*":
        return None
    text = value.strip().removeprefix("W/").strip('"')
    if not text.isdigit():
        raise InvalidInput(f'If-Match names a topology version, such as "3", not {value!r}', field="If-Match")
    return int(text)


def _format(req: falcon.Request, *, allowed: tuple[str, ...]) -> str | None:
    name = req.get_param("format")
    if name is not None and name not in allowed:
        raise InvalidInput(f"format is one of {', '.join(allowed)}, not {name!r}", field="format")
    return name


class Topology:
    permissions = {"GET": "read", "PUT": "operate", "PATCH": "operate"}

    def __init__(self, *, max_body_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        name = _format(req, allowed=("json", "csv"))
        version = integer(req, "version", 0) or None
        if name == "csv":
            doc, number = store.document_at(version)
            resp.content_type = CSV_TYPE
            resp.downloadable_as = f"topology-v{number}.csv"
            resp.text = to_csv(doc)
            resp.etag = f'"{number}"'
        elif version is not None:
            resp.media = store.topology_json(version)
            resp.etag = f'"{version}"'
        else:
            number, resp.data = store.topology_bytes()
            resp.content_type = falcon.MEDIA_JSON
            resp.etag = f'"{number}"'

    def on_put(self, req: falcon.Request, resp: falcon.Response) -> None:
        content_type = (req.content_type or "").split(";", 1)[0].strip().lower()
        name = _format(req, allowed=FORMATS) or ("csv" if content_type == "text/csv" else "json")
        expected, actor = _expected_version(req), actor_of(req)
        if name == "csv":
            text = read_body(req, max_bytes=self.max_body_bytes).decode("utf-8", errors="replace")
            answer = store.replace_topology(parse_csv(text), actor=actor, source="csv", expected_version=expected)
        elif name == "netbox":
            answer = _import_netbox(req, max_bytes=self.max_body_bytes, actor=actor, expected=expected)
        else:
            body = read_json(req, max_bytes=self.max_body_bytes)
            answer = store.replace_topology(body, actor=actor, expected_version=expected)
        resp.media = answer
        resp.etag = f'"{answer["version"]}"'

    def on_patch(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = read_json(req, max_bytes=self.max_body_bytes)
        answer = store.patch_topology(body, actor=actor_of(req), expected_version=_expected_version(req))
        resp.media = answer
        resp.etag = f'"{answer["version"]}"'


class TopologyVersions:
    permissions = {"GET": "read"}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        limit, offset = page(req)
        resp.media = store.versions(limit=limit, offset=offset)


class NetboxImport:
    """``POST /api/v1/topology/import/netbox``: the same as ``PUT /api/v1/topology?format=netbox``."""

    permissions = {"POST": "operate"}

    def __init__(self, *, max_body_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        answer = _import_netbox(req, max_bytes=self.max_body_bytes, actor=actor_of(req),
                                expected=_expected_version(req))  # fmt: skip
        resp.media = answer
        resp.etag = f'"{answer["version"]}"'


def _import_netbox(req: falcon.Request, *, max_bytes: int, actor: str, expected: int | None) -> dict[str, Any]:
    """A NetBox export (JSON, whatever its content type: NetBox's answers saved to files) as the new map."""
    doc, counts = parse_netbox(decode_json(read_body(req, max_bytes=max_bytes)))
    return store.replace_topology(doc, actor=actor, source="netbox", expected_version=expected, counts=counts)

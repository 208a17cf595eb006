"""Reading the audit log: ``/api/v1/audit`` (pages) and ``/api/v1/audit/export`` (CSV or JSON file).

Operators and admins only: the log names keys, persons and what they did. Filters, for both:
``actor``, ``person``, ``action`` (old names too), ``object_kind`` and ``object_id`` (the subject
``<kind>:<id>``), ``since`` and ``until`` (ISO 8601).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import falcon

from ... import audit_query
from ...audit_query import AuditFilter
from ...db import in_transaction, release_connection
from ...errors import InvalidInput
from ...paging import DEFAULT_LIMIT
from ..params import integer, timestamp

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Export formats: media type and file extension.
FORMATS = {"csv": ("text/csv; charset=utf-8", "csv"), "json": ("application/json", "json")}


def audit_filter(req: falcon.Request) -> AuditFilter:
    """The filter the query string names, checked (400 naming the field)."""
    return audit_query.check(
        AuditFilter(
            actor=req.get_param("actor") or None,
            person=req.get_param("person") or None,
            action=req.get_param("action") or None,
            object_kind=req.get_param("object_kind") or None,
            object_id=req.get_param("object_id") or None,
            since=timestamp(req, "since"),
            until=timestamp(req, "until"),
        )
    )


def _chunk(fn: Callable[[], T]) -> T:
    """One chunk of an export in its own transaction, its connection handed back at once.

    A streamed body is read after the request's middleware released the connection: each chunk
    takes one from the pool for its query only.
    """
    try:
        return in_transaction(fn)
    finally:
        release_connection()


class Audit:
    """``GET /api/v1/audit?limit=&cursor=`` and the filters: a page of rows, newest first, and ``next_cursor``."""

    permissions = {"GET": "operate"}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        flt, limit, cursor = audit_filter(req), integer(req, "limit", DEFAULT_LIMIT), req.get_param("cursor")
        resp.media = in_transaction(lambda: audit_query.page(flt, cursor=cursor, limit=limit))


class AuditExport:
    """``GET /api/v1/audit/export?format=csv|json`` and the filters: every matching row, as a file."""

    permissions = {"GET": "operate"}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        name = req.get_param("format") or "json"
        if name not in FORMATS:
            raise InvalidInput(f"format is csv or json, not {name!r}", field="format")
        flt = audit_filter(req)
        media_type, extension = FORMATS[name]
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        resp.content_type = media_type
        resp.set_header("Content-Disposition", f'attachment; filename="opsconductor-audit-{stamp}.{extension}"')
        rows = audit_query.export_rows(flt, run=_chunk)
        lines = audit_query.csv_lines(rows) if name == "csv" else audit_query.json_lines(rows)
        resp.stream = _logged(lines, req.path)


def _logged(lines: Iterator[bytes], path: str) -> Iterator[Any]:
    """``lines``; a failure after the first byte can only cut the file short, so it is logged."""
    try:
        yield from lines
    except Exception:
        logger.error("The audit export of %r stopped before its end.", path, exc_info=True)
        raise

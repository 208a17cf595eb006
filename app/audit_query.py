"""Reading the audit log: filters, pages by an opaque cursor, and the rows of an export.

Plain query logic the API (``/api/v1/audit``), the CLI (``opsconductor audit``) and the console
share. Rows come newest first, ordered by ``(at, id)``; a page's ``next_cursor`` names the last
row it holds, so the next page starts strictly after it: every row is read once, even when many
share one timestamp, and rows written meanwhile (newer) do not shift the pages.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import orjson
import peewee

from .audit import RENAMED, Action
from .errors import InvalidInput
from .models import AuditLog
from .paging import DEFAULT_LIMIT, MAX_LIMIT
from .present import iso

#: What an object kind looks like (``trigger_rule``, ``execution``): the part of a subject before ``:``.
OBJECT_KIND = re.compile(r"[a-z][a-z0-9_]{0,49}")
#: Columns of an export, in order.
COLUMNS = ("id", "at", "actor", "person", "action", "subject", "object_kind", "object_id", "details")
#: Rows an export reads per query.
EXPORT_CHUNK = 500
#: Cell starts a spreadsheet would run as a formula: such CSV cells are prefixed with ``'``.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, kw_only=True)
class AuditFilter:
    """Which audit rows to read; every given field must match."""

    actor: str | None = None
    #: The person behind the actor (an API key's person).
    person: str | None = None
    #: An action's name, current or old (:data:`app.audit.RENAMED`): both names match.
    action: str | None = None
    #: The subject's kind (``trigger_rule``), and with it optionally its id (``7``).
    object_kind: str | None = None
    object_id: str | None = None
    #: From (inclusive) and until (exclusive).
    since: datetime | None = None
    until: datetime | None = None


def action_names(name: str) -> list[str]:
    """Every name ``name`` is known by: its current one and the old ones it replaced.

    Raises:
      InvalidInput: ``name`` is in neither vocabulary (naming ``action``).
    """
    if name in RENAMED:
        current = RENAMED[name]
    else:
        try:
            current = Action(name)
        except ValueError:
            raise InvalidInput(f"unknown action {name!r}: actions look like trigger_rule.created",
                               field="action") from None  # fmt: skip
    return sorted({current.value, *(old for old, new in RENAMED.items() if new is current)})


def check(f: AuditFilter) -> AuditFilter:
    """``f`` when its fields can be used together, else :class:`InvalidInput` naming the field."""
    for name in ("actor", "person", "object_id"):
        value = getattr(f, name)
        if value is not None and ("\x00" in value or len(value) > 200):
            raise InvalidInput(f"{name} is at most 200 characters, none of them NUL", field=name)
    if f.action is not None:
        action_names(f.action)
    if f.object_kind is not None and not OBJECT_KIND.fullmatch(f.object_kind):
        raise InvalidInput("object_kind is a name such as trigger_rule or execution", field="object_kind")
    if f.object_id is not None:
        if f.object_kind is None:
            raise InvalidInput("object_id needs object_kind (a subject is <kind>:<id>)", field="object_id")
    if f.since is not None and f.until is not None and f.since >= f.until:
        raise InvalidInput("since must be before until", field="since")
    return f


def _where(f: AuditFilter) -> list[peewee.Expression]:
    conditions: list[peewee.Expression] = []
    if f.actor is not None:
        conditions.append(AuditLog.actor == f.actor)
    if f.person is not None:
        conditions.append(AuditLog.person == f.person)
    if f.action is not None:
        conditions.append(AuditLog.action.in_(action_names(f.action)))
    if f.object_kind is not None and f.object_id is not None:
        conditions.append(AuditLog.subject == f"{f.object_kind}:{f.object_id}")
    elif f.object_kind is not None:
        # A subject is <kind>:<id>, or the kind alone for a whole collection (``topology``).
        kind = (AuditLog.subject == f.object_kind) | AuditLog.subject.startswith(f"{f.object_kind}:")
        conditions.append(kind)  # peewee escapes startswith's '_' and '%'
    if f.since is not None:
        conditions.append(AuditLog.at >= f.since)
    if f.until is not None:
        conditions.append(AuditLog.at < f.until)
    return conditions


def encode_cursor(row: AuditLog) -> str:
    """The opaque cursor after ``row``."""
    raw = orjson.dumps([row.at.astimezone(UTC).isoformat(), row.id])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """``(at, id)`` of the row a cursor names.

    Raises:
      InvalidInput: not a cursor this module made (naming ``cursor``).
    """
    try:
        at, row_id = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        moment = datetime.fromisoformat(at)
        if not isinstance(row_id, int) or isinstance(row_id, bool) or moment.tzinfo is None:
            raise ValueError(cursor)
    except (binascii.Error, ValueError, TypeError, orjson.JSONDecodeError):
        raise InvalidInput("cursor is not one this API returned: use next_cursor as it is", field="cursor") from None
    return moment, row_id


def _after(cursor: tuple[datetime, int]) -> peewee.Expression:
    at, row_id = cursor
    return (AuditLog.at < at) | ((AuditLog.at == at) & (AuditLog.id < row_id))


def _select(f: AuditFilter, cursor: tuple[datetime, int] | None, limit: int) -> list[AuditLog]:
    conditions = _where(f) + ([_after(cursor)] if cursor is not None else [])
    query = AuditLog.select().order_by(AuditLog.at.desc(), AuditLog.id.desc()).limit(limit)
    if conditions:
        query = query.where(*conditions)
    return list(query)


def row_json(row: AuditLog) -> dict[str, Any]:
    """An audit row as the API shows it (``object_kind``/``object_id`` split from the subject)."""
    kind, _, object_id = (row.subject or "").partition(":")
    return {
        "id": row.id,
        "at": iso(row.at),
        "actor": row.actor,
        "person": row.person,
        "action": RENAMED[row.action].value if row.action in RENAMED else row.action,
        "subject": row.subject,
        "object_kind": kind or None,
        "object_id": object_id or None,
        "details": row.details,
    }


def page(f: AuditFilter, *, cursor: str | None = None, limit: int = DEFAULT_LIMIT) -> dict[str, Any]:
    """One page of rows matching ``f``, newest first (call inside a transaction).

    Returns:
      ``{"entries": [...], "next_cursor": str | None, "limit": int}``; ``next_cursor`` is None on
      the last page.

    Raises:
      InvalidInput: a bad filter, cursor or limit (naming the field).
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    after = decode_cursor(cursor) if cursor else None
    rows = _select(check(f), after, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return {"entries": [row_json(r) for r in rows], "next_cursor": encode_cursor(rows[-1]) if more else None,
            "limit": limit}  # fmt: skip


def export_rows(f: AuditFilter, *, run: Callable[[Callable[[], Any]], Any]) -> Iterator[dict[str, Any]]:
    """Every row matching ``f``, newest first, read :data:`EXPORT_CHUNK` rows per query.

    Parameters:
      run: Runs one query in a transaction (``app.db.in_transaction``): each chunk is its own, so a
        long export holds no transaction (nor, if ``run`` releases it, a connection) between chunks.
    """
    check(f)
    after: tuple[datetime, int] | None = None
    while True:
        rows: list[AuditLog] = run(partial(_select, f, after, EXPORT_CHUNK))
        for row in rows:
            yield row_json(row)
        if len(rows) < EXPORT_CHUNK:
            return
        after = (rows[-1].at, rows[-1].id)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = orjson.dumps(value).decode() if isinstance(value, dict | list) else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def csv_lines(rows: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    """A CSV document of ``rows`` (header first), a line at a time; ``details`` as JSON.

    A text cell that starts like a spreadsheet formula is prefixed with ``'`` (CSV injection).
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def line(values: list[Any]) -> bytes:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(values)
        return buffer.getvalue().encode()

    yield line(list(COLUMNS))
    for row in rows:
        yield line([_cell(row[c]) for c in COLUMNS])


def json_lines(rows: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    """A JSON array of ``rows``, an element at a time."""
    yield b"["
    for i, row in enumerate(rows):
        yield (b",\n" if i else b"\n") + orjson.dumps(row)
    yield b"\n]\n"

"""Request parameters: paging, timestamps, durations, ids and flags, each refused with one message.

Resources read query-string parameters through these helpers, so a bad ``limit`` is
refused with the same 400 (:class:`~app.errors.InvalidInput`, naming the field) everywhere;
the page's bounds are :mod:`app.paging`'s, which the query modules check too.
The value parsers (:func:`parse_time`, :func:`parse_duration`, :func:`parse_uuid`) also
serve JSON bodies and the CLI.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from ..errors import InvalidInput
from ..paging import DEFAULT_LIMIT as DEFAULT_LIMIT
from ..paging import MAX_LIMIT as MAX_LIMIT
from ..paging import check_page

if TYPE_CHECKING:
    import falcon

_DURATION = re.compile(r"^(\d{1,6})([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(value: str, *, field: str) -> datetime:
    """An ISO 8601 timestamp (``Z`` accepted; naive means UTC).

    Raises:
      InvalidInput: ``value`` is not one.
    """
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{field} must be an ISO 8601 timestamp, got {value!r}", field=field) from None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


def parse_duration(value: str, *, field: str) -> timedelta:
    """A duration such as ``30m``, ``24h`` or ``7d``.

    Raises:
      InvalidInput: ``value`` is not one.
    """
    match = _DURATION.match(value.strip())
    if not match:
        raise InvalidInput(f"{field} must look like 30m, 24h or 7d, got {value!r}", field=field)
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def parse_uuid(value: str) -> uuid.UUID | None:
    """``value`` as a UUID, or None when it is not one (an id from a URL: unknown, so a 404)."""
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def integer(req: falcon.Request, name: str, default: int) -> int:
    """The integer parameter ``name``, or ``default`` when absent.

    Raises:
      InvalidInput: it is not an integer.
    """
    value = req.get_param(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise InvalidInput(f"{name} must be an integer, got {value!r}", field=name) from None


def page(req: falcon.Request) -> tuple[int, int]:
    """``(limit, offset)`` from the query string (defaults :data:`DEFAULT_LIMIT` and 0), checked."""
    limit, offset = integer(req, "limit", DEFAULT_LIMIT), integer(req, "offset", 0)
    check_page(limit, offset)
    return limit, offset


def timestamp(req: falcon.Request, name: str) -> datetime | None:
    """The ISO 8601 parameter ``name``, or None when absent."""
    value = req.get_param(name)
    return parse_time(value, field=name) if value else None


def flag(req: falcon.Request, name: str) -> bool | None:
    """The boolean parameter ``name`` (``true``/``false``, ``1``/``0``, ``yes``/``no``), or None when absent.

    Raises:
      InvalidInput: it is something else.
    """
    value = req.get_param(name)
    if value is None or value == "":
        return None
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes", "on", "t", "y"):
        return True
    if lowered in ("false", "0", "no", "off", "f", "n"):
        return False
    raise InvalidInput(f"{name} must be true or false, got {value!r}", field=name)

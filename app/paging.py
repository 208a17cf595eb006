"""Paging: the size and start of a page of results, checked with one message wherever a list is read.

Plain logic shared by the query modules (:mod:`app.events.query`, :mod:`app.correlation.query`),
which the API, the CLI and the console call, and by :mod:`app.http.params`, which reads a page
from the query string: logic never imports the HTTP layer for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import peewee

from .errors import InvalidInput

#: Largest page a client may ask for.
MAX_LIMIT = 1000
#: Page size when the client names none.
DEFAULT_LIMIT = 100


def check_page(limit: int, offset: int) -> None:
    """Raises:
    InvalidInput: ``limit`` is outside 1..:data:`MAX_LIMIT`, or ``offset`` is negative.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    if offset < 0:
        raise InvalidInput("offset must not be negative", field="offset")


def page(
    query: peewee.ModelSelect[Any],
    *,
    key: str,
    order: Any,
    limit: int,
    offset: int,
    show: Callable[[Any], dict[str, Any]],
) -> dict[str, Any]:
    """One page of ``query``: ``{<key>: [shown rows], total_count, has_more}`` (call inside a transaction).

    Parameters:
      show: A row as the API shows it.
      order: What the rows are ordered by (one expression or a tuple of them).
      limit, offset: The page, checked by :func:`check_page` beforehand.
    """
    total = query.count()
    orders = order if isinstance(order, tuple) else (order,)
    items = [show(row) for row in query.order_by(*orders).limit(limit).offset(offset)]
    return {key: items, "total_count": total, "has_more": offset + len(items) < total}

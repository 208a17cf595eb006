"""Raw input as it travels from the edge to the normalizer.

An *item* is one unit of raw input with the id the edge gave it::

    {"id": "<uuid7>", "source_type": "webhook|alertmanager|grafana|pagerduty|syslog|snmp",
     "received_at": <epoch seconds>, "source": "<peer or system>", "request_id": "<uuid>|None",
     "payload": <JSON value: the webhook item, the syslog frame as text, the decoded trap>,
     "encoding": "latin-1"  # only for a syslog frame that is not UTF-8: its bytes, one char each}

A normalize message carries a list of items (a micro-batch).
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

from ..errors import InvalidMessage

REQUIRED_KEYS = ("id", "source_type", "received_at", "payload")

#: An item id as the edge writes it: a UUID, which is the raw row's key (so it must be one).
ITEM_ID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def make_item(
    *,
    id: str,
    source_type: str,
    received_at: float,
    payload: Any,
    source: str | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    return {
        "id": id,
        "source_type": source_type,
        "received_at": received_at,
        "source": source,
        "request_id": request_id,
        "payload": payload,
    }


def make_items(
    payloads: list[Any],
    *,
    source_type: str,
    received_at: float,
    source: str | None = None,
    request_id: str | None = None,
    ids: list[str] | None = None,
) -> list[dict[str, Any]]:
    """One item per payload, as :func:`make_item` makes them, each with a new id from :func:`new_ids`
    (or from ``ids``, one per payload, made by :func:`new_ids` with others the caller needed).

    # PERF: an array of 100 events costs one ``urandom`` and one clock read, not 100 of each.
    """
    return [
        {"id": id, "source_type": source_type, "received_at": received_at, "source": source, "request_id": request_id,
         "payload": payload}
        for id, payload in zip(ids if ids is not None else new_ids(len(payloads)), payloads, strict=True)
    ]  # fmt: skip


#: A random hex digit -> the UUID variant digit (``10xx``) keeping its two low bits.
_VARIANT = dict(zip("0123456789abcdef", "89ab" * 4, strict=True))
#: The millisecond of the last ids made, and their first 15 characters (time and version).
_HEAD: tuple[int, str] = (-1, "")


def new_ids(count: int) -> list[str]:
    """``count`` new item ids: UUIDv7 strings, as :func:`app.ids.new_id` writes them (RFC 9562).

    48 bits of the current Unix time in milliseconds, the version, 74 random bits and the variant.

    # PERF: 20 random hex digits per id from one ``urandom`` call and string slicing; building a
    # :class:`uuid.UUID` per id cost three times as much (half of an array's accepting time). The id's first
    # 15 characters change once a millisecond: they are written once per millisecond (1 -> 0.5 µs per request).
    """
    global _HEAD
    ms = time.time_ns() // 1_000_000
    cached = _HEAD  # one read: another thread may replace it meanwhile
    if cached[0] == ms:
        head = cached[1]
    else:
        text = f"{ms & 0xFFFF_FFFF_FFFF:012x}"
        head = f"{text[:8]}-{text[8:]}-7"
        _HEAD = (ms, head)
    digits = os.urandom(10 * count).hex()
    return [
        f"{head}{digits[i : i + 3]}-{_VARIANT[digits[i + 3]]}{digits[i + 4 : i + 7]}-{digits[i + 7 : i + 19]}"
        for i in range(0, 20 * count, 20)
    ]


def check_batch(batch: Any) -> list[dict[str, Any]]:
    """Validate the envelope of a normalize message.

    Raises:
      InvalidMessage: the message is not a list of items; it cannot be stored and is dead-lettered.
    """
    if not isinstance(batch, list):
        raise InvalidMessage(f"a normalize message carries a list of items, got {type(batch).__name__}")
    for i, item in enumerate(batch):
        if not isinstance(item, dict):
            raise InvalidMessage(f"item {i} is a {type(item).__name__}, not an object", field=f"[{i}]")
        for key in REQUIRED_KEYS:
            if key not in item:
                raise InvalidMessage(f"item {i} has no {key!r}", field=f"[{i}].{key}")
        if not isinstance(item["id"], str) or not ITEM_ID.fullmatch(item["id"]):
            raise InvalidMessage(f"item {i} has an id that is not a UUID", field=f"[{i}].id")
        if not isinstance(item["source_type"], str):
            raise InvalidMessage(f"item {i} has a source_type that is not a string", field=f"[{i}].source_type")
        if not isinstance(item["received_at"], int | float):
            raise InvalidMessage(f"item {i} has a non-numeric received_at", field=f"[{i}].received_at")
    return batch

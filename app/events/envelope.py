"""Raw input as it travels from the edge to the normalizer.

An *item* is one unit of raw input with the id the edge gave it::

    {"id": "<uuid7>", "source_type": "webhook|alertmanager|grafana|pagerduty|syslog|snmp",
     "received_at": <epoch seconds>, "source": "<peer or system>", "request_id": "<uuid>|None",
     "payload": <JSON value: the webhook item, the syslog frame as text, the decoded trap>,
     "encoding": "latin-1"  # only for a syslog frame that is not UTF-8: its bytes, one char each}

A normalize message carries a list of items (a micro-batch).
"""

from __future__ import annotations

import re
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

"""Turn one raw item into an event of the one schema.

:data:`PARSERS` is the registry of parsers by source type; the parsers themselves are pure
(:mod:`app.parsing`, :mod:`app.snmp.mapping`), but the syslog one is given the operators' parsing
rules, read from the database at most every 30 seconds (:mod:`app.events.syslog_rule_store`).
An event's host that names a topology node by one of its addresses or by another spelling becomes
that node's id (the topology read at most every 10 seconds).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ..errors import InvalidEvent
from ..parsing.syslog import parse_syslog
from ..parsing.webhooks import ADAPTERS
from ..snmp.mapping import trap_to_event
from ..topology.store import node_named
from .schema import SEVERITIES, TITLE_MAX
from .syslog_rule_store import current_rules

#: A parser takes the item's payload and its arrival time and returns event fields.
Parser = Callable[[Any, dict[str, Any], datetime], dict[str, Any]]

#: Longest fingerprint stored as given; longer ones are hashed.
FINGERPRINT_MAX = 128


def _webhook_parser(name: str) -> Parser:
    def parse(payload: Any, item: dict[str, Any], received_at: datetime) -> dict[str, Any]:
        return ADAPTERS[name].normalize(payload, received_at=received_at)

    return parse


def _parse_syslog(payload: Any, item: dict[str, Any], received_at: datetime) -> dict[str, Any]:
    if not isinstance(payload, str):
        raise InvalidEvent("a syslog payload is the frame as text", field="payload")
    # Receivers send frames as UTF-8 text, or as latin-1 text (flagged) when they are not UTF-8.
    data = payload.encode(item.get("encoding") or "utf-8")
    return parse_syslog(data, received_at=received_at, peer=item.get("source"), rules=current_rules())


def _parse_trap(payload: Any, item: dict[str, Any], received_at: datetime) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise InvalidEvent("an SNMP payload is the decoded trap", field="payload")
    return trap_to_event(payload, received_at=received_at)


#: source_type of an item -> its parser.
PARSERS: dict[str, Parser] = {
    "webhook": _webhook_parser("webhook"),
    "alertmanager": _webhook_parser("alertmanager"),
    "grafana": _webhook_parser("grafana"),
    "pagerduty": _webhook_parser("pagerduty"),
    "syslog": _parse_syslog,
    "snmp": _parse_trap,
}


def received_time(item: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(item["received_at"], UTC)


def default_fingerprint(event: dict[str, Any]) -> str:
    """What makes two events "the same" when the source gives no key of its own."""
    parts = (event["source_type"], event.get("host"), event.get("service"), event["event_type"], event["title"])
    return hashlib.blake2b("\x1f".join(str(p or "") for p in parts).encode(), digest_size=16).hexdigest()


def fingerprint_of(event: dict[str, Any]) -> str:
    """The de-duplication key: the source's own key (scoped by source type), else a hash of the content.

    A resolution never folds into the problem it resolves: it gets a key of its own.
    """
    given = event.get("fingerprint")
    fp = f"{event['source_type']}:{given}" if given else default_fingerprint(event)
    if (event.get("metadata") or {}).get("resolution"):
        fp += ":resolved"
    if len(fp) > FINGERPRINT_MAX:
        fp = hashlib.blake2b(fp.encode(), digest_size=32).hexdigest()
    return fp


def normalize_item(item: dict[str, Any]) -> dict[str, Any]:
    """Parse ``item`` into an event with every schema field filled.

    Raises:
      InvalidEvent: the payload cannot be parsed; the caller stores the raw input with the error.
    """
    parser = PARSERS.get(item["source_type"])
    if parser is None:
        raise InvalidEvent(f"unknown source_type {item['source_type']!r}", field="source_type")
    received_at = received_time(item)
    event = parser(item["payload"], item, received_at)
    if event.get("severity") not in SEVERITIES:
        raise InvalidEvent(f"severity must be one of {', '.join(SEVERITIES)}", field="severity")
    event["source_type"] = event.get("source_type") or item["source_type"]
    event["source"] = event.get("source") or item.get("source")
    event["event_type"] = str(event.get("event_type") or "event")[:100]
    title = str(event.get("title") or event["event_type"])
    event["title"] = title if len(title) <= TITLE_MAX else title[: TITLE_MAX - 1] + "…"
    event["occurred_at"] = event.get("occurred_at") or received_at
    event["metadata"] = event.get("metadata") or {}
    host = event.get("host")
    named = node_named(host) if isinstance(host, str) and host else None
    if named is not None:
        # a trap from 10.0.3.1, a syslog header "SW-3.corp.example": the topology's node, so that the
        # correlator, rules and the console see one name; what the sender said stays in the metadata
        event["host"] = named
        event["metadata"] = {**event["metadata"], "host_as_sent": host}
    event["tags"] = list(event.get("tags") or [])
    event["fingerprint"] = fingerprint_of(event)
    event["id"] = item["id"]
    event["received_at"] = received_at
    return event

"""Event ingestion: the generic webhook and the adapters (Alertmanager, Grafana, PagerDuty).

The web process only validates and enqueues: it splits a body into items,
gives each an id, and answers 202 once RabbitMQ has confirmed the message that
carries them. Parsing into the event schema is the normalizer's job.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import falcon
import orjson

from ...events.envelope import make_items, new_ids
from ...parsing.webhooks import ADAPTERS, pagerduty_response
from ...publishing import Publisher
from ..media import check_json_type, decode_json, read_body, read_json
from ..middleware import Authentication

#: A PagerDuty body's ``routing_key``, found without parsing the body (it is the sender's API key).
ROUTING_KEY = re.compile(rb'"routing_key"\s*:\s*"([^"\\]{1,256})"')
#: Candidate routing keys tried, when the text ``"routing_key"`` occurs more than once in a body.
MAX_ROUTING_KEYS = 3


class Ingest:
    """``POST /api/v1/events/webhook`` and ``POST /api/v1/events/webhook/{adapter}``.

    Answers 202 with ``{event_id, status, correlation_id, processing_time_ms}`` per event
    (a list when the body was a list or carried several alerts), once the events are durable.
    """

    # Authentication happens in _accept: PagerDuty senders cannot set a header, and
    # their body's routing_key is their API key.
    permissions: dict[str, str | None] = {"POST": None}
    #: Accepting keeps no database connection (a key's lookup returns its own) and writes no rows: ReleaseDatabase and
    #: SendNotifications skip these routes.
    uses_database = False

    def __init__(self, publisher: Publisher, auth: Authentication, *, max_body_bytes: int) -> None:
        self.publisher = publisher
        self.auth = auth
        self.max_body_bytes = max_body_bytes

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._accept(req, resp, "webhook")

    def on_post_adapter(self, req: falcon.Request, resp: falcon.Response, adapter: str) -> None:
        if adapter not in ADAPTERS or adapter == "webhook":
            raise falcon.HTTPNotFound(
                title="Unknown adapter", description=f"adapters: {', '.join(a for a in ADAPTERS if a != 'webhook')}"
            )
        self._accept(req, resp, adapter)

    def _accept(self, req: falcon.Request, resp: falcon.Response, adapter: str) -> list[dict[str, Any]]:
        started = time.perf_counter()
        if adapter == "pagerduty" and not self.auth.bearer(req):
            body = self._read_pagerduty(req)
        else:
            self.auth.require(req, "ingest")
            body = read_json(req, max_bytes=self.max_body_bytes)
        payloads = ADAPTERS[adapter].split(body)
        request_id = _request_id(req)
        ids = new_ids(len(payloads) + (request_id is None))  # PERF: the request's id from the same urandom call
        if request_id is None:
            request_id = ids.pop()
        items = make_items(payloads, source_type=adapter, received_at=time.time(), source=req.remote_addr,
                           request_id=request_id, ids=ids)  # fmt: skip
        if adapter == "pagerduty":
            for item in items:  # the answer's dedup_key must find the event again
                item["payload"].setdefault("dedup_key", item["id"])
        if items:
            self.publisher.publish(items)
        elapsed_ms = round((time.perf_counter() - started) * 1000, 2)
        resp.status = falcon.HTTP_202
        resp.content_type = falcon.MEDIA_JSON
        many = len(items) != 1 or _is_many(body, adapter)
        resp.data = answers([item["id"] for item in items], request_id, elapsed_ms, many=many)
        return items

    def _read_pagerduty(self, req: falcon.Request) -> Any:
        """A PagerDuty body whose ``routing_key`` is the API key: the key is checked before the body is parsed,
        so a caller without a key costs a byte scan, not a JSON parse, and learns nothing about its body."""
        check_json_type(req)
        raw = read_body(req, max_bytes=self.max_body_bytes)
        candidates = list(dict.fromkeys(m.group(1) for m in ROUTING_KEY.finditer(raw)))[:MAX_ROUTING_KEYS]
        keys = [c.decode("utf-8", "replace") for c in candidates]
        key = next((k for k in keys[:-1] if self.auth.keys.verify(k) is not None), keys[-1] if keys else None)
        self.auth.require(req, "ingest", fallback_key=key)
        body = decode_json(raw)
        if not isinstance(body, dict) or body.get("routing_key") != key:
            raise falcon.HTTPUnauthorized(
                title="Unauthorized", description="routing_key is not the key the body was accepted with",
                challenges=["Bearer"],
            )  # fmt: skip
        return body


def answers(ids: list[str], request_id: str, elapsed_ms: float, *, many: bool) -> bytes:
    """The 202's body: ``{event_id, status, correlation_id, processing_time_ms}`` per event id, a list when ``many``,
    as :func:`orjson.dumps` writes the answers (same keys, same order).

    # PERF: the answers differ only by their event id (a UUID: nothing to escape), so the body is one join
    # around the ids, not a dict per event and its encoding (an array of 100 events: ~18 -> ~3 µs, and no
    # 100 dicts to free).
    """
    rest = orjson.dumps({"status": "accepted", "correlation_id": request_id, "processing_time_ms": elapsed_ms})
    tail = '",' + rest[1:].decode()  # '","status":"accepted",...}': closes an id and its answer
    head = '{"event_id":"'
    body = head + (tail + "," + head).join(ids) + tail if ids else ""
    return f"[{body}]".encode() if many else body.encode()


def _is_many(body: Any, adapter: str) -> bool:
    return isinstance(body, list) or adapter in ("alertmanager", "grafana")


def _request_id(req: falcon.Request) -> str | None:
    """The caller's X-Correlation-ID / X-Request-ID when it is a UUID; None: the request gets a new one (a UUIDv7)."""
    env = req.env  # PERF: the WSGI environ's keys directly; get_header() builds each key per call
    for header in ("HTTP_X_CORRELATION_ID", "HTTP_X_REQUEST_ID"):
        value = env.get(header)
        if value:
            try:
                return str(uuid.UUID(value))
            except ValueError:
                pass
    return None


class PagerDutyEnqueue(Ingest):
    """``POST /v2/enqueue``: the PagerDuty Events API v2, for tools pointed at a custom endpoint."""

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        items = self._accept(req, resp, "pagerduty")
        resp.data = orjson.dumps(pagerduty_response(items[0]["payload"], event_id=items[0]["id"]))

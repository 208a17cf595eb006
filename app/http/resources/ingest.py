"""Event ingestion: the generic webhook and the adapters (Alertmanager, Grafana, PagerDuty).

The web process only validates and enqueues: it splits a body into items,
gives each an id, and answers 202 once RabbitMQ has confirmed the message that
carries them. Parsing into the event schema is the normalizer's job.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import falcon
import orjson

from ...events.envelope import make_item
from ...ids import new_id
from ...parsing.webhooks import ADAPTERS, pagerduty_response
from ...publishing import Publisher
from ..errors import bad_request
from ..middleware import Authentication

JSON_TYPES = ("application/json",)


def read_json(req: falcon.Request, *, max_bytes: int) -> Any:
    """Read and decode a JSON body of at most ``max_bytes``.

    Raises:
      falcon.HTTPUnsupportedMediaType: the content type is not JSON (415).
      falcon.HTTPContentTooLarge: the body is larger than ``max_bytes`` (413).
      falcon.HTTPBadRequest: the body is empty or not JSON (400).
    """
    content_type = (req.content_type or "").split(";", 1)[0].strip().lower()
    if content_type not in JSON_TYPES and not content_type.endswith("+json"):
        raise falcon.HTTPUnsupportedMediaType(
            title="Unsupported media type",
            description=f"send application/json, not {content_type or 'no content type'!r}",
        )
    raw = req.bounded_stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        _drain(req)
        raise falcon.HTTPContentTooLarge(title="Body too large", description=f"the body exceeds {max_bytes} bytes")
    if not raw:
        raise bad_request("the body is empty; send a JSON event")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise bad_request(f"the body is not valid JSON: {e}") from None


#: Past this many bytes an oversize body is not read to its end: the connection is just closed.
DRAIN_LIMIT = 16 * 1024 * 1024


def _drain(req: falcon.Request) -> None:
    """Read the rest of an oversize body, so the client is sending nothing when the 413 arrives
    (otherwise it may see a reset instead of the answer)."""
    left = DRAIN_LIMIT
    while left > 0 and (chunk := req.bounded_stream.read(min(65536, left))):
        left -= len(chunk)


class Ingest:
    """``POST /api/v1/events/webhook`` and ``POST /api/v1/events/webhook/{adapter}``.

    Answers 202 with ``{event_id, status, correlation_id, processing_time_ms}`` per event
    (a list when the body was a list or carried several alerts), once the events are durable.
    """

    # Authentication happens in _accept: PagerDuty senders cannot set a header, and
    # their body's routing_key is their API key.
    permissions: dict[str, str] = {}

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
        pagerduty = adapter == "pagerduty" and not self.auth.bearer(req)
        if not pagerduty:
            self.auth.require(req, "ingest")
        body = read_json(req, max_bytes=self.max_body_bytes)
        if pagerduty:
            routing_key = body.get("routing_key") if isinstance(body, dict) else None
            self.auth.require(req, "ingest", fallback_key=routing_key if isinstance(routing_key, str) else None)
        payloads = ADAPTERS[adapter].split(body)
        request_id = _request_id(req)
        received_at = time.time()
        source = req.remote_addr
        items = [
            make_item(
                id=new_id(),
                source_type=adapter,
                received_at=received_at,
                payload=p,
                source=source,
                request_id=request_id,
            )
            for p in payloads
        ]
        if adapter == "pagerduty":
            for item in items:  # the answer's dedup_key must find the event again
                item["payload"].setdefault("dedup_key", item["id"])
        if items:
            self.publisher.publish(items)
        elapsed_ms = round((time.perf_counter() - started) * 1000, 2)
        answers = [
            {
                "event_id": item["id"],
                "status": "accepted",
                "correlation_id": request_id,
                "processing_time_ms": elapsed_ms,
            }
            for item in items
        ]
        resp.status = falcon.HTTP_202
        resp.media = answers[0] if len(answers) == 1 and not _is_many(body, adapter) else answers
        return items


def _is_many(body: Any, adapter: str) -> bool:
    return isinstance(body, list) or adapter in ("alertmanager", "grafana")


def _request_id(req: falcon.Request) -> str:
    """The caller's X-Request-ID / X-Correlation-ID when it is a UUID, else a new one."""
    for header in ("X-Correlation-ID", "X-Request-ID"):
        value = req.get_header(header)
        if value:
            try:
                return str(uuid.UUID(value))
            except ValueError:
                pass
    return str(uuid.uuid4())


class PagerDutyEnqueue(Ingest):
    """``POST /v2/enqueue``: the PagerDuty Events API v2, for tools pointed at a custom endpoint."""

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        items = self._accept(req, resp, "pagerduty")
        resp.media = pagerduty_response(items[0]["payload"], event_id=items[0]["id"])

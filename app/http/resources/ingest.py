"""Event ingestion: the generic webhook and the adapters (Alertmanager, Grafana, PagerDuty).

The web process only validates and enqueues: it splits a body into items,
gives each an id, and answers 202 once RabbitMQ has confirmed the message that
carries them. Parsing into the event schema is the normalizer's job.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

import falcon
import orjson

from ...events.envelope import make_item
from ...events.limits import MAX_DEPTH, first_problem
from ...ids import new_id
from ...parsing.webhooks import ADAPTERS, pagerduty_response
from ...publishing import Publisher
from ..errors import bad_request
from ..middleware import Authentication

JSON_TYPES = ("application/json",)

#: A PagerDuty body's ``routing_key``, found without parsing the body (it is the sender's API key).
ROUTING_KEY = re.compile(rb'"routing_key"\s*:\s*"([^"\\]{1,256})"')
#: Candidate routing keys tried, when the text ``"routing_key"`` occurs more than once in a body.
MAX_ROUTING_KEYS = 3


def read_json(req: falcon.Request, *, max_bytes: int, max_depth: int = MAX_DEPTH) -> Any:
    """Read and decode a JSON body of at most ``max_bytes`` that storage and the broker accept.

    Raises:
      falcon.HTTPUnsupportedMediaType: the content type is not JSON (415).
      falcon.HTTPContentTooLarge: the body is larger than ``max_bytes`` (413).
      falcon.HTTPBadRequest: the body is empty, not JSON, nested deeper than ``max_depth``, or
        holds a string PostgreSQL cannot store (400, naming the field).
    """
    check_json_type(req)
    return decode_json(read_body(req, max_bytes=max_bytes), max_depth=max_depth)


def check_json_type(req: falcon.Request) -> None:
    content_type = (req.content_type or "").split(";", 1)[0].strip().lower()
    if content_type not in JSON_TYPES and not content_type.endswith("+json"):
        raise falcon.HTTPUnsupportedMediaType(
            title="Unsupported media type",
            description=f"send application/json, not {content_type or 'no content type'!r}",
        )


def read_body(req: falcon.Request, *, max_bytes: int) -> bytes:
    """The request body, at most ``max_bytes``, sized by Content-Length or sent chunked.

    Raises:
      falcon.HTTPContentTooLarge: the body is larger than ``max_bytes`` (413).
      falcon.HTTPBadRequest: the body is empty (400).
    """
    # Falcon's bounded_stream trusts Content-Length alone and reads a chunked body as empty;
    # the server's own stream ends a chunked body at its last chunk.
    chunked = req.content_length is None and "chunked" in (req.get_header("Transfer-Encoding") or "").lower()
    stream = req.stream if chunked else req.bounded_stream
    raw = _read(stream, max_bytes + 1)
    if len(raw) > max_bytes:
        _drain(stream)
        raise falcon.HTTPContentTooLarge(title="Body too large", description=f"the body exceeds {max_bytes} bytes")
    if not raw:
        raise bad_request("the body is empty; send a JSON event")
    return raw


def decode_json(raw: bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """Decode ``raw`` and check it against what PostgreSQL and the broker accept.

    Raises:
      falcon.HTTPBadRequest: not JSON, too deep, a NUL or a lone surrogate (400, naming the field).
    """
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise _not_json(raw, e) from None
    problem = first_problem(body, max_depth=max_depth)
    if problem is not None:
        field, message = problem
        raise bad_request(f"{field}: {message}", field=field)
    return body


def _not_json(raw: bytes, error: orjson.JSONDecodeError) -> falcon.HTTPBadRequest:
    """Name the field when the body is JSON that orjson refuses (a lone surrogate, nesting past its limit)."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        return bad_request(f"the body is not valid JSON: {error}")
    problem = first_problem(body, max_depth=MAX_DEPTH)
    if problem is None:
        return bad_request(f"the body cannot be accepted: {error}")
    field, message = problem
    return bad_request(f"{field}: {message}", field=field)


def _read(stream: Any, size: int) -> bytes:
    parts: list[bytes] = []
    left = size
    while left > 0 and (chunk := stream.read(min(left, 65536))):
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


#: Past this many bytes an oversize body is not read to its end: the connection is just closed.
DRAIN_LIMIT = 16 * 1024 * 1024


def _drain(stream: Any) -> None:
    """Read the rest of an oversize body, so the client is sending nothing when the 413 arrives
    (otherwise it may see a reset instead of the answer)."""
    left = DRAIN_LIMIT
    while left > 0 and (chunk := stream.read(min(65536, left))):
        left -= len(chunk)


class Ingest:
    """``POST /api/v1/events/webhook`` and ``POST /api/v1/events/webhook/{adapter}``.

    Answers 202 with ``{event_id, status, correlation_id, processing_time_ms}`` per event
    (a list when the body was a list or carried several alerts), once the events are durable.
    """

    # Authentication happens in _accept: PagerDuty senders cannot set a header, and
    # their body's routing_key is their API key.
    permissions: dict[str, str | None] = {"POST": None}

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

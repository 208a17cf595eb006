"""Request bodies: JSON read within a size limit, decoded, and checked against what storage accepts.

Every resource that takes a JSON body reads it with :func:`read_json`; ingestion uses the parts
(:func:`check_json_type`, :func:`read_body`, :func:`decode_json`) to look at the raw bytes first.
"""

from __future__ import annotations

import json
from typing import Any

import falcon
import orjson

from ..events.limits import MAX_DEPTH, decoded_problem, first_problem
from .errors import bad_request

#: Content types read as JSON (besides any ``+json`` type).
JSON_TYPES = ("application/json",)


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
    length = req.content_length
    if length is not None and length <= max_bytes:
        # PERF: a body of known length within the limit is one read of exactly its length (WSGI servers stop
        # there), not a wrapper stream and a second read to find its end.
        raw = req.stream.read(length) if length else b""
        if not raw:
            raise bad_request("the body is empty", field="body")
        return raw
    # Falcon's bounded_stream trusts Content-Length alone and reads a chunked body as empty;
    # the server's own stream ends a chunked body at its last chunk.
    chunked = length is None and "chunked" in (req.get_header("Transfer-Encoding") or "").lower()
    stream = req.stream if chunked else req.bounded_stream
    raw = _read(stream, max_bytes + 1)
    if len(raw) > max_bytes:
        _drain(stream)
        raise falcon.HTTPContentTooLarge(title="Body too large", description=f"the body exceeds {max_bytes} bytes")
    if not raw:
        raise bad_request("the body is empty", field="body")
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
    problem = decoded_problem(raw, body, max_depth=max_depth)
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

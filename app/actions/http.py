"""The ``http`` action: call an automation service or any API.

The URL's scheme, host and port are the template's literal text; values substituted into its path
and query are percent-encoded (see :mod:`.render`), and the host must pass ``HTTP_ACTION_ALLOW``
(:mod:`.targets`) when the request is made. Redirects are not followed: a 3xx is an answer like any other, so a call never lands on another
host unnoticed. The response is read in chunks against one deadline and kept up to
:data:`MAX_BODY_BYTES`, so neither a slow nor a huge answer holds a worker.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import ssl
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx2

from ..config import Settings
from ..errors import ActionNotAllowed, InvalidRule
from .outcome import Outcome, truncate
from .render import check_url_template
from .targets import TargetPolicy, Unresolvable, pinned

logger = logging.getLogger(__name__)

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")
#: The most of a response body that is read; the rest is dropped.
MAX_BODY_BYTES = 1024 * 1024
#: Header, query-parameter and JSON key names whose values are secrets: masked wherever shown.
SECRET_NAME = re.compile(
    r"(^|[-_])auth($|[-_])|authori[sz]ation|token|secret|passw|(api|access|private)[-_]?key|cookie|signature|credential",
    re.IGNORECASE,
)
MASK = "***"
#: Fields whose substituted values are percent-encoded.
URL_FIELDS = frozenset({"url"})
#: A header name as HTTP defines a token.
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
#: Characters a header value cannot hold: line breaks end the header, other controls are refused by servers.
HEADER_UNSAFE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def mask_url(url: str) -> str:
    """``url`` fit for display: the password of its user part and secret query values masked."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = f"{parts.username}:{MASK}@{netloc.rpartition('@')[2]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, MASK if SECRET_NAME.search(k) else v) for k, v in pairs], safe="*")
    return parts._replace(netloc=netloc, query=query).geturl()


def validate(block: Any, where: str) -> None:
    """Raise :class:`InvalidRule` naming the field when ``block`` is not a valid ``http`` block."""
    if not isinstance(block, dict):
        raise InvalidRule("http is an object {method, url, headers, json, expected_status}", field=where)
    if not isinstance(block.get("method"), str) or block["method"].upper() not in METHODS:
        raise InvalidRule(f"method is one of {', '.join(METHODS)}", field=f"{where}.method")
    url = block.get("url")
    if not isinstance(url, str):
        raise InvalidRule("url is an http:// or https:// URL", field=f"{where}.url")
    check_url_template(url, where=f"{where}.url")
    headers = block.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        raise InvalidRule("headers map names to strings", field=f"{where}.headers")
    for name in headers:
        if not HEADER_NAME.fullmatch(name):
            raise InvalidRule(f"{name[:100]!r} is not a header name", field=f"{where}.headers")
    if _status_codes(block.get("expected_status", [])) is None:
        raise InvalidRule("expected_status is a status code or a list of them", field=f"{where}.expected_status")
    if not isinstance(block.get("verify_tls", True), bool):
        raise InvalidRule("verify_tls is true or false", field=f"{where}.verify_tls")


def _status_codes(expected: Any) -> list[int] | None:
    codes = expected if isinstance(expected, list) else [expected]
    if all(isinstance(c, int) and not isinstance(c, bool) and 100 <= c <= 599 for c in codes):
        return codes
    return None


def check_url(url: str, field: str) -> str:
    """``url`` when it is an absolute http(s) URL with a host, else :class:`InvalidRule`."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c in url for c in " \r\n\t"):
        raise InvalidRule(f"the rendered url {url[:200]!r} is not an http:// or https:// URL", field=field)
    return url


def plan(block: dict[str, Any]) -> dict[str, Any]:
    """What the request will be, from a rendered block."""
    validate(block, "http")
    headers = {str(k): str(v) for k, v in (block.get("headers") or {}).items()}
    for name, value in headers.items():
        if HEADER_UNSAFE.search(value):
            raise InvalidRule(
                "a rendered header value holds a line break or another control character", field=f"http.headers.{name}"
            )
    return {
        "integration": "http",
        "method": block["method"].upper(),
        "url": check_url(block["url"], "http.url"),
        "headers": headers,
        "json": block.get("json"),
        "expected_status": _status_codes(block.get("expected_status", [])) or [],
        "verify_tls": block.get("verify_tls", True),
    }


class _TooSlow(Exception):
    pass


def _read(response: httpx2.Response, deadline: float) -> tuple[bytes, bool]:
    """The body up to :data:`MAX_BODY_BYTES`, and whether more was dropped."""
    body = bytearray()
    for chunk in response.iter_bytes():
        if time.monotonic() > deadline:
            raise _TooSlow
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            return bytes(body[:MAX_BODY_BYTES]), True
    return bytes(body), False


@functools.cache
def _tls_context(verify: bool) -> ssl.SSLContext:
    """The TLS settings of every action's requests, built once per process and only read afterwards.

    PERF: building one loads the CA bundle: 30 ms of CPU on an idle core, 150 ms on a busy one.
    Per request, that capped the executor near 30 HTTP steps/s per core and, under gevent, stalled
    every other step meanwhile. Sharing it is safe: each request still gets its own client and
    connection (no pool is shared between targets), and the only setting the HTTP library applies
    per connection is the ALPN list, always ``http/1.1`` here. A changed CA bundle is read at restart.
    """
    return httpx2.create_ssl_context(verify=verify, trust_env=False)


def warm() -> None:
    """Build the TLS settings now (at an executor's start) rather than in its first HTTPS step (~0.4 s under load)."""
    _tls_context(True)


def perform(planned: dict[str, Any], *, settings: Settings, timeout_s: float) -> Outcome:
    """Send one request; a status outside ``expected_status`` (default: any 2xx) is a failure.

    Network errors, refused connections and answers slower than ``timeout_s`` are failed outcomes.

    Raises:
      ActionNotAllowed: the host is not in ``HTTP_ACTION_ALLOW``, or is (or resolves to) a
        link-local or cloud metadata address not listed there.
    """
    return send(planned, policy=TargetPolicy.parse(settings.http_action_allow), timeout_s=timeout_s)


def send(planned: dict[str, Any], *, policy: TargetPolicy, timeout_s: float, allow_list: bool = True) -> Outcome:
    """Send a planned request to an address ``policy`` allows (see :func:`perform`).

    Parameters:
      allow_list: Whether the policy's entries restrict the host; the refused ranges always apply.
    """
    method, url = planned["method"], planned["url"]
    deadline = time.monotonic() + timeout_s
    parts = urlsplit(url)
    # the origin only: a path or query may carry a secret that the plan shows masked
    logger.info("Calling %s %s://%s.", method, parts.scheme, parts.netloc.rpartition("@")[2])
    try:
        addresses = policy.check(
            parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80), allow_list=allow_list
        )
    except Unresolvable as e:
        return Outcome(success=False, output="", data={}, error=f"{method} {mask_url(url)}: {e}")
    except ActionNotAllowed:
        logger.warning("Refused %s to %r: not an allowed target.", method, parts.hostname)
        raise
    if not addresses:
        return Outcome(success=False, output="", data={}, error=f"{method} {mask_url(url)}: no address to connect to")
    target, host_header, extensions = pinned(url, addresses[0])
    headers = {k: v for k, v in planned["headers"].items() if not (host_header and k.lower() == "host")}
    try:
        # trust_env=False: no proxy or netrc from the environment decides where an action's request goes
        with (
            httpx2.Client(
                timeout=timeout_s,
                verify=_tls_context(bool(planned["verify_tls"])),
                follow_redirects=False,
                trust_env=False,
            ) as client,
            client.stream(
                method, target, headers={**headers, **host_header}, json=planned["json"], extensions=extensions
            ) as response,  # fmt: skip
        ):
            raw, truncated = _read(response, deadline)
    except (httpx2.TimeoutException, _TooSlow):
        return Outcome(
            success=False, output="", data={}, error=f"{method} {mask_url(url)}: no answer within {timeout_s:g} s"
        )
    except (httpx2.HTTPError, httpx2.InvalidURL) as e:
        return Outcome(success=False, output="", data={}, error=f"{method} {mask_url(url)}: {type(e).__name__}: {e}")
    status = response.status_code
    expected = planned["expected_status"]
    ok = status in expected if expected else 200 <= status < 300
    text = _decode(raw, response.charset_encoding)
    data: dict[str, Any] = {"status": status, "body": truncate(text), "truncated": truncated}
    if "json" in response.headers.get("content-type", "") and raw and not truncated:
        try:
            data["json"] = json.loads(text)
        except ValueError:
            pass
    error = None
    if not ok:
        error = f"HTTP {status} (expected {', '.join(map(str, expected)) or 'a 2xx status'})"
        if response.is_redirect:
            error += f"; the redirect to {response.headers.get('location')!r} was not followed"
    return Outcome(success=ok, output=truncate(f"HTTP {status}: {text}"), data=data, error=error)


def _decode(raw: bytes, charset: str | None) -> str:
    try:
        return raw.decode(charset or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return raw.decode("utf-8", errors="replace")

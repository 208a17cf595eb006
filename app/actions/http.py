"""The ``http`` action: call an automation service or any API."""

from __future__ import annotations

from typing import Any

import httpx2

from ..errors import InvalidRule
from .outcome import Outcome, truncate

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")


def validate(block: Any, where: str) -> None:
    if not isinstance(block, dict):
        raise InvalidRule("http is an object {method, url, headers, json, expected_status}", field=where)
    if str(block.get("method", "POST")).upper() not in METHODS:
        raise InvalidRule(f"method is one of {', '.join(METHODS)}", field=f"{where}.method")
    url = block.get("url")
    if not isinstance(url, str) or not (url.startswith(("http://", "https://")) or url.startswith("{{")):
        raise InvalidRule("url is an http:// or https:// URL", field=f"{where}.url")
    headers = block.get("headers") or {}
    if not isinstance(headers, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        raise InvalidRule("headers map names to strings", field=f"{where}.headers")
    expected = block.get("expected_status", [])
    codes = expected if isinstance(expected, list) else [expected]
    if not all(isinstance(c, int) and not isinstance(c, bool) and 100 <= c <= 599 for c in codes):
        raise InvalidRule("expected_status is a status code or a list of them", field=f"{where}.expected_status")
    if "verify_tls" in block and not isinstance(block["verify_tls"], bool):
        raise InvalidRule("verify_tls is true or false", field=f"{where}.verify_tls")


def plan(block: dict[str, Any]) -> dict[str, Any]:
    expected = block.get("expected_status")
    url = str(block["url"])
    if not url.startswith(("http://", "https://")):
        raise InvalidRule("the rendered url is not an http:// or https:// URL", field="http.url")
    return {
        "integration": "http",
        "method": str(block.get("method", "POST")).upper(),
        "url": url,
        "headers": dict(block.get("headers") or {}),
        "json": block.get("json"),
        "expected_status": expected if isinstance(expected, list) else [expected] if expected else [],
        "verify_tls": block.get("verify_tls", True),
    }


def perform(planned: dict[str, Any], *, timeout_s: float) -> Outcome:
    """One request; a status outside ``expected_status`` (default: any 2xx) is a failure."""
    try:
        with httpx2.Client(timeout=timeout_s, verify=planned["verify_tls"], follow_redirects=False,
                           trust_env=False) as client:  # fmt: skip
            response = client.request(planned["method"], planned["url"], headers=planned["headers"],
                                      json=planned["json"] if planned["json"] is not None else None)  # fmt: skip
    except httpx2.TimeoutException:
        return Outcome(success=False, output="", data={}, error=f"no answer within {timeout_s:.0f} s")
    except httpx2.HTTPError as e:
        return Outcome(success=False, output="", data={}, error=f"request failed: {type(e).__name__}: {e}")
    expected = planned["expected_status"]
    ok = response.status_code in expected if expected else 200 <= response.status_code < 300
    data: dict[str, Any] = {"status": response.status_code}
    if "json" in response.headers.get("content-type", ""):
        try:
            data["json"] = response.json()
        except ValueError:
            pass
    text = truncate(response.text)
    return Outcome(
        success=ok,
        output=f"HTTP {response.status_code}: {text}",
        data=data,
        error=None if ok else f"HTTP {response.status_code} (expected {expected or '2xx'})",
    )

"""Action integrations the executor runs: ``http``, ``shell``, ``notify`` and ``llm``.

A template action names its integration by ``type`` (``http``, ``shell``, ``notify``, ``llm``) or,
for the spec's categories (``diagnostic``, ``remediation``, ``notification``), by the one
integration block it carries. :func:`plan` renders the block in the sandbox and says exactly what
would run (a dry run stops there); :func:`perform` does it.
"""

from __future__ import annotations

from typing import Any

from ..config import Settings
from ..errors import InvalidRule
from . import http, llm, notify, shell
from .outcome import Outcome
from .render import check_syntax, render

INTEGRATIONS = ("http", "shell", "notify", "llm")
_MODULES: dict[str, Any] = {"http": http, "shell": shell, "notify": notify, "llm": llm}
#: Header names whose values are secrets: masked wherever a plan is shown.
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "api-key", "cookie", "x-auth-token"})

__all__ = ["INTEGRATIONS", "Outcome", "integration_of", "perform", "plan", "redact", "validate_action"]


def integration_of(action: dict[str, Any]) -> str:
    """Which integration runs a template action.

    Raises:
      InvalidRule: none applies, or several blocks make it ambiguous.
    """
    kind = action.get("type")
    if kind in INTEGRATIONS:
        return str(kind)
    present = [name for name in INTEGRATIONS if name in action]
    if len(present) == 1:
        return present[0]
    if not present and kind == "notification" and action.get("channels"):
        return "notify"
    if present:
        raise InvalidRule(f"an action carries one integration block, not {', '.join(present)}", field="type")
    raise InvalidRule(f"a {kind} action needs one of the blocks {', '.join(INTEGRATIONS)}", field="type")


def _block(action: dict[str, Any], integration: str) -> dict[str, Any]:
    block = action.get(integration)
    if block is None and integration == "notify" and "channels" in action:
        return {"channels": action["channels"], "subject": action.get("name"), "message": action.get("template", "")}
    if block is None and action.get("type") == integration:
        # ``{"type": "http", "url": …}``: the block's keys on the action itself
        return {k: v for k, v in action.items() if k not in ("id", "name", "type", "depends_on")}
    return block if isinstance(block, dict) else {}


def validate_action(action: dict[str, Any], *, where: str) -> None:
    """Check an action's integration block on write.

    Raises:
      InvalidRule: naming the field, e.g. ``actions[0].http.url``.
    """
    try:
        integration = integration_of(action)
    except InvalidRule as e:
        raise InvalidRule(e.message, field=f"{where}.type") from None
    block = _block(action, integration)
    _MODULES[integration].validate(block, f"{where}.{integration}")
    check_syntax(block, where=f"{where}.{integration}")


def plan(action: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """Render ``action`` against ``context``; return exactly what would run (JSON-serializable).

    Raises:
      InvalidRule: an undefined name or a sandbox violation while rendering.
    """
    integration = integration_of(action)
    rendered = render(_block(action, integration), context, where=f"{action.get('id')}.{integration}")
    planned: dict[str, Any] = _MODULES[integration].plan(rendered)
    return planned


def perform(planned: dict[str, Any], *, settings: Settings, timeout_s: float) -> Outcome:
    """Carry out a planned action within ``timeout_s``.

    Failures of the target come back as ``Outcome(success=False)``.

    Raises:
      ActionNotAllowed: what the safety rules refuse (shell disabled or program not allowed, no SMTP).
    """
    module = _MODULES[planned["integration"]]
    if planned["integration"] == "http":
        outcome: Outcome = module.perform(planned, timeout_s=timeout_s)
        return outcome
    result: Outcome = module.perform(planned, settings=settings, timeout_s=timeout_s)
    return result


def redact(planned: dict[str, Any]) -> dict[str, Any]:
    """A plan fit for display and storage: secret header values masked."""
    headers = planned.get("headers")
    if not isinstance(headers, dict):
        return planned
    masked = {k: ("***" if k.lower() in SECRET_HEADERS else v) for k, v in headers.items()}
    return {**planned, "headers": masked}

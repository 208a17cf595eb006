"""Action integrations the executor runs: ``http``, ``shell``, ``notify`` and ``llm``.

A template action names its integration by ``type`` (``http``, ``shell``, ``notify``, ``llm``) or,
for the spec's categories (``diagnostic``, ``remediation``, ``notification``), by the one
integration block it carries. :func:`plan` renders the block in the sandbox and says exactly what
would run (a dry run stops there); :func:`perform` does it; :func:`redact` masks its secrets for
display and storage.

Named secrets (``{{ secret.NAME }}``) show as ``***`` in a plan made without their values; the
plan that is performed is made with them (:func:`plan` ``secrets=``), is never stored, and
:func:`perform` masks any of their values that comes back in the outcome.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

from ..config import Settings
from ..errors import InvalidRule
from . import http, llm, notify, shell
from .outcome import Outcome
from .render import Secrets, check_rendered_url, check_syntax, render, secret_names

INTEGRATIONS = ("http", "shell", "notify", "llm")
#: Keys of an action that are about the step, not its integration (for ``{"type": "http", "url": …}``).
STEP_KEYS = frozenset({"id", "name", "type", "depends_on", "description"})

__all__ = [
    "INTEGRATIONS",
    "Outcome",
    "integration_of",
    "perform",
    "plan",
    "redact",
    "redact_template",
    "secrets_of",
    "validate_action",
]
#: Secrets shorter than this are not searched for in outcomes (masking every "a" would hide the answer).
MIN_MASKED_SECRET = 4


class _Integration(Protocol):
    URL_FIELDS: frozenset[str]

    def validate(self, block: Any, where: str) -> None: ...

    def plan(self, block: dict[str, Any]) -> dict[str, Any]: ...

    def perform(self, planned: dict[str, Any], *, settings: Settings, timeout_s: float) -> Outcome: ...


_MODULES: dict[str, _Integration] = {"http": http, "shell": shell, "notify": notify, "llm": llm}


def integration_of(action: dict[str, Any]) -> str:
    """Which integration runs a template action.

    Parameters:
      action: A template action: ``type`` is an integration, or a spec category
        (``diagnostic``, ``remediation``, ``notification``) whose one integration block decides.

    Returns:
      One of :data:`INTEGRATIONS`.

    Raises:
      InvalidRule: no integration applies, or several blocks make it ambiguous (``field="type"``).
    """
    kind = action.get("type")
    present = [name for name in INTEGRATIONS if name in action]
    if kind in INTEGRATIONS:
        present = [name for name in present if name != kind]
        if present:
            raise InvalidRule(f"a {kind} action cannot also carry a {present[0]} block", field="type")
        return str(kind)
    if len(present) == 1:
        return present[0]
    if present:
        raise InvalidRule(f"an action carries one integration block, not {' and '.join(present)}", field="type")
    if kind == "notification" and action.get("channels"):
        return "notify"
    raise InvalidRule(f"a {kind} action needs one of the blocks {', '.join(INTEGRATIONS)}", field="type")


def _block(action: dict[str, Any], integration: str) -> Any:
    if integration in action:
        return action[integration]
    if integration == "notify" and action.get("type") != "notify":
        # a spec-style notification: the template's channels, named after the action
        return {"channels": action["channels"], "subject": action.get("name"), "message": action.get("template", "")}
    # ``{"type": "http", "url": …}``: the block's keys on the action itself
    return {key: value for key, value in action.items() if key not in STEP_KEYS}


def validate_action(action: dict[str, Any], *, where: str) -> None:
    """Check an action's integration block when a template is written.

    Parameters:
      action: The template action.
      where: Its place in the template, e.g. ``actions[0]``; errors name fields below it.

    Raises:
      InvalidRule: naming the field, e.g. ``actions[0].http.url``; Jinja2 syntax errors included.
    """
    try:
        integration = integration_of(action)
    except InvalidRule as e:
        raise InvalidRule(e.message, field=f"{where}.type") from None
    block = _block(action, integration)
    _MODULES[integration].validate(block, f"{where}.{integration}")
    check_syntax(block, where=f"{where}.{integration}")
    secret_names(block, where=f"{where}.{integration}")


def secrets_of(action: dict[str, Any]) -> set[str]:
    """The names of the secrets an action uses (``{{ secret.NAME }}``).

    Raises:
      InvalidRule: no integration applies, or a secret is not named literally.
    """
    integration = integration_of(action)
    return secret_names(_block(action, integration), where=f"{action.get('id') or 'action'}.{integration}")


def plan(
    action: dict[str, Any], context: dict[str, Any], *, secrets: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Render an action in the sandbox and describe exactly what would run.

    Only the operator's strings are templates: event values are substituted as data and never
    rendered again (percent-encoded in URLs, whose scheme, host and port stay the template's),
    and a shell program is always the template's own bare name.

    Parameters:
      action: The template action.
      context: The render context: ``event``, ``incident``, ``rule``, ``variables``, ``steps``,
        ``execution`` …, plus each variable by name.
      secrets: The values of the secrets the action names (:func:`secrets_of`), for the plan that
        is performed; None shows each as ``***`` (plans that are displayed, stored or dry-run).

    Returns:
      A JSON-serializable plan: ``{"integration": "http", "method", "url", "headers", "json",
      "expected_status", "verify_tls"}``, ``{"integration": "shell", "program", "args"}``,
      ``{"integration": "notify", "channel", "to", "subject", "message", "url"[, "data"]}`` (an empty
      ``to`` means ``NOTIFY_EMAIL_TO``) or ``{"integration": "llm", "prompt"}``.

    Raises:
      InvalidRule: an invalid block, an undefined name or secret, a sandbox violation while
        rendering, or a rendered URL leading elsewhere than its template's scheme, host and port.
    """
    integration = integration_of(action)
    module, block = _MODULES[integration], _block(action, integration)
    where = f"{action.get('id') or 'action'}.{integration}"
    # before rendering: what must be literal (a program's name, a host) is checked as written
    module.validate(block, where)
    names = secret_names(block, where=where)
    missing = sorted(names - set(secrets)) if secrets is not None else []
    if missing:
        raise InvalidRule(f"unknown secret {missing[0]!r} (opsconductor secrets set {missing[0]})", field=where)
    shown = Secrets(secrets) if secrets is not None else Secrets.masked(names)
    rendered = render(block, {**context, "secret": shown}, where=where, urls=module.URL_FIELDS)
    for key in module.URL_FIELDS:
        if isinstance(block.get(key), str):
            check_rendered_url(block[key], rendered[key], where=f"{where}.{key}")
    return module.plan(rendered)


def perform(planned: dict[str, Any], *, settings: Settings, timeout_s: float, secrets: Collection[str] = ()) -> Outcome:
    """Carry out a plan made by :func:`plan`.

    Parameters:
      planned: The plan, as :func:`plan` returned it (not redacted).
      settings: Where shell programs live, the SMTP server, the LLM, ``HTTP_ACTION_ALLOW``.
      timeout_s: How long the target may take, in seconds.
      secrets: Values of the secrets in the plan: masked wherever the outcome repeats them (a
        target echoing its request, an error quoting the URL).

    Returns:
      The outcome; failures of the target (unexpected HTTP status, exit code other than 0, SMTP
      refusal, network errors, timeouts) are ``Outcome(success=False, error=…)``.

    Raises:
      ActionNotAllowed: what the safety rules refuse: shell actions disabled, a program not in
        ``SHELL_ACTIONS_DIR``, email without an SMTP server or recipients, an http target not in
        ``HTTP_ACTION_ALLOW`` or at a link-local or cloud metadata address.
      InvalidRule: ``planned`` names no known integration.
    """
    module = _MODULES.get(planned.get("integration", ""))
    if module is None:
        raise InvalidRule(f"unknown integration {planned.get('integration')!r}", field="integration")
    outcome = module.perform(planned, settings=settings, timeout_s=timeout_s)
    values = [v for v in secrets if len(v) >= MIN_MASKED_SECRET]
    if not values:
        return outcome
    return Outcome(
        success=outcome.success,
        output=mask_values(outcome.output, values),
        data=mask_values(outcome.data, values),
        error=mask_values(outcome.error, values),
    )


def mask_values(value: Any, secrets: Collection[str]) -> Any:
    """``value`` (strings, dicts and lists of them) with each secret, as is or percent-encoded, shown as ``***``."""
    if isinstance(value, str):
        for secret in sorted(secrets, key=len, reverse=True):
            value = value.replace(secret, http.MASK).replace(quote(secret, safe=""), http.MASK)
        return value
    if isinstance(value, dict):
        return {k: mask_values(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_values(v, secrets) for v in value]
    return value


def redact(planned: dict[str, Any]) -> dict[str, Any]:
    """A copy of a plan fit for display and storage, with its secrets masked.

    Masked: values of secret-looking headers and JSON keys (``Authorization``, ``X-Api-Key``,
    ``password`` …), the password in a URL and secret query parameters, and the path of Slack and
    Teams webhook URLs (which is their key).
    """
    shown = dict(planned)
    if isinstance(shown.get("headers"), dict):
        shown["headers"] = _masked(shown["headers"])
    for key in ("json", "data"):
        if key in shown:
            shown[key] = _masked(shown[key])
    url = shown.get("url")
    if isinstance(url, str):
        shown["url"] = http.mask_url(url)
        if {shown.get("channel"), *shown.get("channels", ())} & {"slack", "teams"}:
            parts = urlsplit(shown["url"])
            shown["url"] = f"{parts.scheme}://{parts.netloc}/{http.MASK}"
    return shown


#: What may stay of a secret-looking value besides references to secrets: an authorization scheme.
_SCHEMES = frozenset({"", "bearer", "basic", "token", "apikey", "key"})
_TEMPLATE_MARKUP = re.compile(r"{{.*?}}|{%.*?%}|{#.*?#}", re.DOTALL)
_URL_PASSWORD = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^/?#@:]*:)([^/?#@]*)(@)")
_QUERY_PAIR = re.compile(r"([?&])([^=&#]+)=([^&#]*)")


def _only_references(text: str) -> bool:
    """Whether ``text`` holds nothing secret itself: only ``{{ secret.NAME }}``-style markup and a scheme word."""
    return "secret" in text and _TEMPLATE_MARKUP.sub("", text).strip().lower() in _SCHEMES


def _template_url(url: str, hooks: bool) -> str:
    if hooks:  # a Slack or Teams webhook's path is its key
        parts = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*://[^/?#]*)", url)
        return f"{parts.group(1)}/{http.MASK}" if parts else http.MASK
    url = _URL_PASSWORD.sub(lambda m: m.group(0) if _only_references(m.group(2)) else m.group(1) + http.MASK + "@", url)

    def pair(m: re.Match[str]) -> str:
        if not http.SECRET_NAME.search(m.group(2)) or _only_references(m.group(3)):
            return m.group(0)
        return f"{m.group(1)}{m.group(2)}={http.MASK}"

    return _QUERY_PAIR.sub(pair, url)


def redact_template(value: Any) -> Any:
    """A copy of a template (or any part of one) fit for every reader: the secrets written in it masked.

    Masked: values of secret-looking keys (headers such as ``Authorization``, JSON keys such as
    ``password``), the password and secret query values of URLs, and the path of Slack and Teams
    webhook URLs. A value that only refers to named secrets (``Bearer {{ secret.TOKEN }}``) holds no
    secret and stays as written.
    """
    if isinstance(value, list):
        return [redact_template(item) for item in value]
    if not isinstance(value, dict):
        return value
    listed = value.get("channels")
    channels: list[Any] = listed if isinstance(listed, list) else [value.get("channel")]
    hooks = bool({"slack", "teams"} & {str(c) for c in channels})
    shown: dict[str, Any] = {}
    for key, item in value.items():
        if http.SECRET_NAME.search(str(key)):
            shown[key] = item if isinstance(item, str) and _only_references(item) else http.MASK
        elif key == "url" and isinstance(item, str):
            shown[key] = _template_url(item, hooks)
        else:
            shown[key] = redact_template(item)
    return shown


def _masked(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: http.MASK if http.SECRET_NAME.search(str(k)) else _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(item) for item in value]
    return value

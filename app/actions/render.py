"""Rendering an action's arguments in Jinja2's sandbox.

Only the operator's template strings are templates. Values from events (titles, hosts, metadata)
enter as data: they are substituted into the rendered strings and never rendered again, so an
event whose title contains ``{{ … }}`` or ``$(…)`` is text, never code. The sandbox refuses
attribute tricks (``''.__class__.__mro__``); an undefined name is an error, not an empty string.

Where a value lands decides how it is written. In a URL field every substituted value (an event's
field, a variable, a secret) is percent-encoded as one path segment or query value: ``/ ? # % &``
and everything else that is not unreserved, so ``../../admin?x#`` stays inside the segment it was
put in. Only the template's literal text shapes a URL, and its scheme, host and port must be
literal (:func:`check_url_template`). Secrets are named as ``{{ secret.NAME }}`` and nothing else:
:func:`secret_names` finds them so that only those are looked up, and a dynamic lookup
(``secret[event.host]``), which would let an event choose a secret, is refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlsplit

from jinja2 import StrictUndefined, TemplateError, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from ..errors import InvalidRule

#: What a secret shows wherever a plan is displayed or stored.
MASK = "***"
#: A secret's name: usable as ``secret.NAME`` (no leading underscore: the sandbox hides those).
SECRET_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,99}")
#: Jinja2 markup inside a template string: an expression, a statement or a comment.
_MARKUP = re.compile(r"{{.*?}}|{%.*?%}|{#.*?#}", re.DOTALL)


class Masked(str):
    """A secret's stand-in in a displayed plan: shown as it is, never percent-encoded."""

    __slots__ = ()


class Secrets:
    """The ``secret`` name of a render context: ``secret.NAME`` gives the value given for NAME.

    Only ``[]`` lookups reach the values (the sandbox tries attributes first, then items), so a
    secret may be named ``items`` or ``keys`` without meeting a dict method. A name not given is
    undefined, which :class:`~jinja2.StrictUndefined` turns into an error.
    """

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)

    def __getitem__(self, name: str) -> str:
        return self._values[name]

    def __contains__(self, name: object) -> bool:
        return name in self._values

    @classmethod
    def masked(cls, names: Iterable[str]) -> Secrets:
        """Every name shows :data:`MASK` (for plans that are displayed, stored or dry-run)."""
        return cls({name: Masked(MASK) for name in names})


def _url_value(value: Any) -> Any:
    """``finalize`` of URL fields: each substituted value becomes one percent-encoded segment."""
    if isinstance(value, Masked):
        return value
    text = "" if value is None else str(value)
    quoted = quote(text, safe="")
    if quoted and quoted.strip(".") == "":
        quoted = quoted.replace(".", "%2E")  # ``.`` and ``..`` would be path segments a server resolves
    return quoted


_ENV = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
_URL_ENV = ImmutableSandboxedEnvironment(
    undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True, finalize=_url_value
)


@lru_cache(maxsize=4096)
def _compiled(source: str) -> Any:
    return _ENV.from_string(source)


@lru_cache(maxsize=1024)
def _compiled_url(source: str) -> Any:
    return _URL_ENV.from_string(source)


def check_syntax(value: Any, *, where: str) -> None:
    """Raise :class:`InvalidRule` naming ``where`` when a string in ``value`` is not valid Jinja2."""
    if isinstance(value, str):
        try:
            _compiled(value)
        except TemplateError as e:
            raise InvalidRule(f"template syntax error: {e}", field=where) from None
    elif isinstance(value, dict):
        for key, item in value.items():
            check_syntax(item, where=f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            check_syntax(item, where=f"{where}[{i}]")


def _strings(value: Any, where: str) -> Iterable[tuple[str, str]]:
    if isinstance(value, str):
        yield value, where
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, f"{where}[{i}]")


def secret_names(value: Any, *, where: str = "action") -> set[str]:
    """The secrets that the template strings in ``value`` name as ``secret.NAME`` or ``secret['NAME']``.

    Raises:
      InvalidRule: ``secret`` used otherwise (whole, or with a computed name), or a syntax error,
        naming the field.
    """
    names: set[str] = set()
    for text, field in _strings(value, where):
        if "secret" not in text or "{" not in text:
            continue  # PERF: most strings name no secret
        try:
            tree = _ENV.parse(text)
        except TemplateError as e:
            raise InvalidRule(f"template syntax error: {e}", field=field) from None
        lookups: dict[int, nodes.Getattr | nodes.Getitem] = {
            id(node.node): node
            for node in tree.find_all((nodes.Getattr, nodes.Getitem))
            if isinstance(node, nodes.Getattr | nodes.Getitem)
            and isinstance(node.node, nodes.Name)
            and node.node.name == "secret"
        }
        for name in tree.find_all(nodes.Name):
            if name.name != "secret":
                continue
            lookup = lookups.get(id(name))
            key = getattr(lookup, "attr", None)
            if isinstance(lookup, nodes.Getitem) and isinstance(lookup.arg, nodes.Const):
                key = lookup.arg.value
            if not isinstance(key, str) or not SECRET_NAME.fullmatch(key):
                raise InvalidRule("a secret is named literally, as {{ secret.NAME }}", field=field)
            names.add(key)
    return names


def check_url_template(template: str, *, where: str) -> tuple[str, str, int | None]:
    """The literal scheme, host and port of a URL template.

    Template markup may appear in the user part (``https://bot:{{ secret.PW }}@…``), the path,
    the query and the fragment, never in the scheme, host or port: those decide where a request
    goes, so they are the operator's text alone.

    Raises:
      InvalidRule: not an http(s) URL, or markup in its scheme, host or port, naming ``where``.
    """
    literal = _MARKUP.sub("\x00", template)
    scheme, separator, rest = literal.partition("://")
    if scheme not in ("http", "https") or not separator:
        raise InvalidRule("url is an http:// or https:// URL with a literal scheme and host", field=where)
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    host_port = authority.rpartition("@")[2]
    if "\x00" in host_port or "{" in host_port or "}" in host_port:
        raise InvalidRule("the url's host and port are literal (no {{ … }} before the path)", field=where)
    try:
        probe = urlsplit(f"//{host_port}")
        host, port = probe.hostname, probe.port
    except ValueError as e:
        raise InvalidRule(f"the url's host or port is not valid: {e}", field=where) from None
    if not host:
        raise InvalidRule("the url has no host", field=where)
    return scheme, host, port


def check_rendered_url(template: str, rendered: str, *, where: str) -> str:
    """``rendered`` when it goes where its template's literal scheme, host and port say, else :class:`InvalidRule`."""
    expected = check_url_template(template, where=where)
    try:
        parts = urlsplit(rendered)
        actual = (parts.scheme, parts.hostname or "", parts.port)
    except ValueError as e:
        raise InvalidRule(f"the rendered url is not valid: {e}", field=where) from None
    if actual != expected:
        raise InvalidRule(
            f"the rendered url goes to {actual[0]}://{actual[1]}:{actual[2] or ''} instead of the template's "
            f"{expected[0]}://{expected[1]}:{expected[2] or ''}",
            field=where,
        )
    segments = parts.path.split("/")
    if any(re.fullmatch(r"(\.|%2e){1,2}", segment, re.IGNORECASE) for segment in segments):
        raise InvalidRule("the rendered url's path holds a . or .. segment", field=where)
    return rendered


def render(value: Any, context: dict[str, Any], *, where: str = "action", urls: frozenset[str] = frozenset()) -> Any:
    """``value`` with every string rendered against ``context`` (dicts and lists recursively).

    Parameters:
      urls: Keys of ``value`` (a dict) whose strings are URLs: substituted values are percent-encoded there.

    Raises:
      InvalidRule: an undefined name, a sandbox violation, or a syntax error, naming ``where``.
    """
    if isinstance(value, str):
        return _render(value, context, where, url=False)
    if isinstance(value, dict):
        return {
            key: _render(item, context, f"{where}.{key}", url=True)
            if key in urls and isinstance(item, str)
            else render(item, context, where=f"{where}.{key}")
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [render(item, context, where=f"{where}[{i}]") for i, item in enumerate(value)]
    return value


def _render(source: str, context: dict[str, Any], where: str, *, url: bool) -> str:
    if "{" not in source:
        return source  # PERF: most strings are plain
    try:
        return str((_compiled_url if url else _compiled)(source).render(context))
    except SecurityError as e:
        raise InvalidRule(f"refused by the sandbox: {e}", field=where) from None
    except TemplateError as e:
        raise InvalidRule(f"cannot render: {e}", field=where) from None

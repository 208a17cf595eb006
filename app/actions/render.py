"""Rendering an action's arguments in Jinja2's sandbox.

Only the operator's template strings are templates. Values from events (titles, hosts, metadata)
enter as data: they are substituted into the rendered strings and never rendered again, so an
event whose title contains ``{{ … }}`` or ``$(…)`` is text, never code. The sandbox refuses
attribute tricks (``''.__class__.__mro__``); an undefined name is an error, not an empty string.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from ..errors import InvalidRule

_ENV = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


@lru_cache(maxsize=4096)
def _compiled(source: str) -> Any:
    return _ENV.from_string(source)


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


def render(value: Any, context: dict[str, Any], *, where: str = "action") -> Any:
    """``value`` with every string rendered against ``context`` (dicts and lists recursively).

    Raises:
      InvalidRule: an undefined name, a sandbox violation, or a syntax error, naming ``where``.
    """
    if isinstance(value, str):
        if "{" not in value:
            return value  # PERF: most strings are plain
        try:
            return _compiled(value).render(context)
        except SecurityError as e:
            raise InvalidRule(f"refused by the sandbox: {e}", field=where) from None
        except TemplateError as e:
            raise InvalidRule(f"cannot render: {e}", field=where) from None
    if isinstance(value, dict):
        return {key: render(item, context, where=f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, list):
        return [render(item, context, where=f"{where}[{i}]") for i, item in enumerate(value)]
    return value

"""What an action reports back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Outputs are kept whole up to this many characters.
MAX_OUTPUT = 64 * 1024


@dataclass(frozen=True, kw_only=True)
class Outcome:
    success: bool
    #: Human-readable, at most :data:`MAX_OUTPUT` characters.
    output: str
    #: Structured result: HTTP status and JSON body, exit code, recipients …
    data: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def truncate(text: str) -> str:
    return text if len(text) <= MAX_OUTPUT else text[:MAX_OUTPUT] + f"… ({len(text) - MAX_OUTPUT} more characters)"

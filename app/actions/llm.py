"""The ``llm`` action: ask the configured model for an analysis or summary, attached to the execution.

The answer is text kept in the step's result; nothing in it is ever run.
"""

from __future__ import annotations

import logging
from typing import Any

from ..config import Settings
from ..errors import InvalidRule
from .outcome import Outcome, truncate

logger = logging.getLogger(__name__)

#: No field is a URL.
URL_FIELDS: frozenset[str] = frozenset()


def validate(block: Any, where: str) -> None:
    """Raise :class:`InvalidRule` naming the field when ``block`` is not a valid ``llm`` block."""
    if not isinstance(block, dict) or not isinstance(block.get("prompt"), str) or not block["prompt"].strip():
        raise InvalidRule("llm is an object {prompt} with a non-empty prompt", field=f"{where}.prompt")


def plan(block: dict[str, Any]) -> dict[str, Any]:
    """The rendered prompt."""
    validate(block, "llm")
    return {"integration": "llm", "prompt": block["prompt"]}


def perform(planned: dict[str, Any], *, settings: Settings, timeout_s: float) -> Outcome:
    """Ask the model; no key or no usable answer within ``timeout_s`` is a failed outcome."""
    if not settings.openai_api_key:
        return Outcome(success=False, output="", data={}, error="no LLM configured (OPENAI_API_KEY is not set)")
    # PERF: imported here, not above: the openai client takes a noticeable part of a second to import
    # and most processes that load the integrations (web, evaluator) never ask a model.
    from ..llm_client import LlmUnavailable, ask

    logger.info(
        "Asking the model %r for an analysis (%d characters of prompt).", settings.openai_model, len(planned["prompt"])
    )
    try:
        answer = ask(planned["prompt"], settings=settings, timeout_s=timeout_s)
    except LlmUnavailable as e:
        return Outcome(success=False, output="", data={}, error=f"the LLM did not answer: {e}")
    return Outcome(success=True, output=truncate(answer), data={"model": settings.openai_model})

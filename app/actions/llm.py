"""The ``llm`` action: ask the configured model for an analysis or summary, attached to the execution.

The answer is text kept in the step's result; nothing in it is ever run.
"""

from __future__ import annotations

from typing import Any

from ..config import Settings
from ..errors import InvalidRule
from .outcome import Outcome, truncate


def validate(block: Any, where: str) -> None:
    if not isinstance(block, dict) or not isinstance(block.get("prompt"), str) or not block["prompt"].strip():
        raise InvalidRule("llm is an object {prompt}", field=f"{where}.prompt")


def plan(block: dict[str, Any]) -> dict[str, Any]:
    return {"integration": "llm", "prompt": str(block["prompt"])}


def perform(planned: dict[str, Any], *, settings: Settings, timeout_s: float) -> Outcome:
    if not settings.openai_api_key:
        return Outcome(success=False, output="", error="no LLM configured (OPENAI_API_KEY is not set)")
    from ..autonomous.llm import LlmUnavailable, ask

    try:
        answer = ask(planned["prompt"], settings=settings, timeout_s=timeout_s)
    except LlmUnavailable as e:
        return Outcome(success=False, output="", error=f"the LLM did not answer: {e}")
    return Outcome(success=True, output=truncate(answer), data={"model": settings.openai_model})

"""The decider's LLM analysis, through the transport of :mod:`app.llm_client`.

One structured-output request (a JSON schema whose enums hold the decisions and the ids of the
template's actions) with the incident summary. The answer is validated again here: the model
may only choose among the operator's actions, and nothing it returns is ever executed. The
transport retries transient failures inside a total time budget; a malformed answer is asked
again once. Whatever fails raises :class:`LlmUnavailable`, and the caller's deterministic
policy decides alone.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from openai.types.chat import ChatCompletionMessageParam
from openai.types.shared_params import ResponseFormatJSONSchema

from ..config import Settings
from ..llm_client import LlmAnswerInvalid, LlmUnavailable, chat
from .policy import DECISIONS
from .risk import RISK_LEVELS

logger = logging.getLogger(__name__)

__all__ = ["Analysis", "LlmAnswerInvalid", "LlmUnavailable", "analyze"]

#: Reasoning and summary are for humans; a runaway answer is cut (characters).
MAX_TEXT_CHARS = 4000

SYSTEM_PROMPT = (
    "You are the incident analyst of an AIOps engine. Given an incident summary and the response "
    "actions the operators defined for it, decide one of: investigate, remediate, escalate, ignore. "
    "Give your confidence (0 to 1), your reasoning, a short natural-language summary of the incident, "
    "the risk level if you can judge it, and the ids of the recommended actions, chosen ONLY among "
    "the listed actions. You cannot invent actions or commands; anything else you write is treated "
    "as text for humans and never executed. When no actions are listed, the operator asks for an "
    "analysis only: recommend none."
)


@dataclass(frozen=True, kw_only=True)
class Analysis:
    """The model's view of an incident, already checked against the schema and the allowed actions.

    Attributes:
      decision: ``investigate``, ``remediate``, ``escalate`` or ``ignore``.
      confidence: From 0 to 1.
      reasoning: Why, in the model's words (text for humans only).
      summary: A natural-language summary of the incident.
      recommended_action_ids: Ids among the allowed actions only; unknown ids are dropped.
      risk_level: ``low``, ``medium``, ``high`` or ``critical`` when the model gave one.
      model: The model that answered.
    """

    decision: str
    confidence: float
    reasoning: str
    summary: str
    recommended_action_ids: tuple[str, ...]
    risk_level: str | None
    model: str


def _schema(action_ids: list[str]) -> dict[str, Any]:
    # A JSON schema enum may not be empty: with no actions, no id can be recommended.
    ids: dict[str, Any] = {"type": "array", "items": {"type": "string", "enum": action_ids}}
    if not action_ids:
        ids = {"type": "array", "items": {"type": "string"}, "maxItems": 0}
    return {
        "type": "object",
        "additionalProperties": False,
        # strict mode wants every property required; an unknown risk level is null
        "required": ["decision", "confidence", "reasoning", "summary", "recommended_action_ids", "risk_level"],
        "properties": {
            "decision": {"type": "string", "enum": list(DECISIONS)},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "reasoning": {"type": "string"},
            "summary": {"type": "string"},
            "recommended_action_ids": ids,
            "risk_level": {"type": ["string", "null"], "enum": [*RISK_LEVELS, None]},
        },
    }


def _parse(content: str, allowed: list[str], model: str) -> Analysis:
    """Validate an answer against the schema again: the server is not trusted to enforce it."""
    try:
        answer = json.loads(content)
    except ValueError:
        raise LlmAnswerInvalid(f"the answer is not JSON: {content[:80]!r}") from None
    if not isinstance(answer, dict) or answer.get("decision") not in DECISIONS:
        raise LlmAnswerInvalid(f"no valid decision in the answer: {content[:80]!r}")
    confidence = answer.get("confidence")
    if not isinstance(confidence, int | float) or isinstance(confidence, bool) or not 0 <= confidence <= 1:
        raise LlmAnswerInvalid(f"confidence must be a number from 0 to 1, got {confidence!r}")
    reasoning, summary = answer.get("reasoning"), answer.get("summary")
    if not isinstance(reasoning, str) or not isinstance(summary, str):
        raise LlmAnswerInvalid("reasoning and summary must be text")
    ids = answer.get("recommended_action_ids") or []
    if not isinstance(ids, list):
        raise LlmAnswerInvalid("recommended_action_ids is not a list")
    recommended = tuple(dict.fromkeys(i for i in ids if isinstance(i, str) and i in allowed))
    unknown = [i for i in ids if i not in recommended]
    if unknown:
        logger.warning("The LLM recommended actions that are not the template's, dropped: %r", unknown[:5])
    risk_level = answer.get("risk_level")
    return Analysis(
        decision=answer["decision"],
        confidence=float(confidence),
        reasoning=reasoning[:MAX_TEXT_CHARS],
        summary=summary[:MAX_TEXT_CHARS],
        recommended_action_ids=recommended,
        risk_level=risk_level if risk_level in RISK_LEVELS else None,
        model=model,
    )


def analyze(incident: dict[str, Any], *, allowed_actions: list[dict[str, Any]], settings: Settings) -> Analysis:
    """Ask the model for a decision about ``incident``, choosing only among ``allowed_actions``.

    Parameters:
      incident: A JSON-serializable summary (incident, events, correlations, asset context, risk, past outcomes).
      allowed_actions: The template's actions, ``[{"id", "name", "type", "risk_level", "description"?}]``.
      settings: ``openai_api_key``, ``openai_base_url``, ``openai_model`` and ``llm_timeout_s`` (the total budget).

    Returns:
      The validated analysis; its ``recommended_action_ids`` are among ``allowed_actions`` only.

    Raises:
      LlmAnswerInvalid: the model answered twice with something the schema does not allow.
      LlmUnavailable: no key, a refusal, or the server failed within ``settings.llm_timeout_s``.
    """
    allowed = [str(action["id"]) for action in allowed_actions]
    model = settings.openai_model
    messages: list[ChatCompletionMessageParam] = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": json.dumps({"incident": incident, "actions": allowed_actions}, default=str)},
    ]
    response_format: ResponseFormatJSONSchema = {
        "type": "json_schema",
        "json_schema": {"name": "incident_decision", "strict": True, "schema": _schema(allowed)},
    }
    return chat(
        messages,
        settings=settings,
        budget_s=settings.llm_timeout_s,
        parse=lambda content: _parse(content, allowed, model),
        response_format=response_format,
        temperature=0,
    )

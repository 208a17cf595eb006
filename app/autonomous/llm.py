"""LLM analysis through the ``openai`` package, for any OpenAI-compatible server.

One structured-output request (a JSON schema whose enums hold the decisions and the ids of the
template's actions) with the incident summary. The answer is validated again here: the model
may only choose among the operator's actions, and nothing it returns is ever executed. tenacity
retries transient failures (connection errors, timeouts, 429, 5xx) with exponential backoff
inside a total time budget; a malformed answer is asked again once. Whatever fails raises
:class:`LlmUnavailable`, and the caller's deterministic policy decides alone.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import openai
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

from ..config import Settings
from ..errors import TransientError
from .decision import DECISIONS
from .risk import RISK_LEVELS

logger = logging.getLogger(__name__)

#: At most this many requests per analysis, however much of the budget is left.
MAX_ATTEMPTS = 4
SYSTEM_PROMPT = (
    "You are the incident analyst of an AIOps engine. Given an incident summary and the response "
    "actions the operators defined for it, decide one of: investigate, remediate, escalate, ignore. "
    "Give your confidence (0 to 1), your reasoning, a short natural-language summary of the incident, "
    "and the ids of the recommended actions, chosen ONLY among the listed actions. You cannot invent "
    "actions or commands; anything else you write is treated as text for humans."
)


class LlmUnavailable(TransientError):
    """No key, a server that failed past the budget, or an answer that could not be used."""


class LlmAnswerInvalid(LlmUnavailable):
    """The model answered, but not with what the schema asks."""


@dataclass(frozen=True, kw_only=True)
class Analysis:
    decision: str
    confidence: float
    reasoning: str
    summary: str
    recommended_action_ids: tuple[str, ...]
    risk_level: str | None
    model: str


_clients: dict[tuple[str, str | None], openai.OpenAI] = {}
_clients_lock = threading.Lock()


def _client(settings: Settings) -> openai.OpenAI:
    key = (str(settings.openai_api_key), settings.openai_base_url)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            # tenacity does the retrying; the client's own retries would blow the time budget.
            client = openai.OpenAI(api_key=key[0], base_url=key[1], max_retries=0)
            _clients[key] = client
        return client


def _transient(error: BaseException) -> bool:
    if isinstance(error, openai.APIConnectionError | openai.APITimeoutError | openai.RateLimitError):
        return True
    if isinstance(error, openai.APIStatusError):
        return error.status_code >= 500
    return isinstance(error, LlmAnswerInvalid) and not getattr(error, "retried", False)


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    logger.info("LLM request failed (%s); attempt %d, retrying.", error, state.attempt_number)


def _with_retries(call: Any, *, budget_s: float) -> Any:
    started = time.monotonic()
    retrying = Retrying(
        retry=retry_if_exception(_transient),
        stop=stop_after_delay(budget_s) | stop_after_attempt(MAX_ATTEMPTS),
        wait=wait_exponential(multiplier=0.2, max=2.0),
        before_sleep=_log_retry,
        reraise=True,
    )
    try:
        return retrying(lambda: call(max(0.5, budget_s - (time.monotonic() - started))))
    except LlmUnavailable:
        raise
    except openai.OpenAIError as e:
        logger.warning("LLM gave up after %.1f s: %s", time.monotonic() - started, e)
        raise LlmUnavailable(f"{type(e).__name__}: {e}") from None


def _schema(action_ids: list[str]) -> dict[str, Any]:
    ids: dict[str, Any] = {"type": "string", "enum": action_ids} if action_ids else {"type": "string", "enum": [""]}
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["decision", "confidence", "reasoning", "summary", "recommended_action_ids", "risk_level"],
        "properties": {
            "decision": {"type": "string", "enum": list(DECISIONS)},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "reasoning": {"type": "string"},
            "summary": {"type": "string"},
            "recommended_action_ids": {"type": "array", "items": ids},
            "risk_level": {"type": "string", "enum": list(RISK_LEVELS)},
        },
    }


def _parse(content: str | None, allowed: set[str], model: str) -> Analysis:
    try:
        answer = json.loads(content or "")
    except ValueError:
        raise LlmAnswerInvalid(f"the answer is not JSON: {(content or '')[:80]!r}") from None
    if not isinstance(answer, dict) or answer.get("decision") not in DECISIONS:
        raise LlmAnswerInvalid(f"no valid decision in the answer: {str(answer)[:80]!r}")
    confidence = answer.get("confidence")
    if not isinstance(confidence, int | float) or isinstance(confidence, bool) or not 0 <= confidence <= 1:
        raise LlmAnswerInvalid(f"confidence must be a number from 0 to 1, got {confidence!r}")
    ids = answer.get("recommended_action_ids") or []
    if not isinstance(ids, list):
        raise LlmAnswerInvalid("recommended_action_ids is not a list")
    unknown = [i for i in ids if i not in allowed]
    if unknown:
        logger.warning("The LLM recommended actions that do not exist, dropped: %r", unknown[:5])
    return Analysis(
        decision=answer["decision"],
        confidence=float(confidence),
        reasoning=str(answer.get("reasoning") or "")[:4000],
        summary=str(answer.get("summary") or "")[:4000],
        recommended_action_ids=tuple(str(i) for i in ids if i in allowed),
        risk_level=answer.get("risk_level") if answer.get("risk_level") in RISK_LEVELS else None,
        model=model,
    )


def analyze(incident: dict[str, Any], *, allowed_actions: list[dict[str, Any]], settings: Settings) -> Analysis:
    """Ask the model for a decision about ``incident``, choosing only among ``allowed_actions``.

    Raises:
      LlmUnavailable: no key, the server failed within ``settings.llm_timeout_s``, or the answer was unusable.
    """
    if not settings.openai_api_key:
        raise LlmUnavailable("OPENAI_API_KEY is not set")
    allowed = [str(a["id"]) for a in allowed_actions]
    client, model = _client(settings), settings.openai_model
    messages = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": json.dumps({"incident": incident, "actions": allowed_actions}, default=str)},
    ]
    retried = False

    def call(timeout_s: float) -> Analysis:
        nonlocal retried
        completion = client.chat.completions.create(  # type: ignore[call-overload]
            model=model, messages=messages, timeout=timeout_s, temperature=0,
            response_format={"type": "json_schema",
                             "json_schema": {"name": "incident_decision", "strict": True, "schema": _schema(allowed)}},
        )  # fmt: skip
        try:
            return _parse(completion.choices[0].message.content if completion.choices else None, set(allowed), model)
        except LlmAnswerInvalid as e:
            e.retried = retried  # type: ignore[attr-defined]
            retried = True
            raise

    return _with_retries(call, budget_s=settings.llm_timeout_s)  # type: ignore[no-any-return]


def ask(prompt: str, *, settings: Settings, timeout_s: float) -> str:
    """A free-text answer (the executor's ``llm`` action), with the same retries within ``timeout_s``.

    Raises:
      LlmUnavailable: as for :func:`analyze`.
    """
    if not settings.openai_api_key:
        raise LlmUnavailable("OPENAI_API_KEY is not set")
    client = _client(settings)

    def call(budget_s: float) -> str:
        completion = client.chat.completions.create(  # type: ignore[call-overload]
            model=settings.openai_model, timeout=budget_s,
            messages=[{"role": "system", "content": "You help operators understand infrastructure incidents."},
                      {"role": "user", "content": prompt}],
        )  # fmt: skip
        content = completion.choices[0].message.content if completion.choices else None
        if not content:
            raise LlmUnavailable("the model returned no text")
        return content

    return _with_retries(call, budget_s=min(timeout_s, settings.llm_timeout_s))  # type: ignore[no-any-return]

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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import openai
from openai.types.chat import ChatCompletion, ChatCompletionMessageParam
from openai.types.shared_params import ResponseFormatJSONSchema
from tenacity import RetryCallState, Retrying, stop_after_attempt, stop_before_delay, wait_exponential
from tenacity.retry import retry_base

from ..config import Settings
from ..errors import TransientError
from .decision import DECISIONS
from .risk import RISK_LEVELS

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: At most this many requests per call, however much of the budget is left.
MAX_ATTEMPTS = 4
#: A malformed answer is asked again once: a second one means the model cannot do it.
MAX_INVALID_ANSWERS = 2
#: No request is sent with less time than this to answer (seconds).
MIN_REQUEST_TIMEOUT_S = 0.1
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
ASK_SYSTEM_PROMPT = "You help operators understand infrastructure incidents. Answer briefly."


class LlmUnavailable(TransientError):
    """No key, a server that failed past the budget, a refusal, or an answer that could not be used."""


class LlmAnswerInvalid(LlmUnavailable):
    """The model answered, but not with what the schema asks (not JSON, missing fields, unknown decision)."""


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


_clients: dict[tuple[str, str | None, str], openai.OpenAI] = {}
_clients_lock = threading.Lock()


def _client(settings: Settings) -> openai.OpenAI:
    """One client per (key, base URL, model), shared: its connection pool is thread-safe."""
    key = (str(settings.openai_api_key), settings.openai_base_url, settings.openai_model)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            # max_retries=0: tenacity does the retrying, the client's own would blow the budget.
            client = openai.OpenAI(api_key=key[0], base_url=key[1], timeout=settings.llm_timeout_s, max_retries=0)
            _clients[key] = client
        return client


class _Retryable(retry_base):
    """Transient failures are retried; a malformed answer only once (the budget bounds both)."""

    def __init__(self) -> None:
        self.invalid_answers = 0

    def __call__(self, state: RetryCallState) -> bool:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, LlmAnswerInvalid):
            self.invalid_answers += 1
            return self.invalid_answers < MAX_INVALID_ANSWERS
        if isinstance(error, openai.APIConnectionError | openai.RateLimitError):  # timeouts included
            return True
        return isinstance(error, openai.APIStatusError) and error.status_code >= 500


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    logger.info(
        "LLM request %d failed (%s); retrying in %.1f s.", state.attempt_number, _describe(error), state.upcoming_sleep
    )


def _describe(error: BaseException | None) -> str:
    # The server's message, never the request: the API key is only in the client's headers.
    return f"{type(error).__name__}: {str(error)[:200]}" if error else "no error"


def _with_retries(call: Callable[[float], T], *, budget_s: float) -> T:
    """Run ``call(request_timeout_s)`` with retries, all of it within ``budget_s`` seconds.

    Each request gets the time left in the budget as its timeout, and no retry starts whose
    backoff would end past the budget. httpx applies that timeout to the connect and to each
    read, so a server trickling bytes could stretch one request; a silent one cannot.

    Raises:
      LlmUnavailable: the last failure, wrapped, once retries are exhausted or not allowed.
    """
    started = time.monotonic()
    retrying = Retrying(
        retry=_Retryable(),
        stop=stop_before_delay(budget_s) | stop_after_attempt(MAX_ATTEMPTS),
        wait=wait_exponential(multiplier=0.2, max=2.0),
        before_sleep=_log_retry,
        reraise=True,
    )

    def attempt() -> T:
        return call(max(MIN_REQUEST_TIMEOUT_S, budget_s - (time.monotonic() - started)))

    try:
        return retrying(attempt)
    except (LlmUnavailable, openai.OpenAIError) as e:
        elapsed_s = time.monotonic() - started
        logger.warning("LLM gave up after %.1f s: %s", elapsed_s, _describe(e))
        if isinstance(e, LlmUnavailable):
            raise
        raise LlmUnavailable(_describe(e)) from None


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


@contextmanager
def _unreadable_response() -> Iterator[None]:
    """openai lets a JSON-typed body that is not JSON escape as a bare ``JSONDecodeError``."""
    try:
        yield
    except json.JSONDecodeError:
        raise LlmAnswerInvalid("the server's response is not JSON") from None


def _content(completion: ChatCompletion) -> str:
    """The text of the first choice; a refusal or a body that is no completion is unusable."""
    try:
        message = completion.choices[0].message
        refusal, content = message.refusal, message.content
    except (AttributeError, IndexError, TypeError):
        # openai builds responses without validating them: anything may be missing.
        raise LlmAnswerInvalid("the server's response is not a chat completion") from None
    if refusal:
        raise LlmUnavailable(f"the model refused: {str(refusal)[:200]}")
    if not isinstance(content, str) or not content.strip():
        raise LlmAnswerInvalid("the model returned no text")
    return content


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
    if not settings.openai_api_key:
        raise LlmUnavailable("OPENAI_API_KEY is not set")
    allowed = [str(action["id"]) for action in allowed_actions]
    client, model = _client(settings), settings.openai_model
    messages: list[ChatCompletionMessageParam] = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": json.dumps({"incident": incident, "actions": allowed_actions}, default=str)},
    ]
    response_format: ResponseFormatJSONSchema = {
        "type": "json_schema",
        "json_schema": {"name": "incident_decision", "strict": True, "schema": _schema(allowed)},
    }

    def call(timeout_s: float) -> Analysis:
        with _unreadable_response():
            completion = client.chat.completions.create(
                model=model, messages=messages, response_format=response_format, temperature=0, timeout=timeout_s
            )
        return _parse(_content(completion), allowed, model)

    return _with_retries(call, budget_s=settings.llm_timeout_s)


def ask(prompt: str, *, settings: Settings, timeout_s: float) -> str:
    """A free-text answer (the executor's ``llm`` action), with the same retries within ``timeout_s``.

    Returns:
      The model's text, as it wrote it (for humans: it is attached to the execution, never run).

    Raises:
      LlmUnavailable: no key, a refusal, no text, or the server failed within ``timeout_s`` seconds.
    """
    if not settings.openai_api_key:
        raise LlmUnavailable("OPENAI_API_KEY is not set")
    client, model = _client(settings), settings.openai_model
    messages: list[ChatCompletionMessageParam] = [
        {"role": "system", "content": ASK_SYSTEM_PROMPT},
        {"role": "user", "content": prompt},
    ]

    def call(request_timeout_s: float) -> str:
        with _unreadable_response():
            completion = client.chat.completions.create(model=model, messages=messages, timeout=request_timeout_s)
        return _content(completion)

    return _with_retries(call, budget_s=timeout_s)

"""The transport to a large language model: the ``openai`` package, for any OpenAI-compatible server.

A leaf module: the executor's ``llm`` action (:mod:`app.actions.llm`) and the decider's analysis
(:mod:`app.decisions.llm`) both call :func:`chat`, and neither reaches into the other. tenacity
retries transient failures (connection errors, timeouts, 429, 5xx) with exponential backoff
inside a total time budget; an answer the caller's parser refuses (:class:`LlmAnswerInvalid`) is
asked again once. Whatever fails raises :class:`LlmUnavailable`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import openai
from openai.types.chat import ChatCompletion, ChatCompletionMessageParam
from openai.types.shared_params import ResponseFormatJSONSchema
from tenacity import RetryCallState, Retrying, stop_after_attempt, stop_before_delay, wait_exponential
from tenacity.retry import retry_base

from .config import Settings
from .errors import TransientError

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: At most this many requests per call, however much of the budget is left.
MAX_ATTEMPTS = 4
#: A malformed answer is asked again once: a second one means the model cannot do it.
MAX_INVALID_ANSWERS = 2
#: No request is sent with less time than this to answer (seconds).
MIN_REQUEST_TIMEOUT_S = 0.1

ASK_SYSTEM_PROMPT = "You help operators understand infrastructure incidents. Answer briefly."


class LlmUnavailable(TransientError):
    """No key, a server that failed past the budget, a refusal, or an answer that could not be used."""


class LlmAnswerInvalid(LlmUnavailable):
    """The model answered, but not with what the caller asks (not JSON, missing fields, unknown decision)."""


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


def chat(
    messages: list[ChatCompletionMessageParam],
    *,
    settings: Settings,
    budget_s: float,
    parse: Callable[[str], T],
    response_format: ResponseFormatJSONSchema | openai.Omit = openai.omit,
    temperature: float | openai.Omit = openai.omit,
) -> T:
    """One chat completion, retried within ``budget_s`` seconds, its text turned into ``T`` by ``parse``.

    Parameters:
      messages: The conversation sent to ``settings.openai_model``.
      settings: ``openai_api_key``, ``openai_base_url`` and ``openai_model``.
      budget_s: The time all attempts together may take (seconds).
      parse: Turns the model's text into the answer; it raises :class:`LlmAnswerInvalid` for an
        answer it cannot use, which is asked again once.
      response_format: A structured-output JSON schema; free text when not given.
      temperature: The server's default when not given.

    Returns:
      What ``parse`` made of the first usable answer.

    Raises:
      LlmAnswerInvalid: the model answered twice with something ``parse`` refuses.
      LlmUnavailable: no key, a refusal, no text, or the server failed within ``budget_s``.
    """
    if not settings.openai_api_key:
        raise LlmUnavailable("OPENAI_API_KEY is not set")
    client, model = _client(settings), settings.openai_model

    def call(request_timeout_s: float) -> T:
        with _unreadable_response():
            completion = client.chat.completions.create(
                model=model,
                messages=messages,
                response_format=response_format,
                temperature=temperature,
                timeout=request_timeout_s,
            )
        return parse(_content(completion))

    return _with_retries(call, budget_s=budget_s)


def ask(prompt: str, *, settings: Settings, timeout_s: float) -> str:
    """A free-text answer (the executor's ``llm`` action), with the same retries within ``timeout_s``.

    Returns:
      The model's text, as it wrote it (for humans: it is attached to the execution, never run).

    Raises:
      LlmUnavailable: no key, a refusal, no text, or the server failed within ``timeout_s`` seconds.
    """
    messages: list[ChatCompletionMessageParam] = [
        {"role": "system", "content": ASK_SYSTEM_PROMPT},
        {"role": "user", "content": prompt},
    ]
    return chat(messages, settings=settings, budget_s=timeout_s, parse=str)

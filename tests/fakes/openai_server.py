"""An OpenAI-compatible HTTP server for tests: ``POST /v1/chat/completions`` answered from a script.

A real socket server on an ephemeral port of 127.0.0.1 (the decider may run in another process).
Each scripted answer is a dict, or a callable taking the request body and returning one:

- ``{"content": "..."}``: a completion whose message is that text (JSON or not);
- ``{"refusal": "..."}``: a completion in which the model refuses;
- ``{"status": 500}`` (or 429, 400...): an error response;
- ``{"body": "..."}``: that raw body with status 200 (a server that does not speak the API);
- ``"delay_s": 5`` in any of them: answer that late.

Answers are used in order; the last one repeats when the script runs out. Every request is
recorded in ``.requests`` as ``{"path", "body", "authorization"}``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]]


def completion(content: str | None, *, refusal: str | None = None, model: str = "fake-model") -> dict[str, Any]:
    """A chat completion body as the OpenAI API returns it."""
    message = {"role": "assistant", "content": content, "refusal": refusal}
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
    }


def _payload(answer: dict[str, Any]) -> tuple[int, bytes]:
    status = int(answer.get("status", 200))
    if status != 200:
        return status, json.dumps({"error": {"message": "scripted failure", "type": "server_error"}}).encode()
    if "body" in answer:
        return status, str(answer["body"]).encode()
    return status, json.dumps(completion(answer.get("content"), refusal=answer.get("refusal"))).encode()


class FakeOpenAI:
    """The server; use it as a context manager, or call :meth:`start` and :meth:`stop`.

    Parameters:
      answers: The script (see the module's docstring); at least one.
    """

    def __init__(self, *answers: Answer) -> None:
        if not answers:
            raise ValueError("FakeOpenAI needs at least one answer")
        self.script: list[Answer] = list(answers)
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True  # a slow answer must not hold up stop()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def _next(self, request: dict[str, Any]) -> Answer:
        with self.lock:
            self.requests.append(request)
            return self.script.pop(0) if len(self.script) > 1 else self.script[0]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.loads(raw or b"{}")
                request = {"path": self.path, "body": body, "authorization": self.headers.get("Authorization")}
                answer = fake._next(request)
                if callable(answer):
                    answer = answer(body)
                time.sleep(float(answer.get("delay_s", 0)))
                status, data = _payload(answer) if self.path.endswith("/chat/completions") else (404, b"{}")
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (a slow answer)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def start(self) -> FakeOpenAI:
        # A short poll interval: stop() waits for it, and tests start many servers.
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

"""Our errors at the HTTP boundary: a transient failure of any dependency is a 503 to retry, not a 500."""

from __future__ import annotations

import falcon
import falcon.testing

from app.broker import InProcessNotAllowed
from app.config import ConfigError
from app.errors import DatabaseUnavailable, OpsConductorError
from app.http import errors
from app.llm_client import LlmUnavailable


class _Failing:
    """A resource whose GET raises the error it was given."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        raise self.error


def _get(error: Exception) -> falcon.testing.Result:
    app = falcon.App()
    errors.install(app)
    app.add_route("/thing", _Failing(error))
    return falcon.testing.TestClient(app).simulate_get("/thing")


def test_an_unavailable_llm_answers_503_with_retry_after_and_no_server_detail():
    # Given a request whose LLM call failed past its budget, with the server's words in the error
    # When it reaches the HTTP boundary
    result = _get(LlmUnavailable("APIStatusError: upstream said sk-internal-detail"))
    # Then the client is told to retry later, and the server's words stay in the log
    assert result.status_code == 503
    assert result.headers["Retry-After"] == str(errors.RETRY_AFTER_S)
    assert result.json["error"] == "service_unavailable"
    assert "sk-internal-detail" not in result.text


def test_an_unavailable_database_still_answers_its_own_503():
    result = _get(DatabaseUnavailable("connection refused"))
    assert result.status_code == 503 and result.headers["Retry-After"] == str(errors.RETRY_AFTER_S)
    assert result.json["error"] == "database_unavailable"


def test_configuration_and_broker_choice_errors_are_under_the_one_root():
    # ConfigError stays a ValueError, InProcessNotAllowed a RuntimeError, for callers that catch those
    assert issubclass(ConfigError, OpsConductorError) and issubclass(ConfigError, ValueError)
    assert issubclass(InProcessNotAllowed, OpsConductorError) and issubclass(InProcessNotAllowed, RuntimeError)

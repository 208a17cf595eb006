"""The action integrations against real targets: a local HTTP server, an SMTP sink and real programs."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from app import actions
from app.config import Settings
from app.errors import ActionNotAllowed, InvalidRule
from tests.processes import free_port
from tests.targets import http_target, smtp_sink

EVENT = {"host": "web-01", "title": "x; rm -rf / $(touch pwned) `id` {{ 7 * 7 }}", "metadata": {"cpu": 97}}
CONTEXT = {"event": EVENT, "variables": {"limit": 3}, "limit": 3, "steps": {}}


@pytest.fixture
def programs(tmp_path: Path) -> Path:
    """SHELL_ACTIONS_DIR with a program that prints its argv as JSON, one that sleeps and one that fails."""
    directory = tmp_path / "actions"
    directory.mkdir()
    scripts = {
        "echo-args": "#!/usr/bin/env python3\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\n",
        "slow": "#!/bin/sh\nsleep 10\n",
        "fail": "#!/bin/sh\necho 'disk full' >&2\nexit 3\n",
    }
    for name, text in scripts.items():
        (directory / name).write_text(text)
        (directory / name).chmod(0o755)
    (tmp_path / "outside").write_text("#!/bin/sh\necho escaped\n")
    (tmp_path / "outside").chmod(0o755)
    (directory / "escape").symlink_to(tmp_path / "outside")
    return directory


def run(action: dict, settings: Settings, timeout_s: float = 5.0) -> actions.Outcome:
    return actions.perform(actions.plan(action, CONTEXT), settings=settings, timeout_s=timeout_s)


def test_shell_action_passes_an_event_value_as_one_argument_verbatim(programs, tmp_path):
    # Given an operator's argument list with an event's hostile title in it
    action = {
        "id": "a",
        "type": "shell",
        "shell": {"program": "echo-args", "args": ["--host", "{{ event.host }}", "{{ event.title }}"]},
    }
    # When it runs
    outcome = run(action, Settings(shell_actions_dir=str(programs)))
    # Then the program got exactly three arguments, the title as one, unexpanded and unrendered
    assert outcome.success, outcome.error
    assert json.loads(outcome.output) == ["--host", "web-01", EVENT["title"]]
    assert not (programs / "pwned").exists() and not (tmp_path / "pwned").exists()


def test_shell_programs_outside_the_directory_or_disabled_are_refused(programs):
    settings = Settings(shell_actions_dir=str(programs))
    for program in ("escape", "../outside", "/bin/sh", "missing"):
        with pytest.raises((ActionNotAllowed, InvalidRule)):
            run({"id": "a", "type": "shell", "shell": {"program": program, "args": []}}, settings)
    with pytest.raises(ActionNotAllowed, match="SHELL_ACTIONS_DIR"):
        run({"id": "a", "type": "shell", "shell": {"program": "echo-args"}}, Settings())
    with pytest.raises(InvalidRule) as bad:
        actions.validate_action({"type": "shell", "shell": {"program": "sh -c 'id'"}}, where="actions[0]")
    assert bad.value.field == "actions[0].shell.program" or "sh -c" in bad.value.message


def test_a_shell_program_that_fails_or_hangs_is_a_failed_outcome(programs):
    settings = Settings(shell_actions_dir=str(programs))
    failed = run({"id": "a", "type": "shell", "shell": {"program": "fail"}}, settings)
    assert not failed.success and failed.data["exit_code"] == 3 and "disk full" in failed.error
    started = time.monotonic()
    hung = run({"id": "a", "type": "shell", "shell": {"program": "slow"}}, settings, timeout_s=1)
    assert not hung.success and "killed" in hung.error and time.monotonic() - started < 5


def test_http_action_sends_the_rendered_request_and_checks_the_status():
    with http_target(responses={"/bad": (503, {"error": "down"})}, delay_s={"/slow": 3}) as target:
        ok = run({"id": "a", "type": "http", "http": {"method": "POST", "url": f"{target.url}/restart/{{{{ event.host }}}}",
                  "headers": {"Authorization": "Bearer s3cret"}, "json": {"limit": "{{ limit }}"}}}, Settings())  # fmt: skip
        assert ok.success and ok.data["status"] == 200 and ok.data["json"]["ok"] is True
        arrived = target.requests[0]
        assert arrived["path"] == "/restart/web-01" and arrived["json"] == {"limit": "3"}
        assert arrived["headers"]["Authorization"] == "Bearer s3cret"
        bad = run({"id": "a", "type": "http", "http": {"method": "GET", "url": f"{target.url}/bad"}}, Settings())
        assert not bad.success and "503" in bad.error
        expected = run({"id": "a", "http": {"method": "GET", "url": f"{target.url}/bad", "expected_status": [503]},
                        "type": "diagnostic"}, Settings())  # fmt: skip
        assert expected.success
        slow = run({"id": "a", "type": "http", "http": {"method": "GET", "url": f"{target.url}/slow"}}, Settings(),
                   timeout_s=1)  # fmt: skip
        assert not slow.success and "no answer" in slow.error
    refused = run({"id": "a", "type": "http", "http": {"method": "GET", "url": f"http://127.0.0.1:{free_port()}/"}},
                  Settings())  # fmt: skip
    assert not refused.success and "ConnectError" in refused.error


def test_a_dry_run_plan_shows_exactly_what_would_run_with_secrets_masked():
    planned = actions.plan({"id": "a", "type": "http", "http": {"method": "post", "url": "https://automation/run/{{ event.host }}",
                            "headers": {"Authorization": "Bearer s3cret", "X-Trace": "1"}, "json": {"n": "{{ limit }}"}}}, CONTEXT)  # fmt: skip
    assert planned == {"integration": "http", "method": "POST", "url": "https://automation/run/web-01",
                       "headers": {"Authorization": "Bearer s3cret", "X-Trace": "1"}, "json": {"n": "3"},
                       "expected_status": [], "verify_tls": True}  # fmt: skip
    assert actions.redact(planned)["headers"] == {"Authorization": "***", "X-Trace": "1"}


def test_templates_cannot_reach_python_internals_or_undefined_names():
    for source in ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "{{ event.__class__ }}",
                   "{{ lipsum.__globals__ }}", "{{ missing.name }}"):  # fmt: skip
        with pytest.raises(InvalidRule):
            actions.plan({"id": "a", "type": "llm", "llm": {"prompt": source}}, CONTEXT)
    with pytest.raises(InvalidRule) as bad:
        actions.validate_action(
            {"type": "http", "http": {"method": "GET", "url": "http://x/{{ oops"}}, where="actions[1]"
        )
    assert bad.value.field.startswith("actions[1].http")


def test_email_goes_to_the_default_recipients_through_smtp():
    with smtp_sink() as sink:
        settings = Settings(smtp_url=sink.url, smtp_from="ops@example.com", notify_email_to=("oncall@example.com",))
        outcome = run({"id": "a", "type": "notify", "notify": {"channel": "email", "subject": "CPU on {{ event.host }}",
                       "message": "{{ event.title }}"}}, settings)  # fmt: skip
        assert outcome.success, outcome.error
        message = sink.wait_for(1, timeout_s=5)[0]
        assert message["rcpt_tos"] == ["oncall@example.com"] and message["mail_from"] == "ops@example.com"
        assert message["message"]["Subject"] == "CPU on web-01"
        assert EVENT["title"] in message["message"].get_content()
    with pytest.raises(ActionNotAllowed, match="SMTP_URL"):
        run({"id": "a", "type": "notify", "notify": {"channel": "email", "message": "m"}}, Settings())


def test_slack_and_generic_webhooks_get_their_json_bodies():
    with http_target() as target:
        slack = run({"id": "a", "type": "notify", "notify": {"channel": "slack", "url": f"{target.url}/slack",
                     "subject": "Disk", "message": "{{ event.host }} is full"}}, Settings())  # fmt: skip
        hook = run({"id": "a", "type": "notify", "notify": {"channel": "webhook", "url": f"{target.url}/hook",
                    "subject": "Disk", "message": "full"}}, Settings())  # fmt: skip
        assert slack.success and hook.success
        bodies = {r["path"]: r["json"] for r in target.requests}
        assert bodies["/slack"] == {"text": "*Disk*\nweb-01 is full"}
        assert bodies["/hook"] == {"subject": "Disk", "message": "full", "data": None}


def test_an_llm_action_without_a_key_fails_clearly():
    outcome = run({"id": "a", "type": "llm", "llm": {"prompt": "Summarize {{ event.title }}"}}, Settings())
    assert not outcome.success and "OPENAI_API_KEY" in outcome.error


def test_the_environment_of_ours_does_not_reach_a_program(programs, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://secret@db/prod")
    (programs / "env").write_text("#!/bin/sh\nenv\n")
    (programs / "env").chmod(0o755)
    outcome = run({"id": "a", "type": "shell", "shell": {"program": "env"}}, Settings(shell_actions_dir=str(programs)))
    assert "postgresql://" not in outcome.output and "PATH=" in outcome.output
    assert os.environ["DATABASE_URL"]  # still set here: only the child's environment is clean


def test_an_llm_action_attaches_the_models_answer():
    from tests.fakes.openai_server import FakeOpenAI

    with FakeOpenAI({"content": "Memory leak in nginx worker."}) as fake:
        settings = Settings(openai_api_key="sk-test", openai_base_url=fake.base_url, llm_timeout_s=5)
        outcome = run({"id": "a", "type": "llm", "llm": {"prompt": "Why is {{ event.host }} slow?"}}, settings)
    assert outcome.success and outcome.output == "Memory leak in nginx worker."
    assert "Why is web-01 slow?" in fake.requests[0]["body"]["messages"][-1]["content"]

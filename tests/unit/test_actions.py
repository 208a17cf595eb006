"""The action integrations against real targets: a local HTTP server, an SMTP sink and real programs."""

from __future__ import annotations

import json
import os
import ssl
import time
from pathlib import Path

import pytest

from app import actions
from app.config import Settings
from app.errors import ActionNotAllowed, InvalidRule
from tests.processes import free_port
from tests.targets import http_target, self_signed_tls, smtp_sink

HOSTILE = "x; rm -rf / $(touch pwned) `touch pwned` {{ 7 * 7 }} {% raw %}"
EVENT = {"host": "web-01", "title": HOSTILE, "metadata": {"cpu": 97}}
CONTEXT = {"event": EVENT, "variables": {"limit": 3}, "limit": 3, "steps": {}}


@pytest.fixture
def programs(tmp_path: Path) -> Path:
    """SHELL_ACTIONS_DIR with a program that prints its argv as JSON, one that hangs and one that fails."""
    directory = tmp_path / "actions"
    directory.mkdir()
    scripts = {
        "echo-args": "#!/usr/bin/env python3\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\n",
        "hang": "#!/bin/sh\nsleep 30 &\necho $! > child.pid\nwait\n",
        "fail": "#!/bin/sh\necho 'partial work'\necho 'disk full' >&2\nexit 3\n",
        "env": "#!/bin/sh\nenv\n",
    }
    for name, text in scripts.items():
        (directory / name).write_text(text)
        (directory / name).chmod(0o755)
    (directory / "not-executable").write_text("#!/bin/sh\necho hi\n")
    (tmp_path / "outside").write_text("#!/bin/sh\necho escaped\n")
    (tmp_path / "outside").chmod(0o755)
    (directory / "escape").symlink_to(tmp_path / "outside")
    return directory


def run(action: dict, settings: Settings, timeout_s: float = 5.0, context: dict | None = None) -> actions.Outcome:
    return actions.perform(actions.plan(action, context or CONTEXT), settings=settings, timeout_s=timeout_s)


def shell(program: str, *args: str) -> dict:
    return {"id": "a", "type": "shell", "shell": {"program": program, "args": list(args)}}


def http(url: str, method: str = "GET", **extra: object) -> dict:
    return {"id": "a", "type": "http", "http": {"method": method, "url": url, **extra}}


def notify(**block: object) -> dict:
    return {"id": "a", "type": "notify", "notify": block}


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for a reaper counts as dead)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


# shell


def test_shell_action_passes_an_event_value_as_one_argument_verbatim(programs, tmp_path):
    # Given an operator's argument list with an event's hostile title in it
    action = shell("echo-args", "--host", "{{ event.host }}", "{{ event.title }}")
    # When it runs
    outcome = run(action, Settings(shell_actions_dir=str(programs)))
    # Then the program got exactly three arguments, the title as one, unexpanded and unrendered
    assert outcome.success, outcome.error
    assert json.loads(outcome.output) == ["--host", "web-01", HOSTILE]
    assert outcome.data["exit_code"] == 0 and outcome.data["program"] == str(programs / "echo-args")
    assert not (programs / "pwned").exists() and not (tmp_path / "pwned").exists()


def test_shell_program_that_exits_non_zero_is_a_failed_outcome_with_its_output(programs):
    # Given a program that writes, complains on stderr and exits 3
    # When it runs
    outcome = run(shell("fail"), Settings(shell_actions_dir=str(programs)))
    # Then the outcome failed with the exit code, stdout and stderr
    assert not outcome.success
    assert outcome.data["exit_code"] == 3 and outcome.data["stderr"] == "disk full\n"
    assert outcome.output == "partial work\n" and "exited with 3: disk full" in outcome.error


def test_shell_program_that_outlives_its_timeout_is_killed_with_what_it_started(programs):
    # Given a program that starts a child and waits for it
    started = time.monotonic()
    # When it runs with a one-second timeout
    outcome = run(shell("hang"), Settings(shell_actions_dir=str(programs)), timeout_s=1)
    # Then it failed in time, and its child is gone too
    assert time.monotonic() - started < 4
    assert not outcome.success and outcome.data["timed_out"] is True and "killed" in outcome.error
    child = int((programs / "child.pid").read_text())
    deadline = time.monotonic() + 3
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child)


@pytest.mark.parametrize("program", ["../outside", "/bin/sh", "sub/prog", "..", ".hidden", "", "sh -c 'id'", "{{ x }}"])
def test_shell_program_names_that_are_not_plain_file_names_are_refused_on_write(program):
    # Given a template whose program is a path, a command line or a template
    action = shell(program)
    # When it is validated / Then the program field is named
    with pytest.raises(InvalidRule) as refused:
        actions.validate_action(action, where="actions[0]")
    assert refused.value.field == "actions[0].shell.program"


def test_a_shell_program_name_is_never_taken_from_an_event(programs):
    # Given an action whose program would come from the event (stored without validation)
    action = shell("{{ event.host }}")
    # When it is planned / Then it is refused before anything renders
    with pytest.raises(InvalidRule):
        actions.plan(action, CONTEXT)


@pytest.mark.parametrize("program", ["escape", "missing", "not-executable"])
def test_a_program_outside_the_directory_missing_or_not_executable_is_not_allowed(programs, program):
    # Given a symlink leading out of SHELL_ACTIONS_DIR, a missing program and a plain file
    settings = Settings(shell_actions_dir=str(programs))
    # When one is run / Then the safety rules refuse it
    with pytest.raises(ActionNotAllowed, match=program):
        run(shell(program), settings)


def test_shell_actions_are_not_allowed_without_a_configured_directory():
    with pytest.raises(ActionNotAllowed, match="SHELL_ACTIONS_DIR"):
        run(shell("echo-args"), Settings())


def test_the_environment_of_ours_does_not_reach_a_program(programs, monkeypatch):
    # Given a secret in the engine's environment
    monkeypatch.setenv("DATABASE_URL", "postgresql://secret@db/prod")
    # When a program prints its environment
    outcome = run(shell("env"), Settings(shell_actions_dir=str(programs)))
    # Then it sees only the fixed PATH and LANG
    assert sorted(outcome.output.split()) == ["LANG=C.UTF-8", "PATH=/usr/bin:/bin", "PWD=" + str(programs)]
    assert os.environ["DATABASE_URL"]  # still set here: only the child's environment is clean


# http


def test_http_action_sends_the_rendered_request_and_reports_the_json_answer():
    with http_target() as target:
        # Given a POST with a templated path, a secret header and a JSON body
        action = http(f"{target.url}/restart/{{{{ event.host }}}}", "POST", headers={"Authorization": "Bearer s3cret"},
                      json={"limit": "{{ limit }}", "title": "{{ event.title }}"})  # fmt: skip
        # When it runs
        outcome = run(action, Settings())
        # Then the server got exactly that request, and the answer is in the outcome
        assert outcome.success, outcome.error
        assert outcome.data["status"] == 200 and outcome.data["json"] == {"ok": True, "path": "/restart/web-01"}
        [arrived] = target.requests
        assert arrived["method"] == "POST" and arrived["path"] == "/restart/web-01"
        assert arrived["json"] == {"limit": "3", "title": HOSTILE}
        assert arrived["headers"]["Authorization"] == "Bearer s3cret"


def test_http_status_outside_the_expected_ones_is_a_failed_outcome():
    with http_target(responses={"/bad": (503, {"error": "down"})}) as target:
        # Given a target that answers 503
        # When it is called expecting the default 2xx, then expecting 503
        default = run(http(f"{target.url}/bad"), Settings())
        expected = run({"id": "a", "type": "diagnostic",
                        "http": {"method": "GET", "url": f"{target.url}/bad", "expected_status": 503}}, Settings())  # fmt: skip
    # Then the first failed with the status, the second succeeded
    assert not default.success and default.error == "HTTP 503 (expected a 2xx status)"
    assert default.data["json"] == {"error": "down"}
    assert expected.success


def test_http_redirect_to_another_host_is_not_followed():
    # Given a target that redirects elsewhere
    moved = (302, "moved", {"Location": "http://elsewhere.invalid/steal"})
    with http_target(responses={"/moved": moved}) as target:
        # When it is called
        outcome = run(http(f"{target.url}/moved"), Settings())
        # Then the redirect is a failed outcome, and only the one request was sent
        assert (
            not outcome.success
            and "http://elsewhere.invalid/steal" in outcome.error
            and "not followed" in outcome.error
        )
        assert len(target.requests) == 1


def test_http_answer_that_is_not_json_is_kept_as_text():
    with http_target(responses={"/text": (200, "all good")}) as target:
        outcome = run(http(f"{target.url}/text"), Settings())
    assert outcome.success and outcome.output == "HTTP 200: all good"
    assert outcome.data["body"] == "all good" and "json" not in outcome.data


def test_http_target_slower_than_the_timeout_is_a_failed_outcome_in_time():
    with http_target(delay_s={"/slow": 3}) as target:
        # Given a target that answers after 3 s
        started = time.monotonic()
        # When it is called with a one-second timeout
        outcome = run(http(f"{target.url}/slow"), Settings(), timeout_s=1)
        # Then the outcome failed after about a second
        assert time.monotonic() - started < 2.5
    assert not outcome.success and "no answer within 1 s" in outcome.error


def test_http_connection_refused_is_a_failed_outcome():
    # Given a port nobody listens on
    url = f"http://127.0.0.1:{free_port()}/"
    # When it is called / Then the outcome failed and says why
    outcome = run(http(url), Settings())
    assert not outcome.success and "ConnectError" in outcome.error


def test_an_event_value_cannot_add_a_header_line():
    # Given a header whose value takes an event field holding a line break
    context = {**CONTEXT, "event": {**EVENT, "host": "web-01\r\nX-Admin: true"}}
    action = http("https://automation.invalid/", headers={"X-Host": "{{ event.host }}"})
    # When it is planned / Then it is refused
    with pytest.raises(InvalidRule, match="line break"):
        actions.plan(action, context)


# dry run, templates and validation


def test_a_dry_run_plan_shows_exactly_what_would_run_and_sends_nothing(programs):
    with http_target() as target:
        # Given one action of each integration
        planned = [
            actions.plan(http(f"{target.url}/run/{{{{ event.host }}}}", "post", headers={"Authorization": "Bearer s3cret"},
                              json={"n": "{{ limit }}"}, expected_status=[200, 202]), CONTEXT),
            actions.plan(shell("echo-args", "--host", "{{ event.host }}", "{{ event.title }}"), CONTEXT),
            actions.plan(notify(channel="email", to=["ops@example.com"], subject="CPU {{ event.metadata.cpu }}%",
                                message="{{ event.title }}"), CONTEXT),
            actions.plan({"id": "a", "type": "llm", "llm": {"prompt": "Summarize {{ event.title }}"}}, CONTEXT),
        ]  # fmt: skip
        # Then each plan says exactly what would run, event values verbatim, and nothing was sent
        assert planned == [
            {"integration": "http", "method": "POST", "url": f"{target.url}/run/web-01",
             "headers": {"Authorization": "Bearer s3cret"}, "json": {"n": "3"}, "expected_status": [200, 202],
             "verify_tls": True},
            {"integration": "shell", "program": "echo-args", "args": ["--host", "web-01", HOSTILE]},
            {"integration": "notify", "channel": "email", "to": ["ops@example.com"], "subject": "CPU 97%",
             "message": HOSTILE, "url": None},
            {"integration": "llm", "prompt": f"Summarize {HOSTILE}"},
        ]  # fmt: skip
        assert json.loads(json.dumps(planned)) == planned
        assert target.requests == []


def test_redact_masks_secret_headers_url_passwords_and_webhook_keys():
    # Given plans carrying secrets in headers, JSON, the URL and a Slack webhook path
    planned = actions.plan(http("https://bot:pw@automation.invalid/run?token=abc&host={{ event.host }}", "POST",
                                headers={"Authorization": "Bearer s3cret", "X-Trace": "1"},
                                json={"password": "hunter2", "author": "ops"}), CONTEXT)  # fmt: skip
    slack = actions.plan(
        notify(channel="slack", url="https://hooks.slack.com/services/T0/B0/XYZ", message="m"), CONTEXT
    )
    # When they are redacted for display
    shown, shown_slack = actions.redact(planned), actions.redact(slack)
    # Then the secrets are masked, the rest shown, and the plans themselves unchanged
    assert shown["headers"] == {"Authorization": "***", "X-Trace": "1"}
    assert shown["json"] == {"password": "***", "author": "ops"}
    assert shown["url"] == "https://bot:***@automation.invalid/run?token=***&host=web-01"
    assert shown_slack["url"] == "https://hooks.slack.com/***"
    assert planned["headers"]["Authorization"] == "Bearer s3cret"


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ event.__class__ }}",
        "{{ lipsum.__globals__ }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{{ variables.update({'limit': 0}) }}",
    ],
)
def test_templates_cannot_reach_python_internals_or_change_the_context(source):
    # Given a template that tries to escape the sandbox / When it is planned / Then it is refused
    with pytest.raises(InvalidRule):
        actions.plan({"id": "a", "type": "llm", "llm": {"prompt": source}}, CONTEXT)
    assert CONTEXT["variables"] == {"limit": 3}


def test_an_undefined_name_is_an_error_not_an_empty_string():
    with pytest.raises(InvalidRule, match="missing") as refused:
        actions.plan(shell("echo-args", "{{ missing.name }}"), CONTEXT)
    assert refused.value.field == "a.shell.args[0]"


@pytest.mark.parametrize(
    ("action", "field"),
    [
        (http("http://x/{{ oops"), "actions[1].http.url"),
        (http("ftp://x/"), "actions[1].http.url"),
        (http("http://x/", "FETCH"), "actions[1].http.method"),
        ({"id": "a", "type": "http", "http": {"url": "http://x/"}}, "actions[1].http.method"),
        (http("http://x/", headers={"X-N": 1}), "actions[1].http.headers"),
        (http("http://x/", expected_status="200"), "actions[1].http.expected_status"),
        (http("http://x/", verify_tls="no"), "actions[1].http.verify_tls"),
        ({"id": "a", "type": "shell", "shell": {"program": "p", "args": "--all -f"}}, "actions[1].shell.args"),
        (notify(channel="sms", message="m"), "actions[1].notify.channel"),
        (notify(channel="slack", message="m"), "actions[1].notify.url"),
        (notify(channel="webhook", url="https://x/"), "actions[1].notify.message"),
        (notify(channel="email", to=5), "actions[1].notify.to"),
        ({"id": "a", "type": "llm", "llm": {}}, "actions[1].llm.prompt"),
        ({"id": "a", "type": "diagnostic"}, "actions[1].type"),
        ({"id": "a", "type": "diagnostic", "http": {}, "shell": {}}, "actions[1].type"),
    ],
)
def test_an_invalid_integration_block_is_refused_naming_its_field(action, field):
    with pytest.raises(InvalidRule) as refused:
        actions.validate_action(action, where="actions[1]")
    assert refused.value.field == field


def test_the_integration_is_the_type_or_the_one_block_a_spec_category_carries():
    assert actions.integration_of({"type": "http", "http": {}}) == "http"
    assert actions.integration_of({"type": "remediation", "shell": {}}) == "shell"
    assert actions.integration_of({"type": "notification", "channels": ["email"]}) == "notify"
    assert actions.integration_of({"id": "undo", "http": {}}) == "http"
    with pytest.raises(InvalidRule):
        actions.integration_of({"type": "http", "shell": {}})


# notify


def test_email_goes_to_the_default_recipients_through_smtp():
    with smtp_sink() as sink:
        # Given SMTP with default recipients and an email action without `to`
        settings = Settings(smtp_url=sink.url, smtp_from="ops@example.com", notify_email_to=("oncall@example.com",))
        action = notify(channel="email", subject="CPU on {{ event.host }}", message="{{ event.title }}")
        # When it runs
        outcome = run(action, settings)
        # Then the sink received it, from SMTP_FROM to NOTIFY_EMAIL_TO
        assert outcome.success, outcome.error
        [received] = sink.wait_for(1, 5)
    assert received["mail_from"] == "ops@example.com" and received["rcpt_tos"] == ["oncall@example.com"]
    assert received["message"]["Subject"] == "CPU on web-01" and received["message"]["To"] == "oncall@example.com"
    assert received["message"].get_content().rstrip("\r\n") == HOSTILE


def test_email_goes_to_the_actions_own_recipients_logged_in_with_the_urls_credentials(tmp_path, monkeypatch):
    # Given an SMTP server that offers STARTTLS (its certificate trusted here) and requires a login
    cert, key = self_signed_tls(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", cert)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    with smtp_sink(credentials=("bot", "p@ss word"), starttls=server_tls) as sink:
        # and an action with its own recipients
        settings = Settings(smtp_url=sink.url, notify_email_to=("oncall@example.com",))
        # When it runs
        outcome = run(notify(channel="email", to=["a@example.com", "b@example.com"], message="m"), settings)
        # Then it logged in under TLS and mailed those recipients only
        assert outcome.success, outcome.error
        [received] = sink.wait_for(1, 5)
    assert sink.logins == [{"login": "bot", "tls": True}]
    assert received["login"] == "bot" and received["rcpt_tos"] == ["a@example.com", "b@example.com"]
    assert received["message"]["Subject"] == "OpsConductor notification"


def test_an_event_title_with_a_line_break_stays_in_one_subject_line():
    with smtp_sink() as sink:
        context = {**CONTEXT, "event": {**EVENT, "host": "web-01\r\nBcc: victim@example.com"}}
        settings = Settings(smtp_url=sink.url, notify_email_to=("oncall@example.com",))
        outcome = run(notify(channel="email", subject="Down: {{ event.host }}", message="m"), settings, context=context)
        assert outcome.success, outcome.error
        [received] = sink.wait_for(1, 5)
    assert received["rcpt_tos"] == ["oncall@example.com"] and received["message"]["Bcc"] is None
    assert received["message"]["Subject"] == "Down: web-01 Bcc: victim@example.com"


def test_a_recipient_the_smtp_server_refuses_is_a_failed_outcome():
    with smtp_sink(refuse=("gone@example.com",)) as sink:
        settings = Settings(smtp_url=sink.url)
        refused = run(notify(channel="email", to=["gone@example.com"], message="m"), settings)
        partly = run(notify(channel="email", to=["gone@example.com", "ok@example.com"], message="m"), settings)
        sink.wait_for(1, 5)
    assert not refused.success and "SMTPRecipientsRefused" in refused.error
    assert not partly.success and "refused gone@example.com" in partly.error


def test_an_unreachable_smtp_server_is_a_failed_outcome():
    settings = Settings(smtp_url=f"smtp://127.0.0.1:{free_port()}", notify_email_to=("oncall@example.com",))
    outcome = run(notify(channel="email", message="m"), settings)
    assert not outcome.success and "Connection refused" in outcome.error


def test_email_without_smtp_or_without_any_recipient_is_not_allowed():
    with pytest.raises(ActionNotAllowed, match="SMTP_URL"):
        run(notify(channel="email", message="m"), Settings())
    with pytest.raises(ActionNotAllowed, match="NOTIFY_EMAIL_TO"):
        run(notify(channel="email", message="m"), Settings(smtp_url="smtp://127.0.0.1:25"))


def test_slack_teams_and_generic_webhooks_get_their_json_bodies():
    with http_target() as target:
        # Given one action per webhook channel
        hooks = [
            notify(channel="slack", url=f"{target.url}/slack", message="{{ event.host }} is full"),
            notify(channel="teams", url=f"{target.url}/teams", message="{{ event.host }} is full"),
            notify(channel="webhook", url=f"{target.url}/hook", subject="Disk", message="full"),
            notify(channel="webhook", url=f"{target.url}/hook-data", subject="Disk", message="full",
                   data={"host": "{{ event.host }}", "cpu": 97}),
        ]  # fmt: skip
        # When they run
        outcomes = [run(hook, Settings()) for hook in hooks]
        # Then each got its body
        assert all(o.success for o in outcomes), [o.error for o in outcomes]
        bodies = {r["path"]: r["json"] for r in target.requests}
    assert bodies == {
        "/slack": {"text": "web-01 is full"},
        "/teams": {"text": "web-01 is full"},
        "/hook": {"subject": "Disk", "message": "full"},
        "/hook-data": {"subject": "Disk", "message": "full", "data": {"host": "web-01", "cpu": 97}},
    }


def test_a_webhook_that_answers_with_an_error_is_a_failed_outcome():
    with http_target(responses={"/slack": (404, {"error": "no_team"})}) as target:
        outcome = run(notify(channel="slack", url=f"{target.url}/slack", message="m"), Settings())
    assert not outcome.success and outcome.error == "slack: HTTP 404 (expected a 2xx status)"


def test_a_spec_style_notification_emails_the_default_recipients():
    with smtp_sink() as sink:
        action = {"id": "tell", "name": "Resolved", "type": "notification", "channels": ["email"], "template": "done"}
        outcome = run(action, Settings(smtp_url=sink.url, notify_email_to=("oncall@example.com",)))
        assert outcome.success, outcome.error
        [received] = sink.wait_for(1, 5)
    assert received["message"]["Subject"] == "Resolved" and received["message"].get_content().rstrip("\r\n") == "done"


# llm


def test_an_llm_action_without_a_key_fails_clearly():
    outcome = run({"id": "a", "type": "llm", "llm": {"prompt": "Summarize {{ event.title }}"}}, Settings())
    assert not outcome.success and outcome.error == "no LLM configured (OPENAI_API_KEY is not set)"


def test_an_llm_action_attaches_the_models_answer():
    from tests.fakes.openai_server import FakeOpenAI

    with FakeOpenAI({"content": "Memory leak in nginx worker."}) as fake:
        settings = Settings(openai_api_key="sk-test", openai_base_url=fake.base_url, llm_timeout_s=5)
        outcome = run({"id": "a", "type": "llm", "llm": {"prompt": "Why is {{ event.host }} slow?"}}, settings)
    assert outcome.success and outcome.output == "Memory leak in nginx worker."
    assert "Why is web-01 slow?" in fake.requests[0]["body"]["messages"][-1]["content"]

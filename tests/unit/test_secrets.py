"""Named secrets: encrypted at rest, substituted only when an action is performed, never stored or shown.

Real PostgreSQL (and SQLite, the embedded default) and a real HTTP target that echoes what it got.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import peewee
import pytest
from cryptography.fernet import Fernet

from app import actions, secrets
from app.config import ConfigError, Settings, load_settings
from app.db import database
from app.decisions import risk
from app.errors import InvalidInput, InvalidRule
from app.executions.runner import run
from app.executions.store import create_execution, execution_json, requests_text, snapshot
from app.ids import uuid7
from app.models import ALL_MODELS, Approval, AuditLog, Execution, ExecutionStep, ProcessedEvent, Secret
from app.rules.playbooks import parse_playbook
from tests.targets import http_target

TOKEN = "tok-7f3a9c2e51d84b6a"
OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


@pytest.fixture
def event(any_db):
    return ProcessedEvent.create(
        id=uuid7(), source_type="webhook", event_type="threshold_breach", severity="high", source_host="web-01",
        source_service="nginx", title="CPU high", occurred_at=datetime.now(UTC), fingerprint="f", event_data={},
    )  # fmt: skip


def execution_of(event, action_list, *, gated=(), dry_run=False):
    assessments = [risk.assess(a, risk.Context(system_criticality="low")) for a in action_list]
    definition = snapshot({"name": "p", "response_type": "remediation", "actions": action_list}, action_list,
                          assessments, set(gated))  # fmt: skip
    return create_execution(definition=definition, requested_by="decider", decision_id=None, event_id=event.id,
                            dry_run=dry_run, max_execution_time_minutes=10)  # fmt: skip


def restart(url: str) -> dict:
    return {"id": "restart", "name": "Restart", "type": "diagnostic",
            "http": {"method": "POST", "url": f"{url}/restart/{{{{ event.host }}}}?key={{{{ secret.TOKEN }}}}",
                     "headers": {"Authorization": "Bearer {{ secret.TOKEN }}", "X-Plain": "{{ secret.TOKEN }}"},
                     "json": {"token": "{{ secret.TOKEN }}", "echo": "{{ secret.TOKEN }}"}}}  # fmt: skip


def everything_stored() -> str:
    """Every row of every table, as text: where a secret must not be."""
    if isinstance(database.obj, peewee.PostgresqlDatabase):
        dumps = []
        for model in ALL_MODELS:
            table = f"{model._meta.schema}.{model._meta.table_name}"
            dumps += [r[0] for r in database.execute_sql(f"SELECT t::text FROM {table} t").fetchall()]
        return "\n".join(dumps)
    return "\n".join(json.dumps(list(row), default=str) for m in ALL_MODELS for row in m.select().tuples())


def test_a_secret_is_stored_encrypted_and_only_its_name_is_audited(any_db):
    # When an admin stores a secret
    created = secrets.put("TOKEN", TOKEN, keys=(OLD,), actor="key:1:admin")
    # Then the row holds a Fernet token, not the value, and the audit names it only
    assert created is True
    row = Secret.get(Secret.name == "TOKEN")
    assert TOKEN not in row.token and Fernet(OLD.encode()).decrypt(row.token.encode()).decode() == TOKEN
    assert TOKEN not in everything_stored()
    audited = AuditLog.get(AuditLog.action == "secret.created")
    assert (audited.actor, audited.subject, audited.details) == ("key:1:admin", "secret:TOKEN", None)
    assert secrets.listing()[0]["name"] == "TOKEN" and "value" not in secrets.listing()[0]


def test_rotation_re_encrypts_with_the_first_key_and_values_stay_readable(any_db):
    # Given secrets encrypted with the old key
    secrets.put("TOKEN", TOKEN, keys=(OLD,), actor="cli")
    secrets.put("DB_PASSWORD", "p@ss word", keys=(OLD,), actor="cli")
    # When a new key is put first and the secrets are rotated
    rotated = secrets.rotate(keys=(NEW, OLD), actor="cli")
    # Then every value reads with the new key alone, and no longer with the old one
    assert rotated == 2
    assert secrets.reveal(["TOKEN", "DB_PASSWORD"], keys=(NEW,)) == {"TOKEN": TOKEN, "DB_PASSWORD": "p@ss word"}
    with pytest.raises(secrets.UnreadableSecret, match="TOKEN"):
        secrets.reveal(["TOKEN"], keys=(OLD,))
    assert AuditLog.get(AuditLog.action == "secret.rotated").details == {"names": ["TOKEN", "DB_PASSWORD"]}


def test_without_keys_secrets_are_disabled_and_bad_names_are_refused(any_db):
    with pytest.raises(secrets.SecretsDisabled, match="OPSCONDUCTOR_SECRET_KEYS"):
        secrets.put("TOKEN", TOKEN, keys=(), actor="cli")
    for name in ("_x", "1abc", "a-b", "a.b", "", "x" * 101):
        with pytest.raises(InvalidInput) as refused:
            secrets.put(name, TOKEN, keys=(OLD,), actor="cli")
        assert refused.value.field == "name"


def test_secret_keys_are_read_from_the_environment_and_checked():
    assert load_settings({"OPSCONDUCTOR_SECRET_KEYS": f"{NEW}, {OLD}"}).secret_keys == (NEW, OLD)
    assert "secret_keys" not in repr(load_settings({"OPSCONDUCTOR_SECRET_KEYS": NEW}))
    with pytest.raises(ConfigError, match=r"OPSCONDUCTOR_SECRET_KEYS\[1\]"):
        load_settings({"OPSCONDUCTOR_SECRET_KEYS": f"{NEW},not-a-key"})


def test_a_secret_reaches_the_target_and_nothing_stored_or_shown_holds_it(event):
    secrets.put("TOKEN", TOKEN, keys=(OLD,), actor="cli")
    with http_target() as target:
        # Given an action using the secret in its URL, headers and body; the target echoes the path it got
        execution = execution_of(event, [restart(target.url)])
        # When it runs
        result = run(str(execution.id), settings=Settings(secret_keys=(NEW, OLD)))
        # Then the target got the value everywhere it was named
        assert result.status == "completed"
        [arrived] = target.requests
    assert arrived["path"] == f"/restart/web-01?key={TOKEN}"
    assert arrived["headers"]["Authorization"] == f"Bearer {TOKEN}" and arrived["headers"]["X-Plain"] == TOKEN
    assert arrived["json"] == {"token": TOKEN, "echo": TOKEN}
    # And no row (steps, plans, logs, audit) and no API answer holds it; the plan shows *** in its place
    assert TOKEN not in everything_stored()
    shown = execution_json(Execution.get_by_id(execution.id))
    assert TOKEN not in json.dumps(shown)
    planned = shown["actions"][0]["planned"]
    assert planned["headers"] == {"Authorization": "***", "X-Plain": "***"}
    assert planned["url"].endswith("/restart/web-01?key=***") and planned["json"] == {"token": "***", "echo": "***"}
    assert shown["actions"][0]["result"]["data"]["json"]["path"] == "/restart/web-01?key=***"


def test_a_dry_run_never_reads_a_secret(event):
    # Given no keys at all: a dry run must not need them
    with http_target() as target:
        execution = execution_of(event, [restart(target.url)], dry_run=True)
        result = run(str(execution.id), settings=Settings())
    assert result.status == "completed" and target.requests == []
    step = ExecutionStep.get(ExecutionStep.execution_id == execution.id)
    assert step.rendered["headers"]["X-Plain"] == "***"


def test_an_action_naming_an_unknown_secret_fails_its_step_clearly(event):
    with http_target() as target:
        execution = execution_of(event, [restart(target.url)])
        result = run(str(execution.id), settings=Settings(secret_keys=(OLD,)))
    assert result.status == "failed" and target.requests == []
    step = ExecutionStep.get(ExecutionStep.execution_id == execution.id)
    assert step.status == "failed" and "unknown secret 'TOKEN'" in step.error_message
    assert "opsconductor secrets set TOKEN" in step.error_message


def test_the_approval_request_shows_the_rendered_request_with_secrets_masked(event):
    secrets.put("TOKEN", TOKEN, keys=(OLD,), actor="cli")
    # Given a gated action whose request the approver must see
    action = restart("https://automation.internal")
    action["http"]["json"]["host"] = "{{ event.host }}"
    execution = execution_of(event, [action], gated=["restart"])
    # When the runner reaches it
    result = run(str(execution.id), settings=Settings(secret_keys=(OLD,)))
    # Then the approval lists the rendered request: method, URL, headers and body, the secret masked
    assert result.status == "awaiting_approval"
    [requested] = Approval.get(Approval.execution_id == execution.id).requested_actions
    request = requested["request"]
    assert (request["method"], request["url"]) == ("POST", "https://automation.internal/restart/web-01?key=***")
    assert request["headers"] == {"Authorization": "***", "X-Plain": "***"}
    assert request["json"] == {"token": "***", "echo": "***", "host": "web-01"}
    text = requests_text([requested])
    assert "POST https://automation.internal/restart/web-01?key=***" in text and "Authorization: ***" in text
    assert TOKEN not in everything_stored()


def test_a_secret_chosen_by_the_event_is_refused_on_write():
    for source in ("{{ secret[event.host] }}", "{{ secret }}", "{{ secret['_x'] }}"):
        body = {"name": "t", "actions": [{"id": "a", "type": "llm", "llm": {"prompt": source}}]}
        with pytest.raises(InvalidRule, match="named literally") as refused:
            parse_playbook(body)
        assert refused.value.field == "actions[0].llm.prompt"


def test_the_outcome_masks_a_secret_the_target_echoes():
    with http_target() as target:
        action = {"id": "a", "type": "http", "http": {"method": "GET", "url": f"{target.url}/x?k={{{{ secret.K }}}}"}}
        planned = actions.plan(action, {"event": {}}, secrets={"K": "s3cr3t value"})
        outcome = actions.perform(planned, settings=Settings(), timeout_s=5, secrets=["s3cr3t value"])
    assert outcome.success and "s3cr3t" not in outcome.output and "s3cr3t" not in json.dumps(outcome.data)
    assert outcome.data["json"]["path"] == "/x?k=***"


def test_a_target_at_the_metadata_address_is_a_failed_step_saying_why(event):
    # Given an action aimed at the cloud metadata service (no HTTP_ACTION_ALLOW)
    action = {"id": "steal", "name": "Steal", "type": "diagnostic",
              "http": {"method": "GET", "url": "http://169.254.169.254/latest/meta-data/iam/security-credentials/"}}  # fmt: skip
    execution = execution_of(event, [action])
    # When it runs / Then its step failed with the reason, and the execution with it
    result = run(str(execution.id), settings=Settings())
    assert result.status == "failed"
    step = ExecutionStep.get(ExecutionStep.execution_id == execution.id)
    assert step.status == "failed" and step.error_message.startswith("not allowed: ")
    assert "169.254.169.254" in step.error_message and "HTTP_ACTION_ALLOW" in step.error_message

"""Templates and secrets over the real web tier (gunicorn + gevent, PostgreSQL): what readers see and what is refused."""

from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet

from app.auth import create_key
from app.models import AuditLog, ResponseTemplate, Secret
from tests.http import request

KEY = Fernet.generate_key().decode()
VALUE = "sk-live-4c1d9e7f2b8a"


@pytest.fixture(scope="module")
def stack_env(stack_env):
    """The stack with a secrets key (the integration conftest's environment, plus OPSCONDUCTOR_SECRET_KEYS)."""
    return {**stack_env, "OPSCONDUCTOR_SECRET_KEYS": KEY}


@pytest.fixture(scope="module")
def operator(stack) -> str:
    return create_key(role="operator", name="action-targets operator")


def template(**http: object) -> dict:
    return {"name": "restart web", "response_type": "remediation",
            "actions": [{"id": "restart", "type": "remediation", "http": {"method": "POST", **http}}]}  # fmt: skip


def test_every_role_reads_a_template_with_its_secrets_masked_and_the_store_keeps_them(stack, db, operator):
    # Given a template written with secrets in its headers, body and URL
    written = template(
        url="https://bot:hunter2@automation.internal/restart/{{ event.host }}?token=abc123&host={{ event.host }}",
        headers={"Authorization": "Bearer s3cret-literal", "X-Api-Key": "{{ secret.API_KEY }}", "X-Trace": "1"},
        json={"password": "pa55", "user": "ops"},
    )
    created = request("POST", f"{stack.base}/api/v1/rules/responses", json=written, key=operator)
    assert created.status == 201, created.body
    template_id = created.json()["template_id"]
    # When a viewer, an operator and an admin read it (one version, the version list, the template list)
    for key in (stack.viewer, operator, stack.admin):
        for path in (f"/api/v1/rules/responses/{template_id}", f"/api/v1/rules/responses/{template_id}?version=1"):
            reply = request("GET", stack.base + path, key=key)
            assert reply.status == 200, reply.body
            http = reply.json()["actions"][0]["http"]
            # Then the secrets are masked; a reference to a named secret is shown as written
            assert http["headers"] == {"Authorization": "***", "X-Api-Key": "{{ secret.API_KEY }}", "X-Trace": "1"}
            assert http["json"] == {"password": "***", "user": "ops"}
            assert http["url"] == (
                "https://bot:***@automation.internal/restart/{{ event.host }}?token=***&host={{ event.host }}"
            )
        listed = request("GET", f"{stack.base}/api/v1/rules/responses", key=key)
        for secret in ("hunter2", "s3cret-literal", "abc123", "pa55"):
            assert secret not in listed.body.decode()
    # And the stored template keeps them for the executor
    stored = ResponseTemplate.get_by_id(template_id).response_definition["actions"][0]["http"]
    assert stored["headers"]["Authorization"] == "Bearer s3cret-literal" and stored["json"]["password"] == "pa55"


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("{{ event.metadata.callback }}", "actions[0].http.url"),
        ("https://{{ event.host }}/restart", "actions[0].http.url"),
        ("https://automation.internal:{{ event.port }}/restart", "actions[0].http.url"),
    ],
)
def test_a_url_whose_host_is_a_template_gets_a_400_naming_the_field(stack, operator, url, field):
    reply = request("POST", f"{stack.base}/api/v1/rules/responses", json=template(url=url), key=operator)
    assert reply.status == 400, reply.body
    assert reply.json()["field"] == field


def test_a_template_naming_an_unknown_secret_is_accepted_with_a_warning(stack, operator):
    body = template(url="https://automation.internal/restart", headers={"Authorization": "Bearer {{ secret.NOPE }}"})
    reply = request("POST", f"{stack.base}/api/v1/rules/responses", json=body, key=operator)
    assert reply.status == 201, reply.body
    assert any("secret 'NOPE' is not stored" in w for w in reply.json()["warnings"])


def test_a_secret_chosen_by_the_event_gets_a_400(stack, operator):
    body = template(url="https://automation.internal/restart", headers={"X-Key": "{{ secret[event.host] }}"})
    reply = request("POST", f"{stack.base}/api/v1/rules/responses", json=body, key=operator)
    assert reply.status == 400 and reply.json()["field"] == "actions[0].http.headers.X-Key"


def test_admins_set_list_and_delete_secrets_and_no_answer_or_row_holds_a_value(stack, db, operator):
    base = f"{stack.base}/api/v1/secrets"
    # When an admin stores a secret, replaces it, and stores another by its path
    first = request("POST", base, json={"name": "API_KEY", "value": VALUE}, key=stack.admin)
    again = request("POST", base, json={"name": "API_KEY", "value": VALUE + "-2"}, key=stack.admin)
    by_path = request("PUT", f"{base}/DB_PASSWORD", json={"value": "p@ss word"}, key=stack.admin)
    listed = request("GET", base, key=stack.admin)
    # Then the answers name the secrets and never hold a value
    assert (first.status, again.status, by_path.status) == (201, 200, 201), (first.body, again.body, by_path.body)
    assert again.json() == {"name": "API_KEY", "status": "updated"}
    assert listed.status == 200 and [s["name"] for s in listed.json()["secrets"]] == ["API_KEY", "DB_PASSWORD"]
    for reply in (first, again, by_path, listed):
        assert VALUE not in reply.body.decode() and "p@ss word" not in reply.body.decode()
    # And the rows hold Fernet tokens that the configured key opens; the audit names the secrets only
    row = Secret.get(Secret.name == "API_KEY")
    assert VALUE not in row.token and Fernet(KEY.encode()).decrypt(row.token.encode()).decode() == VALUE + "-2"
    audited = list(AuditLog.select().where(AuditLog.action.startswith("secret.")).order_by(AuditLog.id))
    assert [(a.action, a.subject) for a in audited] == [("secret.created", "secret:API_KEY"),
                                                        ("secret.updated", "secret:API_KEY"),
                                                        ("secret.created", "secret:DB_PASSWORD")]  # fmt: skip
    assert VALUE not in json.dumps([a.details for a in audited])
    # And only admins may touch them
    for key in (stack.viewer, operator):
        assert request("GET", base, key=key).status == 403
        assert request("POST", base, json={"name": "X", "value": "y"}, key=key).status == 403
        assert request("DELETE", f"{base}/API_KEY", key=key).status == 403
    # And a bad name is a 400 naming it; deleting twice is a 404
    bad = request("POST", base, json={"name": "../x", "value": "y"}, key=stack.admin)
    assert bad.status == 400 and bad.json()["field"] == "name"
    assert request("DELETE", f"{base}/API_KEY", key=stack.admin).status == 200
    assert request("DELETE", f"{base}/API_KEY", key=stack.admin).status == 404

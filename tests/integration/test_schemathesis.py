"""Schemathesis against ``/openapi.json`` of a real gunicorn, with each role's key.

Whatever the generated request, the server never fails (no 5xx), and every 400 names the
offending field. Examples per operation: ``SCHEMATHESIS_EXAMPLES`` (15 here; ``make fuzz`` runs more).
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from app.auth import create_key
from app.http.openapi import document

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "15"))
#: The operations of the document the server publishes (it is built without I/O).
OPERATIONS = {op.ok().label: op.ok() for op in schemathesis.openapi.from_dict(document()).get_all_operations()}


@pytest.fixture(scope="module")
def role_keys(stack) -> dict[str, str]:
    return {"viewer": stack.viewer, "ingest": stack.ingest, "admin": stack.admin,
            "operator": create_key(role="operator", name="schemathesis operator")}  # fmt: skip


@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_no_generated_request_makes_the_server_fail(stack, role_keys, label):
    operation = OPERATIONS[label]

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
              database=None)  # fmt: skip
    @given(case=operation.as_strategy())
    def check(case) -> None:
        for role, key in role_keys.items():
            # When a generated request is sent with this role's key
            response = case.call(base_url=stack.base, headers={"Authorization": f"Bearer {key}"}, timeout=30)
            # Then the server does not fail, and a 400 says which field is wrong
            assert response.status_code < 500, (role, case.method, case.formatted_path, response.text[:500])
            if response.status_code == 400:
                body = response.json()
                assert body.get("field"), (role, case.method, case.formatted_path, case.body, body)

    check()

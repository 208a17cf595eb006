"""The Terraform agent end to end on the real stack: gunicorn, a dramatiq worker, RabbitMQ and PostgreSQL.

An operator's ``run`` reaches the agent's actor in the worker, which plans a workspace with a stand-in
``terraform`` first on PATH (never the machine's real one); the drift becomes events and an approval
request; once approved over the API, the executor runs the ``opsconductor-terraform`` step program
from ``SHELL_ACTIONS_DIR``, and the stand-in records the state backup, then the apply of exactly that plan;
an operator's rollback pushes the backed-up state back.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from app.agents import terraform_step
from app.db import in_transaction
from app.models import Execution
from tests.http import request
from tests.processes import wait_for
from tests.unit.test_agent_terraform import SECRETS, calls, install_standin


@pytest.fixture(scope="module")
def terraform(tmp_path_factory) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("terraform")
    install_standin(root / "bin", plan_exit=2)
    actions = root / "shell-actions"
    actions.mkdir()
    step = actions / "opsconductor-terraform"
    shutil.copyfile(terraform_step.__file__, step)  # installed by copying, as the README says
    step.chmod(0o755)
    (root / "infra-prod").mkdir()
    (root / "aws_secret").write_text("aws-secret-from-file\n")
    return SimpleNamespace(bin=root / "bin", actions=actions, workspace=root / "infra-prod", secret=root / "aws_secret")


@pytest.fixture(scope="module")
def stack_env(stack_env, terraform) -> dict[str, str]:
    """The stack's environment with the stand-in first on PATH and the step program's directory."""
    return {**stack_env, "PATH": f"{terraform.bin}{os.pathsep}{os.environ['PATH']}",
            "SHELL_ACTIONS_DIR": str(terraform.actions)}  # fmt: skip


def test_drift_becomes_events_and_an_approval_and_the_approved_apply_is_exactly_the_saved_plan(stack, db, terraform):
    base = stack.base
    # Given a terraform agent on one workspace, manual, credentials by reference
    configured = request("POST", f"{base}/api/v1/agents/config", key=stack.admin, json={
        "name": "tf-prod", "type": "terraform", "enabled": True, "automation_level": "manual",
        "approval_required": True, "interval_seconds": 3600,
        "integrations": [{"type": "terraform", "name": "prod", "path": str(terraform.workspace),
                          "variables": {"region": "eu-west-1"},
                          "env": {"AWS_REGION": "eu-west-1", "AWS_SECRET_ACCESS_KEY": {"file": str(terraform.secret)}}}],
    })  # fmt: skip
    assert configured.status == 201, configured.body
    # When an operator runs it now, and the worker's agent actor plans the workspace (exit 2: changes)
    assert request("POST", f"{base}/api/v1/agents/tf-prod/run", key=stack.admin).status == 202

    def proposed():
        return in_transaction(lambda: Execution.get_or_none(Execution.requested_by == "agent:tf-prod"))

    execution_id = str(wait_for(proposed, timeout=60, message="the agent's proposal").id)
    url = f"{base}/api/v1/autonomous/executions/{execution_id}"

    def status(wanted: str):
        body = request("GET", url, key=stack.viewer).json()
        return body if body["status"] == wanted else None

    waiting = wait_for(lambda: status("awaiting_approval"), timeout=60, message="the approval request")
    # Then the stand-in was planned into a file and shown, and nothing was applied before the approval
    planned = [c["argv"] for c in calls(terraform.bin)]
    assert [a[1] for a in planned] == ["init", "plan", "show"], planned
    planfile = next(a.removeprefix("-out=") for a in planned[1] if a.startswith("-out="))
    assert planned[2][-1] == planfile
    # And the approvers see the apply of that plan file, critical (a database is replaced)
    assert waiting["approval"]["status"] == "pending" and waiting["risk_level"] == "critical", waiting
    assert planfile in json.dumps(waiting["approval"]["requested_actions"])
    assert "tf:prod:aws_db_instance.main" in proposed().definition["target_resources"]
    # And each changed resource became an event on its tf: resource, with no sensitive value
    events = wait_for(lambda: request("GET", f"{base}/api/v1/events?host=tf:prod:aws_db_instance.main",
                                      key=stack.viewer).json()["events"], timeout=30, message="the drift event")  # fmt: skip
    assert events[0]["event_type"] == "terraform_drift" and events[0]["severity"] == "critical"
    shown = request("GET", f"{base}/api/v1/events?source=agent:tf-prod", key=stack.viewer).body.decode()
    assert not any(s in shown for s in SECRETS)
    # When an admin approves over the API
    assert request("POST", f"{url}/approve", key=stack.admin, json={"comment": "restore prod"}).status == 200
    wait_for(lambda: status("completed"), timeout=60, message="the approved apply")
    # Then the stand-in recorded the state backup, then the apply of exactly that saved plan, and nothing else
    after = [c["argv"][1:] for c in calls(terraform.bin)[3:]]
    assert after == [["state", "pull"], ["apply", "-input=false", "-no-color", planfile]], after
    # And the backup holds the pulled state, readable by its owner only, beside the plan
    backup = Path(planfile).with_suffix(".tfstate")
    assert json.loads(backup.read_text())["lineage"] == "3f1c-standin" and backup.stat().st_mode & 0o077 == 0
    # And the apply had the file credential in its environment (by name; the value is never an argument)
    assert {"AWS_SECRET_ACCESS_KEY", "AWS_REGION"} <= set(calls(terraform.bin)[4]["env"])
    # When an operator rolls it back, Then the backed-up state is pushed back (Terraform's record only)
    assert request("POST", f"{url}/rollback", key=stack.admin, json={"reason": "wrong plan"}).status == 202
    wait_for(lambda: status("rolled_back"), timeout=60, message="the rollback")
    assert [c["argv"][1:] for c in calls(terraform.bin)[5:]] == [["state", "push", "-force", str(backup)]]

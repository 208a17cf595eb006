"""The Terraform agent without a broker: the plan JSON read (risk table, attribute diff, sensitive masking)
and runs against a stand-in ``terraform`` placed first on PATH (never the machine's real one)."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from app.agents import registry, terraform, terraform_step
from app.agents import terraform_plan as tp
from app.agents.base import AgentAction, AgentEvent, AgentSettings
from app.agents.terraform import TerraformAgent, TerraformError, Workspace, workspace_lock
from app.config import Settings
from app.errors import InvalidInput

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "terraform"
SECRETS = ("hunter2-in-plan", "old-db-secret")


def install_standin(directory: Path, *, plan_exit: int = 2, plan: str = "plan_drift.json") -> Path:
    """A stand-in ``terraform`` in ``directory`` (run by this interpreter), configured by ``standin.json``."""
    directory.mkdir(parents=True, exist_ok=True)
    program = directory / "terraform"
    program.write_text(f"#!{sys.executable}\n" + (FIXTURES / "standin.py").read_text())
    program.chmod(program.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    configure_standin(directory, plan_exit=plan_exit, plan=plan)
    return program


def configure_standin(directory: Path, *, plan_exit: int, plan: str = "plan_drift.json", sleep: float = 0) -> None:
    config = {"plan_exit": plan_exit, "plan": plan, "fixtures": str(FIXTURES), "plan_sleep": sleep}
    (directory / "standin.json").write_text(json.dumps(config))


def calls(directory: Path) -> list[dict]:
    log = directory / "calls.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.fixture
def standin(tmp_path, monkeypatch) -> Path:
    """The stand-in's directory, first on PATH."""
    directory = tmp_path / "bin"
    install_standin(directory)
    monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.environ['PATH']}")
    return directory


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> dict:
    path = tmp_path / "infra-prod"
    path.mkdir()
    (tmp_path / "aws_secret").write_text("aws-secret-from-file\n")
    monkeypatch.setenv("PROD_AWS_KEY_ID", "AKIA-from-env")
    return {"type": "terraform", "name": "prod", "path": str(path), "variables": {"region": "eu-west-1"},
            "env": {"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": {"env": "PROD_AWS_KEY_ID"},
                            "AWS_SECRET_ACCESS_KEY": {"file": str(tmp_path / "aws_secret")}}}  # fmt: skip


def agent_settings(*integrations: dict) -> AgentSettings:
    return AgentSettings(name="tf", kind="terraform", automation_level="manual", approval_required=True,
                         integrations=integrations)  # fmt: skip


# --- the plan JSON ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("resource_type", "action", "attributes", "expected"), [
    ("aws_db_instance", "delete", (), "critical"),
    ("aws_db_instance", "replace", (), "critical"),
    ("google_sql_database_instance", "delete", (), "critical"),
    ("aws_s3_bucket", "delete", (), "critical"),
    ("azurerm_managed_disk", "replace", (), "critical"),
    ("aws_instance", "replace", (), "high"),
    ("aws_instance", "update", ("instance_type",), "medium"),
    ("aws_instance", "update", ("tags.owner", "tags_all.owner"), "low"),
    ("aws_db_instance", "update", ("tags.env",), "low"),
    ("aws_iam_role_policy", "update", ("policy",), "high"),
    ("aws_security_group", "delete", (), "high"),
    ("aws_cloudwatch_log_group", "create", (), "low"),
    ("aws_cloudwatch_log_group", "delete", (), "medium"),
])  # fmt: skip
def test_risk_follows_the_resource_class_and_the_action_and_a_tag_only_change_is_low(resource_type, action,
                                                                                    attributes, expected):  # fmt: skip
    assert tp.risk_of(resource_type, action, attributes) == expected


def test_a_workspace_may_raise_the_risk_of_its_own_resource_types():
    assert tp.risk_of("aws_cloudwatch_log_group", "delete", overrides={"aws_cloudwatch_*": "critical"}) == "critical"
    assert tp.risk_of("aws_cloudwatch_log_group", "delete", overrides={"aws_s3_*": "critical"}) == "medium"


@pytest.mark.parametrize(("actions", "expected"), [
    (["no-op"], None), (["read"], None), (["create"], "create"), (["update"], "update"), (["delete"], "delete"),
    (["delete", "create"], "replace"), (["create", "delete"], "replace"),
])  # fmt: skip
def test_the_documented_action_lists_map_to_one_action(actions, expected):
    assert tp.action_of(actions) == expected


def test_a_realistic_plan_lists_what_changes_with_attributes_and_risk_and_no_sensitive_value():
    # Given terraform's show -json of a plan: update, tag-only update, replace, delete, create, no-op, read
    plan = json.loads((FIXTURES / "plan_drift.json").read_text())
    # When it is read
    found = {c.address: c for c in tp.changes(plan)}
    # Then the no-op and the data source read are left out
    assert set(found) == {"aws_instance.web", "aws_security_group.web", "aws_db_instance.main", "aws_s3_bucket.logs",
                          "aws_cloudwatch_log_group.app"}  # fmt: skip
    assert {a: (c.action, c.risk) for a, c in found.items()} == {
        "aws_instance.web": ("update", "medium"), "aws_security_group.web": ("update", "low"),
        "aws_db_instance.main": ("replace", "critical"), "aws_s3_bucket.logs": ("delete", "critical"),
        "aws_cloudwatch_log_group.app": ("create", "low"),
    }  # fmt: skip
    # And each update names the attributes that change, before and after
    assert found["aws_instance.web"].attributes == ({"attribute": "instance_type", "before": "t3.large",
                                                     "after": "t3.small"},)  # fmt: skip
    assert [a["attribute"] for a in found["aws_security_group.web"].attributes] == ["tags.owner", "tags_all.owner"]
    # And the replaced database shows its password changing without either value, its id as known after apply
    db = {a["attribute"]: a for a in found["aws_db_instance.main"].attributes}
    assert db["password"] == {"attribute": "password", "before": "(sensitive)", "after": "(sensitive)"}
    assert db["id"]["after"] == "(known after apply)" and db["storage_encrypted"]["after"] is True
    assert found["aws_db_instance.main"].reason == "replace_because_cannot_update"
    # And the instance changed outside Terraform is flagged as such
    assert found["aws_instance.web"].drifted and not found["aws_db_instance.main"].drifted
    assert not any(s in json.dumps([c.attributes for c in found.values()]) for s in SECRETS)


def test_a_secret_terraform_repeats_unmarked_is_masked_too():
    # Given real terraform 1.11's show -json of terraform_data resources (recorded): a sensitive variable feeds
    # one's input, which terraform marks, and its output, which it does not
    plan = json.loads((FIXTURES / "plan_terraform_data.json").read_text())
    assert plan["format_version"] == "1.2" and "old-secret" in json.dumps(plan)
    # When it is read
    found = {c.address: c for c in tp.changes(plan)}
    # Then every action is recognised, and neither the old nor the new secret is shown anywhere
    assert {a: c.action for a, c in found.items()} == {"terraform_data.gone": "delete", "terraform_data.new": "create",
                                                       "terraform_data.repl": "replace", "terraform_data.upd": "update"}  # fmt: skip
    shown = {a["attribute"]: a for a in found["terraform_data.repl"].attributes}
    assert shown["output"]["before"] == shown["input"]["before"] == "(sensitive)"
    assert shown["triggers_replace"] == {"attribute": "triggers_replace", "before": "['v1']", "after": "['v2']"}
    assert not any(s in json.dumps([c.attributes for c in found.values()]) for s in ("old-secret", "new-secret"))
    assert {"old-secret", "new-secret"} <= tp.sensitive_values(plan)


def test_a_sensitive_value_nested_in_an_object_or_a_list_is_masked_whole():
    found = tp.diff({"conn": {"user": "a", "pass": "s1"}, "keys": ["k1"]}, {"conn": {"user": "b", "pass": "s2"}, "keys": ["k2"]},
                    before_sensitive={"conn": {"pass": True}, "keys": [True]}, after_sensitive={"conn": {"pass": True}})  # fmt: skip
    assert found == [{"attribute": "conn.pass", "before": "(sensitive)", "after": "(sensitive)"},
                     {"attribute": "conn.user", "before": "a", "after": "b"},
                     {"attribute": "keys", "before": "(sensitive)", "after": "(sensitive)"}]  # fmt: skip


def test_a_document_that_is_no_plan_is_refused():
    with pytest.raises(ValueError, match="format_version"):
        tp.changes({"resource_changes": []})


# --- runs against the stand-in ---------------------------------------------------------------------


def test_drift_becomes_events_and_one_apply_proposal_of_exactly_the_saved_plan(standin, workspace):
    # When the agent runs on a workspace whose plan has changes (exit 2)
    results = TerraformAgent(Settings()).run(agent_settings(workspace))
    # Then terraform was initialised, planned with -detailed-exitcode into a file, and that file shown
    argvs = [c["argv"] for c in calls(standin)]
    chdir = f"-chdir={workspace['path']}"
    assert [a[:2] for a in argvs] == [[chdir, "init"], [chdir, "plan"], [chdir, "show"]]
    assert {"-detailed-exitcode", "-input=false"} <= set(argvs[1])
    planfile = next(a.removeprefix("-out=") for a in argvs[1] if a.startswith("-out="))
    assert argvs[2][-3:] == ["-json", "-no-color", planfile] and Path(planfile).is_file()
    assert stat.S_IMODE(Path(planfile).stat().st_mode) == 0o600
    # And credentials and variables reached its environment only (never an argument)
    env = calls(standin)[1]["env"]
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "TF_VAR_region", "TF_IN_AUTOMATION"} <= set(env)
    assert "DATABASE_URL" not in env and "PROD_AWS_KEY_ID" not in env
    # And each changed resource is an event on its tf: resource, with no sensitive value
    events = [r for r in results if isinstance(r, AgentEvent)]
    assert {e.resource: e.severity for e in events} == {
        "tf:prod:aws_instance.web": "medium", "tf:prod:aws_security_group.web": "low",
        "tf:prod:aws_db_instance.main": "critical", "tf:prod:aws_s3_bucket.logs": "critical",
        "tf:prod:aws_cloudwatch_log_group.app": "low",
    }  # fmt: skip
    db = next(e for e in events if e.resource == "tf:prod:aws_db_instance.main")
    assert db.event_type == "terraform_drift" and db.data["action"] == "replace" and "replaced" in db.title
    assert not any(s in json.dumps([e.data for e in events], default=str) for s in SECRETS)
    # And one proposal: back up the state, then apply exactly that plan file, approval required
    (action,) = [r for r in results if isinstance(r, AgentAction)]
    assert action.type == "terraform_apply" and action.risk_level == "critical" and action.purpose == "drift"
    assert set(action.target_resources) == {e.resource for e in events}
    backup, apply = action.steps
    assert backup["shell"]["args"][0] == "backup" and apply["depends_on"] == ["backup-state"]
    assert apply["shell"]["args"][0] == "apply" and apply["shell"]["args"][-2:] == ["--plan", planfile]
    assert all(s["approval_required"] and s["shell"]["program"] == "opsconductor-terraform" for s in action.steps)
    # And only the file reference of a credential crosses into the steps: its path, never a value
    args = " ".join(apply["shell"]["args"])
    assert "AWS_SECRET_ACCESS_KEY=file:" in args and "aws-secret-from-file" not in args and "AKIA" not in args
    assert "--env AWS_REGION=eu-west-1" in args  # a plain, non-secret value
    assert "AWS_ACCESS_KEY_ID" in action.description  # the approvers are told it is not passed
    assert action.rollback_steps[0]["shell"]["args"][0] == "restore"
    # And the status shows the drift
    (ws,) = TerraformAgent(Settings()).status(agent_settings(workspace))["workspaces"]
    assert ws["result"] == "drift" and ws["changes"] == 5 and ws["risk"] == "critical"


def test_no_drift_proposes_nothing_and_a_second_run_does_not_init_again(standin, workspace):
    configure_standin(standin, plan_exit=0)
    agent = TerraformAgent(Settings())
    assert agent.run(agent_settings(workspace)) == []
    assert agent.run(agent_settings(workspace)) == []
    assert [c["argv"][1] for c in calls(standin)] == ["init", "plan", "plan"]
    assert list(Path(workspace["path"], ".opsconductor").glob("*.tfplan")) == []
    assert agent.status(agent_settings(workspace))["workspaces"][0]["result"] == "no_drift"


def test_a_failed_plan_is_the_runs_error_trimmed_and_shown_in_the_status(standin, workspace):
    configure_standin(standin, plan_exit=1)
    agent = TerraformAgent(Settings())
    with pytest.raises(TerraformError, match=r"plan exited with 1: Error: No valid credential sources found") as e:
        agent.run(agent_settings(workspace))
    assert "╷" not in str(e.value)
    (ws,) = agent.status(agent_settings(workspace))["workspaces"]
    assert ws["result"] == "error" and "No valid credential sources" in ws["error"]


def test_a_plan_past_its_timeout_is_killed_and_a_plan_too_large_is_not_read(standin, workspace, monkeypatch):
    configure_standin(standin, plan_exit=2, sleep=60)
    with pytest.raises(TerraformError, match="prod: plan did not finish within 1 s and was stopped"):
        TerraformAgent(Settings()).run(agent_settings({**workspace, "timeout_seconds": 1}))
    configure_standin(standin, plan_exit=2)
    monkeypatch.setattr(terraform, "MAX_PLAN_BYTES", 1000)
    with pytest.raises(TerraformError, match=r"show -json wrote \d+ bytes, more than the 1000 read"):
        TerraformAgent(Settings()).run(agent_settings(workspace))
    # And neither failed plan left its file behind
    assert list(Path(workspace["path"], ".opsconductor").glob("*.tfplan")) == []


def test_one_failed_workspace_is_an_event_and_the_others_still_run(standin, workspace, tmp_path):
    broken = {"type": "terraform", "name": "gone", "path": str(tmp_path / "missing")}
    results = TerraformAgent(Settings()).run(agent_settings(broken, workspace))
    failed = [r for r in results if isinstance(r, AgentEvent) and r.event_type == "terraform_plan_failed"]
    assert [f.resource for f in failed] == ["tf:gone"] and "does not exist" in failed[0].description
    assert sum(isinstance(r, AgentAction) for r in results) == 1


def test_a_missing_credential_reference_names_the_variable_not_a_value(standin, workspace, monkeypatch):
    monkeypatch.delenv("PROD_AWS_KEY_ID")
    with pytest.raises(TerraformError, match="env.AWS_ACCESS_KEY_ID refers to environment variable "
                                             "PROD_AWS_KEY_ID, which is not set"):  # fmt: skip
        TerraformAgent(Settings()).run(agent_settings(workspace))
    assert calls(standin) == []


def test_a_workspace_being_planned_or_applied_is_skipped(standin, workspace):
    ws = Workspace.of(workspace)
    ws.plan_dir.mkdir()
    with workspace_lock(ws) as held:
        assert held
        assert TerraformAgent(Settings()).run(agent_settings(workspace)) == []
    assert calls(standin) == []


def test_without_terraform_or_tofu_on_path_the_agent_says_so_and_does_nothing(tmp_path, monkeypatch, workspace):
    # Given a PATH with neither program
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    agent = TerraformAgent(Settings())
    # Then its status says so, and a run does nothing
    assert agent.status(agent_settings(workspace)) == {
        "ready": False,
        "reason": "neither terraform nor tofu is on PATH: the agent does nothing",
    }
    assert agent.run(agent_settings(workspace)) == []
    assert not Path(workspace["path"], ".opsconductor").exists()
    named = TerraformAgent(Settings(terraform_bin="tofu")).status(agent_settings(workspace))
    assert named["ready"] is False and "TERRAFORM_BIN tofu is not found" in named["reason"]


def test_the_step_program_backs_up_the_state_privately_then_applies_the_plan(tmp_path):
    program = install_standin(tmp_path / "bin")
    (tmp_path / "ws").mkdir()
    (tmp_path / "cred").write_text("from-file\n")
    common = ["--bin", str(program), "--chdir", str(tmp_path / "ws"), "--lock", str(tmp_path / ".lock"),
              "--credential", f"AWS_SECRET_ACCESS_KEY=file:{tmp_path / 'cred'}", "--env", "AWS_REGION=eu-west-1"]  # fmt: skip
    backup, plan = tmp_path / "p.tfstate", tmp_path / "p.tfplan"
    plan.write_text("{}")
    assert terraform_step.main(["backup", *common, "--state-out", str(backup)]) == 0
    assert terraform_step.main(["apply", *common, "--plan", str(plan)]) == 0
    assert terraform_step.main(["restore", *common, "--state-in", str(backup)]) == 0
    assert json.loads(backup.read_text())["serial"] == 42 and stat.S_IMODE(backup.stat().st_mode) == 0o600
    argvs = [c["argv"][1:] for c in calls(tmp_path / "bin")]
    assert argvs == [["state", "pull"], ["apply", "-input=false", "-no-color", str(plan)],
                     ["state", "push", "-force", str(backup)]]  # fmt: skip
    assert {"AWS_SECRET_ACCESS_KEY", "AWS_REGION"} <= set(calls(tmp_path / "bin")[1]["env"])
    with pytest.raises(SystemExit, match="NAME=file:/path"):
        terraform_step.main(["apply", *common[:6], "--credential", "TOKEN=plain-value", "--plan", str(plan)])


@pytest.mark.parametrize(("integration", "field"), [
    ({"path": "relative/dir"}, "integrations[0].path"),
    ({"path": "/srv/infra", "name": "prod ws"}, "integrations[0].name"),
    ({"path": "/srv/infra", "variables": ["region"]}, "integrations[0].variables"),
    ({"path": "/srv/infra", "env": {"AWS-REGION": "x"}}, "integrations[0].env.AWS-REGION"),
    ({"path": "/srv/infra", "env": {"AWS_REGION": 3}}, "integrations[0].env.AWS_REGION"),
    ({"path": "/srv/infra", "env": {"AWS_SECRET_ACCESS_KEY": "plain-secret"}}, "integrations[0].env.AWS_SECRET_ACCESS_KEY"),
    ({"path": "/srv/infra", "variables": {"db_password": "plain"}}, "integrations[0].variables.db_password"),
    ({"path": "/srv/infra", "risk": {"aws_s3_*": "severe"}}, "integrations[0].risk.aws_s3_*"),
    ({"path": "/srv/infra", "init": "yes"}, "integrations[0].init"),
    ({"path": "/srv/infra", "timeout_seconds": 0}, "integrations[0].timeout_seconds"),
    ({"path": "/srv/infra", "workdir": "/x"}, "integrations[0].workdir"),
    ({"path": "/srv/infra", "credentials": "AWS_ACCESS_KEY_ID=AKIA"}, "integrations[0].credentials"),
])  # fmt: skip
def test_a_bad_workspace_is_refused_when_configured_naming_the_field(integration, field):
    body = {"name": "tf", "type": "terraform", "integrations": [{"type": "terraform", **integration}]}
    with pytest.raises(InvalidInput) as e:
        registry.parse_config(body)
    assert e.value.field == field, e.value.message


def test_a_good_workspace_is_accepted_as_given():
    integration = {"type": "terraform", "name": "prod", "path": "/srv/infra", "variables": {"region": "eu-west-1"},
                   "env": {"AWS_REGION": "eu-west-1", "AWS_SECRET_ACCESS_KEY": {"file": "/etc/oc/aws"}},
                   "credentials": {"env": "PROD_AWS_ENV"}, "risk": {"aws_s3_*": "critical"}, "init": True,
                   "timeout_seconds": 900}  # fmt: skip
    assert registry.parse_config({"name": "tf", "type": "terraform", "integrations": [integration]})[
        "integrations"
    ] == [integration]


def test_credentials_as_one_document_of_lines_reach_the_plan_and_the_apply_by_file(standin, workspace, tmp_path):
    # Given a workspace whose credentials are one file of NAME=value lines
    document = tmp_path / "prod-aws.env"
    document.write_text('# prod\nexport AWS_PROFILE="prod-admin"\n\nAWS_SESSION_TOKEN=session-token-value\n')
    results = TerraformAgent(Settings()).run(agent_settings({**workspace, "credentials": {"file": str(document)}}))
    # Then the plan had each of them in its environment, and the apply step gets the file's path only
    assert {"AWS_PROFILE", "AWS_SESSION_TOKEN"} <= set(calls(standin)[1]["env"])
    (action,) = [r for r in results if isinstance(r, AgentAction)]
    args = action.steps[1]["shell"]["args"]
    assert args[args.index("--credentials-file") + 1] == str(document) and "session-token-value" not in str(args)
    # And a malformed document is refused by its line's number, never its content
    document.write_text("AWS_PROFILE=prod\nsession-token-value\n")
    with pytest.raises(TerraformError, match="credentials: line 2 is not NAME=value") as e:
        TerraformAgent(Settings()).run(agent_settings({**workspace, "credentials": {"file": str(document)}}))
    assert "session-token-value" not in str(e.value)

"""The Terraform agent: plans each configured workspace, reports drift, proposes applying exactly that plan.

For each integration of type ``terraform`` (a workspace: :mod:`app.agents.terraform_workspace`),
a run holds the workspace's lock (a file in its plan directory, also held by the apply), runs
``init -input=false`` when the workspace has no ``.terraform`` yet, then ``plan -detailed-exitcode
-input=false -out=FILE`` (exit 0: no change, 2: changes, 1: error) and ``show -json FILE``. Credentials
and variables are references (``{"env": ...}``, ``{"file": ...}``, ``"{{ secret.NAME }}"``), resolved
only into the child's environment (``TF_VAR_<name>`` for variables), never stored, logged or put in events.

Each changed resource becomes an event (``terraform_drift``, its ``tf:<workspace>:<address>``, the
attributes that change with sensitive values masked, a risk by resource class and action:
:mod:`app.agents.terraform_plan`), and the plan becomes one approval-required proposal whose steps
back up the state (``terraform state pull``) and then ``terraform apply`` that saved plan file, through
the ``opsconductor-terraform`` program in ``SHELL_ACTIONS_DIR`` (:mod:`app.agents.terraform_step`).

What a rollback of Terraform can and cannot do: its rollback step pushes the backed-up state back
(``state push -force``), so Terraform's record is what it was before the apply. It does not undo the
apply in the world: a deleted database stays deleted (only its provider's snapshots bring it back),
a replaced instance keeps its new identity, and an object created by the apply is still running but no
longer tracked. Putting the world back means changing the configuration and planning again, which is
a new proposal for approvers. The backup mostly serves to recover a state that an interrupted apply damaged.

Plan files hold the values of variables and may hold secrets: the plan directory is created ``0700``,
the files ``0600``; plans older than :data:`PLAN_RETENTION_S` are removed at the next run.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..config import Settings, get_settings
from .base import AgentAction, AgentEvent, AgentSettings
from .terraform_plan import Change, changes, highest
from .terraform_workspace import TerraformError, Workspace, environment, is_file_reference, is_plain

logger = logging.getLogger(__name__)

#: The program the steps run from ``SHELL_ACTIONS_DIR`` (a copy of :mod:`app.agents.terraform_step`).
STEP_PROGRAM = "opsconductor-terraform"
#: The largest ``show -json`` read, and the characters of an error kept.
MAX_PLAN_BYTES, MAX_ERROR_CHARS = 64 * 1024 * 1024, 1000
#: Resources that become events each run per workspace (the proposal still names them all).
MAX_EVENTS = 100
PLAN_RETENTION_S = 7 * 86_400
#: Seconds an interrupted ``terraform`` has to release its state lock and exit before it is killed.
INTERRUPT_GRACE_S = 30


def workspaces(config: AgentSettings) -> list[Mapping[str, Any]]:
    return [i for i in config.integrations if i.get("type") == "terraform"]


def find_binary(settings: Settings, path: str | None = None) -> str | None:
    """``TERRAFORM_BIN`` (a name on PATH or a path), else ``terraform``, else ``tofu``, on ``path`` (default PATH)."""
    for name in (settings.terraform_bin,) if settings.terraform_bin else ("terraform", "tofu"):
        found = shutil.which(name, path=path)
        if found:
            return found
    return None


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Interrupt the session as Ctrl-C would (Terraform then releases its state lock), kill it if it lingers."""
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=INTERRUPT_GRACE_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _run(argv: list[str], *, env: Mapping[str, str], cwd: Path, timeout_s: float, out: Any) -> tuple[int, str]:
    """Run ``argv`` with stdout to the file ``out``; ``(exit code, last part of stderr)``; killed at the timeout."""
    with tempfile.TemporaryFile() as err:
        process = subprocess.Popen(argv, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=out, stderr=err,  # noqa: S603
                                   start_new_session=True)  # fmt: skip
        try:
            code = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _stop(process)
            raise TerraformError(f"{argv[2]} did not finish within {timeout_s:g} s and was stopped") from None
        err.seek(max(0, err.seek(0, os.SEEK_END) - 4 * MAX_ERROR_CHARS))
        return code, err.read().decode(errors="replace")


def _trimmed(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip() and not set(line.strip()) <= set("│╷╵")]
    text = " ".join(line.strip("│ ") for line in lines)
    return text if len(text) <= MAX_ERROR_CHARS else "..." + text[-MAX_ERROR_CHARS:]


@contextmanager
def workspace_lock(ws: Workspace) -> Iterator[bool]:
    """Hold the workspace's lock if it is free (yields False when another plan or apply holds it)."""
    fd = os.open(ws.plan_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def plan(ws: Workspace, binary: str, settings: Settings, *, now: datetime) -> tuple[Path, dict[str, Any] | None]:
    """Plan the workspace into a new plan file: ``(plan file, plan JSON)``, the JSON None when nothing changes.

    Raises:
      TerraformError: init, plan or show failed (exit 1, a timeout, output too large), with Terraform's message.
    """
    env = environment(ws, settings)
    base = [binary, f"-chdir={ws.path}"]
    if ws.init or (ws.init is None and not (ws.path / ".terraform").is_dir()):
        code, err = _run([*base, "init", "-input=false", "-no-color"], env=env, cwd=ws.path, timeout_s=ws.timeout_s,
                         out=subprocess.DEVNULL)  # fmt: skip
        if code != 0:
            raise TerraformError(f"init exited with {code}: {_trimmed(err)}")
    planfile = ws.plan_dir / f"{now:%Y%m%dT%H%M%S}-{os.urandom(3).hex()}.tfplan"
    try:
        return planfile, _plan_into(planfile, base, env, ws)
    except BaseException:
        planfile.unlink(missing_ok=True)
        raise


def _plan_into(planfile: Path, base: list[str], env: Mapping[str, str], ws: Workspace) -> dict[str, Any] | None:
    code, err = _run([*base, "plan", "-detailed-exitcode", "-input=false", "-no-color", f"-out={planfile}"], env=env,
                     cwd=ws.path, timeout_s=ws.timeout_s, out=subprocess.DEVNULL)  # fmt: skip
    if code == 0:
        planfile.unlink(missing_ok=True)
        return None
    if code != 2:
        raise TerraformError(f"plan exited with {code}: {_trimmed(err)}")
    if planfile.exists():
        planfile.chmod(0o600)
    with tempfile.TemporaryFile() as out:
        code, err = _run([*base, "show", "-json", "-no-color", str(planfile)], env=env, cwd=ws.path,
                         timeout_s=ws.timeout_s, out=out)  # fmt: skip
        if code != 0:
            raise TerraformError(f"show -json exited with {code}: {_trimmed(err)}")
        size = out.seek(0, os.SEEK_END)
        if size > MAX_PLAN_BYTES:
            raise TerraformError(f"show -json wrote {size} bytes, more than the {MAX_PLAN_BYTES} read")
        out.seek(0)
        try:
            document: dict[str, Any] = json.load(out)
            return document
        except ValueError as e:
            raise TerraformError(f"show -json did not write JSON: {e}") from None


def _verb(action: str) -> str:
    return {"create": "created", "update": "updated in place", "replace": "replaced", "delete": "destroyed"}[action]


def drift_event(ws: Workspace, change: Change, planfile: Path) -> AgentEvent:
    """A changed resource as an event (attributes as :func:`app.agents.terraform_plan.diff` shows them)."""
    named = ", ".join(a["attribute"] for a in change.attributes[:10])
    return AgentEvent(
        event_type="terraform_drift", severity=change.risk, resource=f"tf:{ws.name}:{change.address}",
        title=f"Terraform: {change.address} would be {_verb(change.action)}",
        description=f"{change.type} in workspace {ws.name}" + (f"; attributes: {named}" if named else ""),
        service=f"terraform:{ws.name}", tags=("terraform", change.action),
        data={"workspace": ws.name, "address": change.address, "resource_type": change.type,
              "action": change.action, "risk": change.risk, "attributes": [dict(a) for a in change.attributes],
              "reason": change.reason, "changed_outside_terraform": change.drifted, "plan_file": planfile.name},
    )  # fmt: skip


def _step_args(ws: Workspace, binary: str) -> list[str]:
    args = ["--bin", binary, "--chdir", str(ws.path), "--lock", str(ws.plan_dir / ".lock")]
    for name, value in ws.env.items():  # plain values and file references cross into the shell sandbox
        if is_file_reference(value):
            args += ["--credential", f"{name}=file:{value['file']}"]
        elif is_plain(value):
            args += ["--env", f"{name}={value}"]
    if is_file_reference(ws.credentials):
        args += ["--credentials-file", ws.credentials["file"]]
    return args


def apply_action(ws: Workspace, found: Sequence[Change], planfile: Path, binary: str) -> AgentAction:
    """Applying exactly ``planfile``, after backing up the state; approval required whatever the risk."""
    backup = planfile.with_suffix(".tfstate")
    common = _step_args(ws, binary)
    counts = {a: sum(1 for c in found if c.action == a) for a in ("create", "update", "replace", "delete")}
    summary = ", ".join(f"{n} to {a}" for a, n in counts.items() if n)
    worst = sorted(found, key=lambda c: ("low", "medium", "high", "critical").index(c.risk), reverse=True)[:5]
    digest = hashlib.sha256(json.dumps([(c.address, c.action, c.attributes) for c in found], sort_keys=True,
                                       default=str).encode()).hexdigest()[:16]  # fmt: skip
    skipped = sorted(n for n, v in ws.env.items() if not is_file_reference(v) and not is_plain(v))
    if ws.credentials is not None and not is_file_reference(ws.credentials):
        skipped.append("credentials")
    note = f" {', '.join(skipped)}: not file references, so the apply runs without them." if skipped else ""
    return AgentAction(
        type="terraform_apply", purpose="drift", key=f"terraform:{ws.name}:{digest}",
        description=f"Apply the saved plan {planfile.name} of Terraform workspace {ws.name} ({summary}).{note}",
        target_resources=tuple(f"tf:{ws.name}:{c.address}" for c in found),
        risk_level=highest([c.risk for c in found]),
        estimated_impact=f"{summary}: " + ", ".join(f"{c.address} ({c.action}, {c.risk})" for c in worst),
        steps=(
            {"id": "backup-state", "name": f"Back up the state of {ws.name}", "type": "remediation",
             "approval_required": True, "shell": {"program": STEP_PROGRAM,
                                                  "args": ["backup", *common, "--state-out", str(backup)]}},
            {"id": "apply-plan", "name": f"Apply {planfile.name}", "type": "remediation", "depends_on": ["backup-state"],
             "approval_required": True, "shell": {"program": STEP_PROGRAM,
                                                  "args": ["apply", *common, "--plan", str(planfile)]}},
        ),
        rollback_steps=(
            {"id": "restore-state", "name": f"Push the backed-up state of {ws.name} back", "type": "remediation",
             "rolls_back": "apply-plan",
             "shell": {"program": STEP_PROGRAM, "args": ["restore", *common, "--state-in", str(backup)]}},
        ),
        max_execution_time_minutes=max(30, int(ws.timeout_s // 60) * 2),
    )  # fmt: skip


def _prune(ws: Workspace, now: float) -> None:
    for old in ws.plan_dir.glob("*.tf*"):
        if now - old.stat().st_mtime > PLAN_RETENTION_S:
            old.unlink(missing_ok=True)


def _remember(ws: Workspace, **outcome: Any) -> None:
    """The workspace's last outcome, for :meth:`TerraformAgent.status` (never a value of a resource)."""
    path = ws.plan_dir / "status.json"
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(outcome), encoding="utf-8")
    os.replace(partial, path)


class TerraformAgent:
    """The ``terraform`` kind (:data:`app.agents.base.IMPLEMENTATIONS`)."""

    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings

    @property
    def settings(self) -> Settings:
        return self._settings or get_settings()

    def run(self, config: AgentSettings) -> list[AgentAction | AgentEvent]:
        """Plan each workspace; its drift as events and one apply proposal. A failed workspace does not stop
        the others: its error is an event and its status; the run fails only when every workspace failed."""
        binary = find_binary(self.settings)
        if binary is None:
            logger.warning("Agent %r: %s; nothing runs.", config.name, self._missing())
            return []
        results: list[AgentAction | AgentEvent] = []
        errors = []
        integrations = workspaces(config)
        for integration in integrations:
            now = datetime.now(UTC)
            try:
                results += self._workspace(Workspace.of(integration), binary, now)
            except TerraformError as e:
                name = str(integration.get("name") or integration.get("path"))
                logger.error("Agent %r: workspace %s: %s", config.name, name, e)
                errors.append(f"{name}: {e}")
                results.append(AgentEvent(event_type="terraform_plan_failed", severity="high", resource=f"tf:{name}",
                                          title=f"Terraform could not plan workspace {name}", description=str(e),
                                          service=f"terraform:{name}", tags=("terraform",)))  # fmt: skip
        if integrations and len(errors) == len(integrations):
            raise TerraformError("; ".join(errors)[: 2 * MAX_ERROR_CHARS])
        return results

    def _workspace(self, ws: Workspace, binary: str, now: datetime) -> list[AgentAction | AgentEvent]:
        if not ws.path.is_dir():
            raise TerraformError(f"the workspace directory {ws.path} does not exist")
        ws.plan_dir.mkdir(mode=0o700, exist_ok=True)
        ws.plan_dir.chmod(0o700)  # plan files hold variables' values
        with workspace_lock(ws) as held:
            if not held:
                logger.info("Workspace %s is being planned or applied: this run skips it.", ws.name)
                return []
            _prune(ws, time.time())
            started = time.monotonic()
            planfile = None
            try:
                planfile, document = plan(ws, binary, self.settings, now=now)
                found = changes(document, overrides=ws.risk) if document is not None else []
            except (TerraformError, ValueError) as e:
                if planfile is not None:
                    planfile.unlink(missing_ok=True)
                _remember(ws, at=now.isoformat(), result="error", error=str(e)[:MAX_ERROR_CHARS])
                raise TerraformError(str(e)) from None
            seconds = round(time.monotonic() - started, 3)
            if not found:
                planfile.unlink(missing_ok=True)
                _remember(ws, at=now.isoformat(), result="no_drift", changes=0, seconds=seconds)
                return []
            _remember(ws, at=now.isoformat(), result="drift", changes=len(found), seconds=seconds,
                      plan_file=planfile.name, risk=highest([c.risk for c in found]))  # fmt: skip
        events: list[AgentAction | AgentEvent] = [drift_event(ws, c, planfile) for c in found[:MAX_EVENTS]]
        return [*events, apply_action(ws, found, planfile, binary)]

    def _missing(self) -> str:
        if self.settings.terraform_bin:
            return f"TERRAFORM_BIN {self.settings.terraform_bin} is not found (on PATH or as a path)"
        return "neither terraform nor tofu is on PATH"

    def status(self, config: AgentSettings) -> Mapping[str, Any]:
        binary = find_binary(self.settings)
        if binary is None:
            return {"ready": False, "reason": f"{self._missing()}: the agent does nothing"}
        found = []
        for integration in workspaces(config):
            try:
                ws = Workspace.of(integration)
                last = json.loads((ws.plan_dir / "status.json").read_text(encoding="utf-8"))
            except TerraformError as e:
                last = {"result": "error", "error": str(e)}
            except (OSError, ValueError):
                last = {"result": "not planned yet"}
            found.append({"name": integration.get("name") or integration.get("path"), **last})
        reason = None if found else "no terraform workspace is configured (integrations of type terraform)"
        return {"ready": bool(found), "reason": reason, "binary": binary, "workspaces": found}

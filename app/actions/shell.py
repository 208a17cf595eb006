"""The ``shell`` action: an allow-listed program with an argument list — never a shell string.

The program is a bare file name looked up in ``SHELL_ACTIONS_DIR`` (no ``/``, no ``..``; a symlink
leading out of the directory is refused). Arguments are passed as a list to ``execve``: each
rendered argument is one ``argv`` element, whatever characters it holds, and no shell ever sees it.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import ActionNotAllowed, InvalidRule
from .outcome import Outcome, truncate

#: The environment programs get: nothing of ours (no keys, no database URL).
ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}


#: A program's name: a plain file name (no path, no spaces, no shell syntax).
PROGRAM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")


def _bare(name: Any) -> bool:
    return isinstance(name, str) and PROGRAM_NAME.fullmatch(name) is not None


def validate(block: Any, where: str) -> None:
    if not isinstance(block, dict):
        raise InvalidRule("shell is an object {program, args}", field=where)
    if not _bare(block.get("program")):
        raise InvalidRule(
            "program is a plain file name in SHELL_ACTIONS_DIR (letters, digits, . _ + -)", field=f"{where}.program"
        )
    args = block.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str | int | float) for a in args):
        raise InvalidRule("args is a list of strings (one per argument; never a shell string)", field=f"{where}.args")


def plan(block: dict[str, Any]) -> dict[str, Any]:
    return {"integration": "shell", "program": str(block["program"]), "args": [str(a) for a in block.get("args", [])]}


def resolve(program: str, settings: Settings) -> Path:
    """The program's path inside ``SHELL_ACTIONS_DIR``.

    Raises:
      ActionNotAllowed: shell actions are disabled, or the program is not an executable file there.
    """
    if not settings.shell_actions_dir:
        raise ActionNotAllowed("shell actions are disabled: SHELL_ACTIONS_DIR is not set")
    if not _bare(program):
        raise ActionNotAllowed(f"program {program!r} is not a bare file name")
    directory = Path(settings.shell_actions_dir).resolve()
    path = (directory / program).resolve()
    if path.parent != directory:
        raise ActionNotAllowed(f"program {program!r} leads out of SHELL_ACTIONS_DIR")
    if not path.is_file() or not os.access(path, os.X_OK):
        raise ActionNotAllowed(f"program {program!r} is not an executable file in SHELL_ACTIONS_DIR")
    return path


def perform(planned: dict[str, Any], *, settings: Settings, timeout_s: float) -> Outcome:
    path = resolve(planned["program"], settings)
    try:
        done = subprocess.run(  # noqa: S603 - an allow-listed program with an argument list, no shell
            [str(path), *planned["args"]], shell=False, stdin=subprocess.DEVNULL, capture_output=True,
            timeout=timeout_s, env=ENV, cwd=str(path.parent), check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace")
        return Outcome(success=False, output=truncate(out), data={"timed_out": True},
                       error=f"{planned['program']} did not finish within {timeout_s:.0f} s and was killed")  # fmt: skip
    stdout, stderr = done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")
    data = {"exit_code": done.returncode, "stdout": truncate(stdout), "stderr": truncate(stderr)}
    if done.returncode != 0:
        return Outcome(success=False, output=truncate(stdout), data=data,
                       error=f"{planned['program']} exited with {done.returncode}: {stderr.strip()[:500]}")  # fmt: skip
    return Outcome(success=True, output=truncate(stdout), data=data)

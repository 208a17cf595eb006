"""The ``shell`` action: an allow-listed program with an argument list — never a shell string.

The program is a bare file name looked up in ``SHELL_ACTIONS_DIR`` (no ``/``, no ``..``; a symlink
leading out of the directory is refused). Arguments are passed as a list to ``execve``: each
rendered argument is one ``argv`` element, whatever characters it holds, and no shell ever sees it.
The program runs in its own session, so a timeout kills it together with everything it started.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import ActionNotAllowed, InvalidRule
from .outcome import Outcome, truncate

logger = logging.getLogger(__name__)

#: No field is a URL.
URL_FIELDS: frozenset[str] = frozenset()

#: The environment programs get: nothing of ours (no keys, no database URL).
ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
#: A program's name: a plain file name (no path, no spaces, no shell syntax).
PROGRAM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
#: Seconds to collect what a killed program had written before its pipes are abandoned.
DRAIN_S = 2.0


def _bare(name: Any) -> bool:
    return isinstance(name, str) and PROGRAM_NAME.fullmatch(name) is not None


def validate(block: Any, where: str) -> None:
    """Raise :class:`InvalidRule` naming the field when ``block`` is not a valid ``shell`` block."""
    if not isinstance(block, dict):
        raise InvalidRule("shell is an object {program, args}", field=where)
    if not _bare(block.get("program")):
        raise InvalidRule(
            "program is a plain file name in SHELL_ACTIONS_DIR (letters, digits, . _ + -)", field=f"{where}.program"
        )
    args = block.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise InvalidRule("args is a list of strings (one per argument; never a shell string)", field=f"{where}.args")


def plan(block: dict[str, Any]) -> dict[str, Any]:
    """The program's bare name and its rendered arguments, one ``argv`` element each."""
    validate(block, "shell")
    args = list(block.get("args", []))
    for i, arg in enumerate(args):
        if "\x00" in arg:
            raise InvalidRule("a rendered argument holds a NUL character", field=f"shell.args[{i}]")
    return {"integration": "shell", "program": block["program"], "args": args}


def resolve(program: str, settings: Settings) -> Path:
    """The program's real path inside ``SHELL_ACTIONS_DIR``.

    Raises:
      ActionNotAllowed: shell actions are disabled, or the program is not an executable file there.
    """
    if not settings.shell_actions_dir:
        raise ActionNotAllowed("shell actions are disabled: SHELL_ACTIONS_DIR is not set")
    if not _bare(program):
        raise ActionNotAllowed(f"program {program!r} is not a plain file name")
    directory = Path(settings.shell_actions_dir).resolve()
    path = (directory / program).resolve()
    if path.parent != directory:
        raise ActionNotAllowed(f"program {program!r} leads out of SHELL_ACTIONS_DIR ({directory})")
    if not path.is_file() or not os.access(path, os.X_OK):
        raise ActionNotAllowed(f"program {program!r} is not an executable file in SHELL_ACTIONS_DIR ({directory})")
    return path


def _kill_session(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)  # the pid is not reaped yet, so it still names our group
    except ProcessLookupError:
        pass


def _run(argv: list[str], *, cwd: Path, timeout_s: float) -> tuple[int | None, bytes, bytes]:
    """``(exit code, stdout, stderr)``; the exit code is None when the program was killed at the timeout."""
    with subprocess.Popen(  # noqa: S603 - an allow-listed program with an argument list, no shell
        argv,
        shell=False,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
        cwd=cwd,
        start_new_session=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout_s)
            return process.returncode, stdout, stderr
        except subprocess.TimeoutExpired:
            _kill_session(process)
        try:
            stdout, stderr = process.communicate(timeout=DRAIN_S)
        except subprocess.TimeoutExpired:  # a descendant left the session and holds the pipes open
            process.kill()
            stdout, stderr = b"", b""
        return None, stdout, stderr


def perform(planned: dict[str, Any], *, settings: Settings, timeout_s: float) -> Outcome:
    """Run the program with its arguments, killing it (and what it started) after ``timeout_s``.

    Raises:
      ActionNotAllowed: see :func:`resolve`.
    """
    program, args = planned["program"], planned["args"]
    path = resolve(program, settings)
    logger.info("Running %s with %d arguments.", path, len(args))
    code, out, err = _run([str(path), *args], cwd=path.parent, timeout_s=timeout_s)
    stdout, stderr = out.decode(errors="replace"), err.decode(errors="replace")
    data: dict[str, Any] = {
        "program": str(path),
        "exit_code": code,
        "stdout": truncate(stdout),
        "stderr": truncate(stderr),
    }
    if code is None:
        data["timed_out"] = True
        error = f"{program} did not finish within {timeout_s:g} s and was killed"
        return Outcome(success=False, output=truncate(stdout), data=data, error=error)
    if code != 0:
        error = f"{program} exited with {code}: {stderr.strip()[-500:]}"
        return Outcome(success=False, output=truncate(stdout), data=data, error=error)
    return Outcome(success=True, output=truncate(stdout), data=data)

#!/usr/bin/env python3
"""The Terraform agent's steps, as one program for ``SHELL_ACTIONS_DIR``: back up, apply, restore.

A ``shell`` action runs a bare program name found in ``SHELL_ACTIONS_DIR`` with an argument list,
no shell and an environment of only ``PATH`` and ``LANG`` (:mod:`app.actions.shell`). ``terraform
state pull > FILE`` needs a redirection, and the provider credentials are not in that environment:
this program does both. Install it by copying (a symlink leading out of the directory is refused)::

    install -m 755 app/agents/terraform_step.py "$SHELL_ACTIONS_DIR/opsconductor-terraform"

Usage (the agent writes these arguments; nothing here is a shell string)::

    opsconductor-terraform backup  --bin B --chdir DIR --lock FILE --state-out FILE [--env NAME=VALUE]... [--credential NAME=file:PATH]...
    opsconductor-terraform apply   --bin B --chdir DIR --lock FILE --plan FILE      [--env ...] [--credential ...]
    opsconductor-terraform restore --bin B --chdir DIR --lock FILE --state-in FILE  [--env ...] [--credential ...]

Each holds the workspace's lock (the agent's ``plan`` holds the same one), so a plan and an apply
of one workspace never overlap. ``backup`` writes the state atomically, readable by its owner only.
``apply`` applies exactly the saved plan (Terraform refuses a plan whose state has moved on).
``restore`` pushes the backed-up state with ``-force``: Terraform's record of the world goes back
to what it was, the world does not (see :mod:`app.agents.terraform`). Credentials are given by
file reference only (``--credential NAME=file:PATH``, or ``--credentials-file PATH`` of ``NAME=value``
lines), read here into the child's environment and never printed;
``--env`` carries the workspace's plain, non-secret variables (a region).

Standard library only: it runs under the system's ``python3``, outside the product's virtualenv.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import subprocess
import sys
import time

#: Seconds to wait for the workspace's lock (a plan in progress) before giving up.
LOCK_WAIT_S = 600


def _lock(path: str) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                sys.exit(f"the workspace is locked by another plan or apply ({path}) for {LOCK_WAIT_S} s")
            time.sleep(1)


def parse_env(text: str) -> dict[str, str]:
    """``NAME=value`` lines (blank lines, ``#`` comments and ``export`` allowed; a value may be quoted).

    Raises:
      ValueError: naming the line's number, never its content (it holds a secret).
    """
    found = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.removeprefix("export ").partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name.replace("_", "a").isalnum() or name[0].isdigit():
            raise ValueError(f"line {number} is not NAME=value")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        found[name] = value
    return found


def _environment(plain: list[str], credentials: list[str], documents: list[str]) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": os.environ.get("LANG", "C.UTF-8"),
           "TF_IN_AUTOMATION": "1", "TF_INPUT": "0"}  # fmt: skip
    if "HOME" in os.environ:
        env["HOME"] = os.environ["HOME"]
    for item in plain:
        name, _, value = item.partition("=")
        env[name] = value
    for item in credentials:
        name, _, reference = item.partition("=")
        where, _, path = reference.partition(":")
        if not name or where != "file" or not path:
            sys.exit(f"--credential {name or item!r}: give NAME=file:/path (the value is never an argument)")
        with open(path, encoding="utf-8") as f:
            env[name] = f.read().rstrip("\n")
    for path in documents:
        with open(path, encoding="utf-8") as f:
            try:
                env.update(parse_env(f.read()))
            except ValueError as e:
                sys.exit(f"--credentials-file {path}: {e}")
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="opsconductor-terraform", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("backup", "apply", "restore"))
    for name in ("--bin", "--chdir", "--lock"):
        parser.add_argument(name, required=True)
    parser.add_argument("--state-out")
    parser.add_argument("--plan")
    parser.add_argument("--state-in")
    parser.add_argument("--env", action="append", default=[])
    parser.add_argument("--credential", action="append", default=[])
    parser.add_argument("--credentials-file", action="append", default=[])
    args = parser.parse_args(argv)
    env = _environment(args.env, args.credential, args.credentials_file)
    base = [args.bin, f"-chdir={args.chdir}"]
    fd = _lock(args.lock)
    try:
        if args.command == "backup":
            if not args.state_out:
                parser.error("backup needs --state-out")
            pulled = subprocess.run([*base, "state", "pull"], env=env, capture_output=True, check=False)
            if pulled.returncode != 0 or not pulled.stdout.strip():
                sys.stderr.write(pulled.stderr.decode(errors="replace")[-2000:])
                sys.exit(f"terraform state pull exited with {pulled.returncode}: no backup, nothing applied")
            partial = f"{args.state_out}.partial"
            with open(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
                f.write(pulled.stdout)
                f.flush()
                os.fsync(f.fileno())
            os.replace(partial, args.state_out)
            print(f"state backed up to {args.state_out} ({len(pulled.stdout)} bytes)")
            return 0
        if args.command == "apply":
            if not args.plan:
                parser.error("apply needs --plan")
            argv_ = [*base, "apply", "-input=false", "-no-color", args.plan]
        else:
            if not args.state_in:
                parser.error("restore needs --state-in")
            argv_ = [*base, "state", "push", "-force", args.state_in]
        return subprocess.run(argv_, env=env, check=False).returncode
    finally:
        os.close(fd)


if __name__ == "__main__":
    sys.exit(main())

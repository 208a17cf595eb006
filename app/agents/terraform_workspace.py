"""A Terraform workspace as the agent's configuration gives it: checked, and its references resolved.

An integration of type ``terraform``::

    {"type": "terraform", "name": "prod", "path": "/srv/infra/prod",
     "variables": {"region": "eu-west-1", "db_password": {"file": "/etc/oc/db_password"}},
     "env": {"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": {"env": "PROD_AWS_KEY_ID"},
             "AWS_SECRET_ACCESS_KEY": {"file": "/etc/oc/aws"}},
     "credentials": {"file": "/run/secrets/prod-aws.env"},
     "risk": {"aws_s3_bucket": "critical"}, "init": false, "timeout_seconds": 600}

``variables`` become ``TF_VAR_<name>`` and ``env`` the child's environment; each value is plain or a
reference (``{"env": ...}``, ``{"file": ...}``, ``"{{ secret.NAME }}"``), and the registry refuses a
plain value under a secret-looking name. ``credentials`` is one reference to ``NAME=value`` lines
(a provider's variables kept together), added to the child's environment. References are resolved only into the child's environment,
right before it starts: never stored, logged, or put in an event or a step.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import InvalidInput
from .base import RISK_LEVELS
from .terraform_step import parse_env

#: Seconds a ``plan`` (or ``init``) may take, unless the workspace says ``timeout_seconds``.
DEFAULT_TIMEOUT_S = 600
MAX_TIMEOUT_S = 6 * 3600
KEYS = frozenset({"type", "name", "path", "variables", "env", "credentials", "risk", "init", "timeout_seconds"})
#: A workspace's name is part of its resources' names (``tf:<name>:<address>``).
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_SECRET = re.compile(r"\s*{{\s*secret(?:\.(\w+)|\[\s*'([^']+)'\s*\])\s*}}\s*")
#: Environment variables the child inherits from ours (nothing else: no database URL, no keys).
INHERITED = ("PATH", "HOME", "LANG", "TMPDIR", "TF_PLUGIN_CACHE_DIR", "TF_CLI_CONFIG_FILE", "HTTPS_PROXY",
             "HTTP_PROXY", "NO_PROXY", "https_proxy", "http_proxy", "no_proxy", "SSL_CERT_FILE")  # fmt: skip


class TerraformError(Exception):
    """A workspace could not be planned (shown, trimmed, in the agent's status)."""


def check(integration: Mapping[str, Any], where: str) -> None:
    """Raise :class:`InvalidInput` naming the field when a ``terraform`` integration is not valid."""
    extra = sorted(set(integration) - KEYS)
    if extra:
        raise InvalidInput(f"unknown key {extra[0]!r} (known: {', '.join(sorted(KEYS))})", field=f"{where}.{extra[0]}")
    path = integration.get("path")
    if not isinstance(path, str) or not os.path.isabs(path):
        raise InvalidInput("path is the workspace's absolute directory", field=f"{where}.path")
    name = integration.get("name", Path(path).name)
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise InvalidInput("name is 1 to 63 letters, digits, _ . and -", field=f"{where}.name")
    for key in ("variables", "env", "risk"):
        value = integration.get(key, {})
        if not isinstance(value, dict):
            raise InvalidInput(f"{key} is an object", field=f"{where}.{key}")
        for item in value if key != "risk" else ():
            if not IDENTIFIER.fullmatch(str(item)):
                raise InvalidInput("a name of letters, digits and _", field=f"{where}.{key}.{item}")
    for name, value in integration.get("env", {}).items():
        if not (
            isinstance(value, str) or (isinstance(value, dict) and len(value) == 1 and set(value) <= {"env", "file"})
        ):
            raise InvalidInput('an env value is text or a reference ({"env": ...} or {"file": ...})',
                               field=f"{where}.env.{name}")  # fmt: skip
    if "credentials" in integration and is_plain(integration["credentials"]):
        raise InvalidInput('credentials is a reference: {"env": ...}, {"file": ...} or "{{ secret.NAME }}"',
                           field=f"{where}.credentials")  # fmt: skip
    for pattern, level in integration.get("risk", {}).items():
        if level not in RISK_LEVELS:
            raise InvalidInput(f"a risk is one of {', '.join(RISK_LEVELS)}", field=f"{where}.risk.{pattern}")
    if not isinstance(integration.get("init", False), bool):
        raise InvalidInput(
            "init is true or false (absent: when the workspace has no .terraform)", field=f"{where}.init"
        )
    timeout = integration.get("timeout_seconds", DEFAULT_TIMEOUT_S)
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or not 1 <= timeout <= MAX_TIMEOUT_S:
        raise InvalidInput(f"timeout_seconds is a number from 1 to {MAX_TIMEOUT_S}", field=f"{where}.timeout_seconds")


@dataclass(frozen=True)
class Workspace:
    """A ``terraform`` integration, checked."""

    name: str
    path: Path
    variables: Mapping[str, Any] = field(default_factory=dict)
    #: Environment variables of the child: plain values, or references.
    env: Mapping[str, Any] = field(default_factory=dict)
    #: A reference to ``NAME=value`` lines for the child's environment.
    credentials: Any = None
    #: ``{"type pattern": "risk"}``, tried before the built-in table.
    risk: Mapping[str, str] = field(default_factory=dict)
    #: Run ``init`` each time (True), never (False), or when there is no ``.terraform`` (None).
    init: bool | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S

    @property
    def plan_dir(self) -> Path:
        """Where its plan files, state backups, lock and last status are kept (``0700``)."""
        return self.path / ".opsconductor"

    @classmethod
    def of(cls, integration: Mapping[str, Any]) -> Workspace:
        """Raises TerraformError: the integration is not valid (one stored before it was checked)."""
        try:
            check(integration, "integration")
        except InvalidInput as e:
            raise TerraformError(f"{e.field}: {e.message}") from None
        path = Path(integration["path"])
        return cls(name=integration.get("name", path.name), path=path, variables=dict(integration.get("variables", {})),
                   env=dict(integration.get("env", {})), credentials=integration.get("credentials"), risk=dict(integration.get("risk", {})),
                   init=integration.get("init"),
                   timeout_s=float(integration.get("timeout_seconds", DEFAULT_TIMEOUT_S)))  # fmt: skip


def _secret(name: str, what: str, settings: Settings) -> str:
    from .. import secrets  # the store is only read when a workspace names a secret
    from ..db import in_transaction
    from ..errors import ActionNotAllowed

    try:
        return in_transaction(lambda: secrets.reveal([name], keys=settings.secret_keys))[name]
    except ActionNotAllowed as e:
        raise TerraformError(f"{what}: {e}") from None


def resolve(value: Any, *, what: str, settings: Settings) -> str:
    """A reference's value (or a plain value as text). Raises TerraformError naming ``what``, never the value."""
    if isinstance(value, dict) and set(value) == {"env"}:
        if value["env"] not in os.environ:
            raise TerraformError(f"{what} refers to environment variable {value['env']}, which is not set")
        return os.environ[value["env"]]
    if isinstance(value, dict) and set(value) == {"file"}:
        try:
            return Path(value["file"]).read_text(encoding="utf-8").rstrip("\n")
        except OSError as e:
            raise TerraformError(
                f"{what} refers to file {value['file']}, which cannot be read ({e.strerror})"
            ) from None
    match = _SECRET.fullmatch(value) if isinstance(value, str) else None
    if match:
        return _secret(match.group(1) or match.group(2), what, settings)
    return value if isinstance(value, str) else json.dumps(value)


def environment(ws: Workspace, settings: Settings) -> dict[str, str]:
    """The child's environment: a few of ours, the workspace's variables and ``env`` resolved."""
    env = {k: os.environ[k] for k in INHERITED if k in os.environ}
    env.update(TF_IN_AUTOMATION="1", TF_INPUT="0")
    for name, value in ws.variables.items():
        env[f"TF_VAR_{name}"] = resolve(value, what=f"variables.{name}", settings=settings)
    for name, value in ws.env.items():
        env[str(name)] = resolve(value, what=f"env.{name}", settings=settings)
    if ws.credentials is not None:
        try:
            env.update(parse_env(resolve(ws.credentials, what="credentials", settings=settings)))
        except ValueError as e:
            raise TerraformError(f"credentials: {e}") from None
    return env


def is_file_reference(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"file"}


def is_plain(value: Any) -> bool:
    """A value given as is (not a reference)."""
    return not isinstance(value, dict) and not (isinstance(value, str) and _SECRET.fullmatch(value))

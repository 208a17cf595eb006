"""The agent registry: each agent's configuration (the design's ``AgentConfig``), validated, stored, audited.

A configuration as ``POST /api/v1/agents/config`` receives it (only ``name`` is required to change
an agent; a new one also needs ``type``)::

    {"name": "k8s-prod", "type": "kubernetes", "enabled": true, "automation_level": "semi-auto",
     "thresholds": {"cpu_target": 0.7}, "approval_required": false, "interval_seconds": 300,
     "integrations": [{"type": "kubernetes", "name": "prod", "kubeconfig": {"file": "/etc/oc/kubeconfig"}}]}

Credentials are never stored in plain text: a secret-looking key of an integration (``token``,
``password``, ``credentials`` ...) holds a reference, ``{"env": "NAME"}``, ``{"file": "/path"}`` or
``"{{ secret.NAME }}"``. ``routes`` (matchers on event fields) send it a run for each storm of
events they take in (:mod:`app.agents.routing`). Unknown keys are refused. The functions that read
or write run inside a transaction; each change is audited (``agent.configured``, ``agent.started``,
``agent.stopped``).
"""

from __future__ import annotations

import importlib
import math
import re
from datetime import datetime
from typing import Any

from .. import audit
from ..actions.http import SECRET_NAME
from ..crud import Table
from ..errors import Conflict, InvalidInput
from ..models import AgentConfig
from ..present import iso
from .base import INTEGRATION_CHECKS, KINDS, RUNNABLE_KINDS, AgentSettings
from .routing import parse_routes

#: The design's ``automationLevel``s (see :data:`app.decisions.policy.AUTOMATION_LEVELS`).
AUTOMATION_LEVELS = ("manual", "semi-auto", "full-auto")
CONFIG_KEYS = frozenset({"name", "type", "enabled", "automation_level", "thresholds", "approval_required",
                         "integrations", "interval_seconds", "routes"})  # fmt: skip
#: Keys a GET answers with that a client may send back unchanged (they are ignored).
READ_ONLY_KEYS = frozenset({"id", "created_at", "updated_at", "updated_by", "state", "stopped_at", "stopped_by"})
NAME = re.compile(r"[a-z][a-z0-9_-]{0,62}")
MIN_INTERVAL_S, MAX_INTERVAL_S = 10, 86_400
MAX_INTEGRATIONS = 50
#: The agents every installation has, disabled until configured: one per kind, named after it.
DEFAULTS = tuple((kind, kind) for kind in KINDS)
_SECRET_REFERENCE = re.compile(r"\s*{{\s*secret(\.\w+|\[\s*'[^']+'\s*\])\s*}}\s*")


def _reference(value: Any, field: str) -> None:
    """A secret-looking value must only point at where the secret is."""
    if isinstance(value, str) and _SECRET_REFERENCE.fullmatch(value):
        return
    if isinstance(value, dict) and len(value) == 1:
        ((where, name),) = value.items()
        if where in ("env", "file") and isinstance(name, str) and name.strip():
            return
    raise InvalidInput('a credential is given by reference only: {"env": "NAME"}, {"file": "/path"} or '
                       '"{{ secret.NAME }}", never its value', field=field)  # fmt: skip


def _integration(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput("an integration is an object with a type", field=where)
    if not isinstance(value.get("type"), str) or not value["type"].strip():
        raise InvalidInput("an integration names its type", field=f"{where}.type")

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, item in node.items():
                if SECRET_NAME.search(str(key)):
                    _reference(item, f"{path}.{key}")
                else:
                    walk(item, f"{path}.{key}")
        elif isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, f"{path}[{i}]")

    walk(value, where)
    check = INTEGRATION_CHECKS.get(value["type"])
    if check is not None:  # the kind's own rules (its module is imported only when such an integration comes)
        module, _, name = check.partition(":")
        getattr(importlib.import_module(module), name)(value, where)
    return dict(value)


def _thresholds(value: Any) -> dict[str, float]:
    if not isinstance(value, dict):
        raise InvalidInput("thresholds maps names to numbers", field="thresholds")
    for key, number in value.items():
        if not isinstance(number, int | float) or isinstance(number, bool) or not math.isfinite(number):
            raise InvalidInput("a threshold is a finite number", field=f"thresholds.{key}")
    return dict(value)


def _flag(body: dict[str, Any], key: str) -> bool | None:
    if key not in body:
        return None
    if not isinstance(body[key], bool):
        raise InvalidInput(f"{key} is true or false", field=key)
    return bool(body[key])


def _interval(interval: Any) -> int:
    if not isinstance(interval, int) or isinstance(interval, bool) or not MIN_INTERVAL_S <= interval <= MAX_INTERVAL_S:
        raise InvalidInput(f"interval_seconds is a whole number from {MIN_INTERVAL_S} to {MAX_INTERVAL_S}",
                           field="interval_seconds")  # fmt: skip
    return interval


def parse_config(body: Any) -> dict[str, Any]:
    """Validate a configuration as the API receives it.

    Returns:
      The ``AgentConfig`` columns given (``name`` always; the others only when sent).

    Raises:
      InvalidInput: naming the offending field; unknown keys are refused.
    """
    if not isinstance(body, dict):
        raise InvalidInput("an agent configuration is a JSON object", field="body")
    extra = sorted(set(body) - CONFIG_KEYS - READ_ONLY_KEYS)
    if extra:
        raise InvalidInput(f"unknown key {extra[0]!r} (known: {', '.join(sorted(CONFIG_KEYS))})",
                           field=extra[0] or "body")  # fmt: skip
    name = body.get("name")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise InvalidInput("name is 1 to 63 lower-case letters, digits, - and _, starting with a letter", field="name")
    columns: dict[str, Any] = {"name": name}
    if "type" in body:
        if body["type"] not in KINDS:
            raise InvalidInput(f"type is one of {', '.join(KINDS)}", field="type")
        columns["kind"] = body["type"]
    if "automation_level" in body:
        if body["automation_level"] not in AUTOMATION_LEVELS:
            raise InvalidInput(f"automation_level is one of {', '.join(AUTOMATION_LEVELS)}", field="automation_level")
        columns["automation_level"] = body["automation_level"]
    for key in ("enabled", "approval_required"):
        flag = _flag(body, key)
        if flag is not None:
            columns[key] = flag
    if "thresholds" in body:
        columns["thresholds"] = _thresholds(body["thresholds"])
    if "integrations" in body:
        items = body["integrations"]
        if not isinstance(items, list) or len(items) > MAX_INTEGRATIONS:
            raise InvalidInput(f"integrations is a list of at most {MAX_INTEGRATIONS} objects", field="integrations")
        columns["integrations"] = [_integration(item, f"integrations[{i}]") for i, item in enumerate(items)]
    if "interval_seconds" in body:
        columns["interval_s"] = _interval(body["interval_seconds"])
    if "routes" in body:
        columns["routes"] = parse_routes(body["routes"])
    return columns


def state_of(row: AgentConfig) -> str:
    """``disabled`` (not enabled), ``stopped`` (by an operator) or ``started``."""
    if not row.enabled:
        return "disabled"
    return "stopped" if row.stopped_at is not None else "started"


def config_json(row: AgentConfig) -> dict[str, Any]:
    """An agent's configuration as the API shows it (the design's ``AgentConfig``, in snake case)."""
    return {
        "id": row.id,
        "name": row.name,
        "type": row.kind,
        "enabled": row.enabled,
        "automation_level": row.automation_level,
        "thresholds": row.thresholds or {},
        "approval_required": row.approval_required,
        "integrations": row.integrations or [],
        "interval_seconds": row.interval_s,
        "routes": row.routes or [],
        "queue": f"agent_{row.kind}" if row.kind in RUNNABLE_KINDS else None,
        "state": state_of(row),
        "stopped_at": iso(row.stopped_at),
        "stopped_by": row.stopped_by,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        "updated_by": row.updated_by,
    }


def settings_of(row: AgentConfig) -> AgentSettings:
    return AgentSettings(name=row.name, kind=row.kind, automation_level=row.automation_level,
                         approval_required=row.approval_required, thresholds=dict(row.thresholds or {}),
                         integrations=tuple(row.integrations or ()))  # fmt: skip


def ensure_defaults() -> None:
    """Create the agent of each kind that has none yet (disabled, manual, approval required)."""
    for name, kind in DEFAULTS:
        AgentConfig.insert(name=name, kind=kind).on_conflict_ignore().execute()


def listing() -> list[dict[str, Any]]:
    ensure_defaults()
    return [config_json(r) for r in AgentConfig.select().order_by(AgentConfig.kind, AgentConfig.name)]


#: Agents as the API reads them: by name.
TABLE = Table(AgentConfig, noun="agent", subject="agent", key="name")


def get(name: str) -> AgentConfig:
    """Raises:
    NotFound: there is no agent ``name``.
    """
    return TABLE.get(name)


def configure(columns: dict[str, Any], *, actor: str, now: datetime) -> tuple[dict[str, Any], bool]:
    """Create an agent or change the fields given of one (``columns`` from :func:`parse_config`).

    Returns:
      The configuration as it is now, and whether the agent was created.

    Raises:
      InvalidInput: a new agent without ``type`` (``field="type"``).
      Conflict: the ``type`` of an existing agent differs (an agent does not change kind).
    """
    ensure_defaults()
    row = AgentConfig.get_or_none(AgentConfig.name == columns["name"])
    created = row is None
    before = config_json(row) if row is not None else None
    if row is None:
        if "kind" not in columns:
            raise InvalidInput("a new agent needs its type", field="type")
        row = AgentConfig.create(**columns, created_at=now, updated_at=now, updated_by=actor, expected_since=now)
    else:
        if columns.get("kind", row.kind) != row.kind:
            raise Conflict(f"agent {row.name!r} is a {row.kind} agent; create another one for {columns['kind']}")
        if columns.get("enabled") and not row.enabled:
            row.expected_since = now  # its processes have three beats from now before it counts as down
        for key, value in columns.items():
            setattr(row, key, value)
        row.updated_at, row.updated_by = now, actor
        row.save()
    after = config_json(row)
    audit.record(audit.Action.AGENT_CONFIGURED, actor=actor, subject=TABLE.subject_of(row.name),
                 details={"before": before, "after": after})  # fmt: skip
    return after, created


def set_running(name: str, *, running: bool, actor: str, now: datetime) -> dict[str, Any]:
    """Start or stop an agent: a stopped one is not scheduled and its queue's messages wait (audited).

    Raises:
      NotFound: no such agent. Conflict: starting an agent that is not enabled.
    """
    ensure_defaults()
    row = get(name)
    if running and not row.enabled:
        raise Conflict(f"agent {name!r} is disabled: enable it with POST /api/v1/agents/config first")
    if running and row.stopped_at is not None:
        row.stopped_at, row.stopped_by, row.expected_since, row.down_since = None, None, now, None
    elif not running and row.stopped_at is None:
        row.stopped_at, row.stopped_by = now, actor
    row.updated_at, row.updated_by = now, actor
    row.save()
    audit.record(audit.Action.AGENT_STARTED if running else audit.Action.AGENT_STOPPED, actor=actor,
                 subject=TABLE.subject_of(row.name), details={"state": state_of(row)})  # fmt: skip
    return config_json(row)

"""Notification policies: validation (pure) and storage (inside a transaction), each write audited.

A policy as the API receives it::

    {"name": "database on-call", "enabled": true,
     "matchers": {"triggers": ["escalation"], "severities": ["critical", "high"],
                  "services": ["postgres"], "tags": ["prod"]},
     "channels": [{"type": "pagerduty", "routing_key": "{{ secret.PD_DB }}"},
                  {"type": "slack", "url": "https://hooks.slack.com/services/{{ secret.SLACK_PATH }}"}],
     "repeat_interval_minutes": 60,
     "quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Europe/Paris", "severities": ["critical"]}}

Every matcher list is optional; an empty or missing one matches everything. Unknown keys are refused
(a misspelt ``severites`` must not silently page for every severity).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .. import audit
from ..actions.notify import ADDRESS
from ..actions.render import check_url_template, secret_names
from ..crud import Table
from ..errors import Conflict, InvalidInput
from ..events.schema import SEVERITIES
from ..models import NotificationPolicy
from ..present import iso

#: What pages: an escalate decision, an approval request, a failed execution or rollback, an incident's status,
#: an agent whose processes stopped heartbeating.
TRIGGERS = ("escalation", "approval_requested", "execution_failed", "rollback_failed", "incident_status", "agent_down")
CHANNEL_TYPES = ("email", "slack", "teams", "pagerduty", "webhook")
#: PagerDuty's Events API v2 endpoint (a channel's ``url`` overrides it: EU service region, tests).
PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
MATCHER_KEYS = ("triggers", "severities", "services", "tags")
#: The keys each channel type accepts besides ``type``; the first listed ones are required.
CHANNEL_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "email": ((), ("to",)),
    "slack": (("url",), ()),
    "teams": (("url",), ()),
    "webhook": (("url",), ("headers",)),
    "pagerduty": (("routing_key",), ("url",)),
}
POLICY_KEYS = frozenset({"name", "enabled", "matchers", "channels", "repeat_interval_minutes", "quiet_hours"})
QUIET_KEYS = frozenset({"start", "end", "timezone", "severities"})
_HHMM = re.compile(r"([01]\d|2[0-3]):[0-5]\d")
MAX_NAME_CHARS = 200
MAX_CHANNELS = 20


def _strings(value: Any, field: str, *, allowed: tuple[str, ...] | None = None) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise InvalidInput(f"{field} is a list of names", field=field)
    if allowed is not None:
        for v in value:
            if v not in allowed:
                raise InvalidInput(f"{v[:100]!r} is not one of {', '.join(allowed)}", field=field)
    return [v.strip() for v in value]


def _unknown(body: dict[str, Any], known: frozenset[str] | set[str], where: str) -> None:
    extra = sorted(set(body) - set(known))
    if extra:
        field = f"{where}.{extra[0]}" if where else extra[0]
        raise InvalidInput(f"unknown key {extra[0]!r} (known: {', '.join(sorted(known))})", field=field)


def _secrets_named(value: Any, field: str) -> None:
    try:
        secret_names(value, where=field)
    except InvalidInput as e:
        raise InvalidInput(e.message, field=e.field or field) from None


def parse_channel(channel: Any, where: str) -> dict[str, Any]:
    """One channel's configuration, checked.

    Raises:
      InvalidInput: naming the field (``channels[1].url``, ``channels[0].routing_key`` ...).
    """
    if not isinstance(channel, dict):
        raise InvalidInput("a channel is an object with a type", field=where)
    kind = channel.get("type")
    if kind not in CHANNEL_TYPES:
        raise InvalidInput(f"type is one of {', '.join(CHANNEL_TYPES)}", field=f"{where}.type")
    required, optional = CHANNEL_KEYS[kind]
    _unknown(channel, {"type", *required, *optional}, where)
    for key in required:
        if not isinstance(channel.get(key), str) or not channel[key].strip():
            raise InvalidInput(f"a {kind} channel needs {key}", field=f"{where}.{key}")
    if "url" in channel:
        if not isinstance(channel["url"], str):
            raise InvalidInput("url is an http:// or https:// URL", field=f"{where}.url")
        check_url_template(channel["url"], where=f"{where}.url")
    if kind == "email":
        to = _strings(channel.get("to"), f"{where}.to")
        for address in to:
            if not ADDRESS.fullmatch(address):
                raise InvalidInput(f"{address[:200]!r} is not an email address", field=f"{where}.to")
    headers = channel.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        raise InvalidInput("headers map names to strings", field=f"{where}.headers")
    _secrets_named(channel, where)
    return dict(channel)


def _quiet_hours(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidInput("quiet_hours is an object {start, end, timezone, severities}", field="quiet_hours")
    _unknown(value, QUIET_KEYS, "quiet_hours")
    for key in ("start", "end"):
        if not isinstance(value.get(key), str) or not _HHMM.fullmatch(value[key]):
            raise InvalidInput(f"quiet_hours.{key} is a time HH:MM", field=f"quiet_hours.{key}")
    if value["start"] == value["end"]:
        raise InvalidInput("quiet_hours.end differs from its start", field="quiet_hours.end")
    zone = value.get("timezone", "UTC")
    try:
        ZoneInfo(zone) if isinstance(zone, str) else None
    except (ZoneInfoNotFoundError, ValueError):
        zone = None
    if not isinstance(zone, str):
        raise InvalidInput("quiet_hours.timezone is an IANA name such as Europe/Paris", field="quiet_hours.timezone")
    severities = _strings(value.get("severities"), "quiet_hours.severities", allowed=SEVERITIES)
    return {"start": value["start"], "end": value["end"], "timezone": zone, "severities": severities}


def parse_policy(body: Any) -> dict[str, Any]:
    """Validate a policy as the API receives it (see the module's docstring).

    Returns:
      The ``NotificationPolicy`` columns.

    Raises:
      InvalidInput: naming the offending field; unknown keys are refused.
    """
    if not isinstance(body, dict):
        raise InvalidInput("a notification policy is a JSON object", field="body")
    _unknown(body, POLICY_KEYS, "")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME_CHARS:
        raise InvalidInput(f"name is required (at most {MAX_NAME_CHARS} characters)", field="name")
    enabled = body.get("enabled", True)
    if not isinstance(enabled, bool):
        raise InvalidInput("enabled is true or false", field="enabled")
    matchers = body.get("matchers") or {}
    if not isinstance(matchers, dict):
        raise InvalidInput(f"matchers is an object with {', '.join(MATCHER_KEYS)}", field="matchers")
    _unknown(matchers, frozenset(MATCHER_KEYS), "matchers")
    allowed = {"triggers": TRIGGERS, "severities": SEVERITIES}
    parsed = {k: _strings(matchers.get(k), f"matchers.{k}", allowed=allowed.get(k)) for k in MATCHER_KEYS}
    channels = body.get("channels")
    if not isinstance(channels, list) or not channels or len(channels) > MAX_CHANNELS:
        raise InvalidInput(f"channels is a list of 1 to {MAX_CHANNELS} channels", field="channels")
    repeat = body.get("repeat_interval_minutes", 60)
    if not isinstance(repeat, int) or isinstance(repeat, bool) or not 0 <= repeat <= 7 * 24 * 60:
        raise InvalidInput("repeat_interval_minutes is a whole number from 0 to 10080", field="repeat_interval_minutes")
    return {
        "name": name.strip(),
        "enabled": enabled,
        "matchers": parsed,
        "channels": [parse_channel(c, f"channels[{i}]") for i, c in enumerate(channels)],
        "repeat_interval_minutes": repeat,
        "quiet_hours": _quiet_hours(body.get("quiet_hours")),
    }


def policy_json(row: NotificationPolicy) -> dict[str, Any]:
    """A policy as the API shows it (channels as configured: secrets appear by name only)."""
    return {
        "id": row.id,
        "name": row.name,
        "enabled": row.enabled,
        "matchers": row.matchers,
        "channels": row.channels,
        "repeat_interval_minutes": row.repeat_interval_minutes,
        "quiet_hours": row.quiet_hours,
        "created_by": row.created_by,
        "created_at": iso(row.created_at),
        "updated_by": row.updated_by,
        "updated_at": iso(row.updated_at),
    }


def listing() -> list[dict[str, Any]]:
    return [policy_json(r) for r in NotificationPolicy.select().order_by(NotificationPolicy.id)]


#: Policies as the API, the CLI and the console read and write them.
TABLE = Table(NotificationPolicy, noun="notification policy", subject="notification_policy", show=policy_json)


def get(policy_id: int) -> NotificationPolicy:
    """Raises:
    NotFound: there is no policy ``policy_id``.
    """
    return TABLE.get(policy_id)


def _name_free(name: str, policy_id: int | None = None) -> None:
    query = NotificationPolicy.select().where(NotificationPolicy.name == name)
    if policy_id is not None:
        query = query.where(NotificationPolicy.id != policy_id)
    if query.exists():
        raise Conflict(f"a notification policy is already named {name!r}")


def create(columns: dict[str, Any], *, actor: str) -> dict[str, Any]:
    """Store a policy parsed by :func:`parse_policy` (call inside a transaction).

    Raises:
      Conflict: another policy has that name.
    """
    _name_free(columns["name"])
    return TABLE.create({**columns, "created_by": actor, "updated_by": actor}, actor=actor,
                        action=audit.Action.NOTIFICATION_POLICY_CREATED)  # fmt: skip


def replace(policy_id: int, columns: dict[str, Any], *, actor: str) -> dict[str, Any]:
    """Replace every field of a policy (call inside a transaction).

    Raises:
      NotFound: no such policy. Conflict: another policy has that name.
    """
    return TABLE.update(policy_id, {**columns, "updated_by": actor, "updated_at": datetime.now(UTC)}, actor=actor,
                        action=audit.Action.NOTIFICATION_POLICY_UPDATED,
                        check=lambda _row: _name_free(columns["name"], policy_id))  # fmt: skip


def delete(policy_id: int, *, actor: str) -> None:
    """Delete a policy; its notifications stay (call inside a transaction).

    Raises:
      NotFound: there is no policy ``policy_id``.
    """
    TABLE.delete(policy_id, actor=actor, action=audit.Action.NOTIFICATION_POLICY_DELETED)

"""Maintenance windows: periods in which remediation is blocked for the hosts, services or tags in scope.

A window is one-off (``starts_at`` … ``ends_at``) or recurring (a ``schedule`` in the trigger
rules' format: days, start, end, time zone; it may cross midnight). Its scope lists hosts
(exact, case-insensitive, or a prefix ending in ``*`` such as ``web-*``), services and tags;
a window with an empty scope covers everything.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from ..errors import InvalidRule
from ..models import MaintenanceWindow
from ..rules.triggers import Schedule

SCOPE_KEYS = ("hosts", "services", "tags")


def _time(value: Any, field: str) -> datetime:
    if not isinstance(value, str):
        raise InvalidRule("an ISO-8601 timestamp is expected", field=field)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRule(f"not an ISO-8601 timestamp: {value!r}", field=field) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_window(body: Any) -> dict[str, Any]:
    """Validate an API body; return the model's columns.

    Raises:
      InvalidRule: naming the offending field.
    """
    if not isinstance(body, dict):
        raise InvalidRule("a maintenance window is a JSON object", field="body")
    if not isinstance(body.get("name"), str) or not body["name"].strip():
        raise InvalidRule("name is required", field="name")
    scope = body.get("scope") or {}
    if not isinstance(scope, dict) or set(scope) - set(SCOPE_KEYS):
        raise InvalidRule(f"scope is an object with {', '.join(SCOPE_KEYS)}", field="scope")
    for key in SCOPE_KEYS:
        items = scope.get(key, [])
        if not isinstance(items, list) or not all(isinstance(i, str) and i for i in items):
            raise InvalidRule(f"scope.{key} is a list of names", field=f"scope.{key}")
    starts = _time(body["starts_at"], "starts_at") if body.get("starts_at") is not None else None
    ends = _time(body["ends_at"], "ends_at") if body.get("ends_at") is not None else None
    schedule = body.get("schedule")
    if schedule is None and (starts is None or ends is None):
        raise InvalidRule("give starts_at and ends_at, or a recurring schedule", field="starts_at")
    if (starts is None) != (ends is None):
        raise InvalidRule("starts_at and ends_at go together", field="ends_at" if ends is None else "starts_at")
    if starts is not None and ends is not None and ends <= starts:
        raise InvalidRule("ends_at is after starts_at", field="ends_at")
    Schedule.parse(schedule)  # raises InvalidRule naming schedule.*
    if "active" in body and not isinstance(body["active"], bool):
        raise InvalidRule("active is true or false", field="active")
    return {
        "name": body["name"].strip(),
        "description": body.get("description"),
        "scope": {key: list(scope.get(key, [])) for key in SCOPE_KEYS},
        "starts_at": starts,
        "ends_at": ends,
        "schedule": schedule,
        "active": body.get("active", True),
    }


def _host_matches(patterns: list[str], host: str | None) -> bool:
    if not host:
        return False
    host = host.lower()
    return any(host.startswith(p[:-1].lower()) if p.endswith("*") else host == p.lower() for p in patterns)


def window_covers(
    window: MaintenanceWindow, *, at: datetime, host: str | None, service: str | None, tags: Iterable[str]
) -> bool:
    """Whether ``window`` covers this moment and target (pure: no database)."""
    if not window.active:
        return False
    if window.starts_at is not None and window.ends_at is not None and not window.starts_at <= at < window.ends_at:
        return False
    schedule = Schedule.parse(window.schedule)
    if schedule is not None and not schedule.active_at(at):
        return False
    scope = window.scope or {}
    hosts, services, scoped_tags = scope.get("hosts") or [], scope.get("services") or [], scope.get("tags") or []
    if not (hosts or services or scoped_tags):
        return True
    return (
        _host_matches(hosts, host)
        or (service is not None and service.lower() in {s.lower() for s in services})
        or bool(set(scoped_tags) & set(tags))
    )


def covering_window(
    *, at: datetime, host: str | None, service: str | None, tags: Iterable[str]
) -> MaintenanceWindow | None:
    """An active window covering the target at ``at``, if any."""
    tags = list(tags)
    for window in MaintenanceWindow.select().where(MaintenanceWindow.active == True):  # noqa: E712
        if window_covers(window, at=at, host=host, service=service, tags=tags):
            return window
    return None

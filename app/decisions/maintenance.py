"""Maintenance windows: periods in which remediation is blocked for the hosts, services or tags in scope.

A window is one-off (``starts_at`` … ``ends_at``), recurring (a ``schedule`` in the trigger
rules' format: days, start, end, time zone; it may cross midnight), or both (the schedule's
hours within the period). Its scope lists hosts (exact or a prefix ending in ``*`` such as
``web-*``), services and tags, all compared case-insensitively; a window with an empty scope
covers everything.

Everything here but :func:`covering_window` is pure: a unit test calls it without a database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from ..errors import InvalidRule
from ..models import MaintenanceWindow
from ..rules.triggers import Schedule

#: The keys of a window's ``scope``, each a list of names.
SCOPE_KEYS = ("hosts", "services", "tags")
#: ``MaintenanceWindow.name`` is a ``varchar(200)``.
MAX_NAME_CHARS = 200


def _time(value: Any, field: str) -> datetime:
    if not isinstance(value, str):
        raise InvalidRule("an ISO-8601 timestamp is expected", field=field)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRule(f"not an ISO-8601 timestamp: {value!r}", field=field) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _scope(body: dict[str, Any]) -> dict[str, list[str]]:
    scope = body.get("scope") or {}
    if not isinstance(scope, dict) or set(scope) - set(SCOPE_KEYS):
        raise InvalidRule(f"scope is an object with {', '.join(SCOPE_KEYS)}", field="scope")
    for key in SCOPE_KEYS:
        items = scope.get(key) or []
        if not isinstance(items, list) or not all(isinstance(i, str) and i.strip() for i in items):
            raise InvalidRule(f"scope.{key} is a list of names", field=f"scope.{key}")
    return {key: [i.strip() for i in scope.get(key) or []] for key in SCOPE_KEYS}


def _period(body: dict[str, Any]) -> tuple[datetime | None, datetime | None]:
    starts = _time(body["starts_at"], "starts_at") if body.get("starts_at") is not None else None
    ends = _time(body["ends_at"], "ends_at") if body.get("ends_at") is not None else None
    if starts is not None and ends is None:
        raise InvalidRule("ends_at goes with starts_at", field="ends_at")
    if ends is not None and starts is None:
        raise InvalidRule("starts_at goes with ends_at", field="starts_at")
    if starts is not None and ends is not None and ends <= starts:
        raise InvalidRule("ends_at is after starts_at", field="ends_at")
    return starts, ends


def _schedule(body: dict[str, Any]) -> dict[str, Any] | None:
    schedule = body.get("schedule")
    # Schedule.parse hands a non-string time zone straight to ZoneInfo, which raises TypeError.
    if isinstance(schedule, dict) and not isinstance(schedule.get("timezone", "UTC"), str):
        raise InvalidRule("schedule.timezone is an IANA name such as Europe/Paris", field="schedule.timezone")
    Schedule.parse(schedule)  # raises InvalidRule naming schedule.*
    return schedule


def parse_window(body: Any) -> dict[str, Any]:
    """Validate a maintenance window as the API receives it.

    Timestamps are ISO-8601; one without an offset is taken as UTC.

    Parameters:
      body: ``{name, description?, scope?: {hosts, services, tags}, starts_at?, ends_at?,
        schedule?: {days, start, end, timezone}, active?, suppress_notifications?}``; ``starts_at`` and ``ends_at``,
        ``schedule``, or both, are required.

    Returns:
      The ``MaintenanceWindow`` columns (``scope`` with all three keys, timestamps aware UTC).

    Raises:
      InvalidRule: naming the offending field (``name``, ``scope.hosts``, ``ends_at``, ``schedule.days`` …).
    """
    if not isinstance(body, dict):
        raise InvalidRule("a maintenance window is a JSON object", field="body")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME_CHARS:
        raise InvalidRule(f"name is required (at most {MAX_NAME_CHARS} characters)", field="name")
    description = body.get("description")
    if description is not None and not isinstance(description, str):
        raise InvalidRule("description is a string", field="description")
    scope = _scope(body)
    starts, ends = _period(body)
    schedule = _schedule(body)
    if schedule is None and starts is None:
        raise InvalidRule("give starts_at and ends_at, or a recurring schedule", field="starts_at")
    active = body.get("active", True)
    if not isinstance(active, bool):
        raise InvalidRule("active is true or false", field="active")
    suppress = body.get("suppress_notifications", False)
    if not isinstance(suppress, bool):
        raise InvalidRule("suppress_notifications is true or false", field="suppress_notifications")
    return {
        "name": name.strip(),
        "description": description,
        "scope": scope,
        "starts_at": starts,
        "ends_at": ends,
        "schedule": schedule,
        "active": active,
        "suppress_notifications": suppress,
    }


def in_force(window: MaintenanceWindow, at: datetime) -> bool:
    """Whether ``window`` is active and in its period and schedule at ``at``, whatever its scope.

    Parameters:
      at: A time-zone-aware instant.
    """
    if not window.active:
        return False
    if window.starts_at is not None and window.ends_at is not None and not window.starts_at <= at < window.ends_at:
        return False
    schedule = Schedule.parse(window.schedule)
    return schedule is None or schedule.active_at(at)


def _host_matches(patterns: Iterable[str], host: str | None) -> bool:
    if not host:
        return False
    host = host.lower()
    return any(host.startswith(p[:-1].lower()) if p.endswith("*") else host == p.lower() for p in patterns)


def in_scope(scope: Mapping[str, Any] | None, *, host: str | None, service: str | None, tags: Iterable[str]) -> bool:
    """Whether a window's ``scope`` takes in this target, at any time.

    Hosts match exactly, or by prefix for a pattern ending in ``*`` (``web-*`` takes in ``web-01``);
    services exactly; tags when one is shared. All comparisons ignore case. An empty scope takes in
    every target.
    """
    scope = scope or {}
    hosts, services, scoped_tags = scope.get("hosts") or [], scope.get("services") or [], scope.get("tags") or []
    if not (hosts or services or scoped_tags):
        return True
    return (
        _host_matches(hosts, host)
        or (service is not None and service.lower() in {s.lower() for s in services})
        or bool({t.lower() for t in scoped_tags} & {t.lower() for t in tags})
    )


def window_covers(
    window: MaintenanceWindow, *, at: datetime, host: str | None, service: str | None, tags: Iterable[str]
) -> bool:
    """Whether ``window`` blocks remediation on this target at ``at`` (pure: no database).

    The window must be active, ``at`` inside its period and schedule, and the target in its scope:
    host exact or by ``*`` prefix (``web-*``), service, or a shared tag, ignoring case; an empty
    scope covers every target.

    Parameters:
      at: A time-zone-aware instant.
      host: The target's host, if known.
      service: The target's service, if known.
      tags: The target's tags.
    """
    return in_force(window, at) and in_scope(window.scope, host=host, service=service, tags=tags)


def covering_window(
    *, at: datetime, host: str | None, service: str | None, tags: Iterable[str]
) -> MaintenanceWindow | None:
    """The active window covering the target at ``at`` (the oldest, when several do), if any.

    Parameters:
      at: A time-zone-aware instant.
      host: The target's host, if known.
      service: The target's service, if known.
      tags: The target's tags.
    """
    tags = list(tags)
    # PERF: one-off windows that are over are never read; they pile up, recurring ones do not.
    not_over = MaintenanceWindow.ends_at.is_null() | (MaintenanceWindow.ends_at > at)
    active = MaintenanceWindow.active == True  # noqa: E712
    query = MaintenanceWindow.select().where(active, not_over).order_by(MaintenanceWindow.id)
    for window in query:
        if window_covers(window, at=at, host=host, service=service, tags=tags):
            return window
    return None

"""Silences kept in the database: create, replace, expire, read, list, and the set the evaluator matches.

Every write is audited in its own transaction (:func:`app.db.in_transaction`): the API, the CLI
and the console call these functions as they are. A silence is never deleted: expiring it ends it
now and keeps it, so ``GET /api/v1/events`` can still say which silence applied to an event.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import peewee

from .. import audit
from ..crud import Table
from ..db import in_transaction, uuid_in
from ..errors import Conflict, InvalidInput, NotFound
from ..models import Incident, ProcessedEvent, Silence
from ..models.ops import person_of
from ..paging import DEFAULT_LIMIT, check_page, page
from ..present import iso
from ..timeutil import now as utcnow
from .matching import SilenceSet, Window, arrival, compile_stored, escape, parse_matchers

logger = logging.getLogger(__name__)

#: The states a silence is in, by the clock: before its start, inside its period, after its end.
STATES = ("pending", "active", "expired")
#: The keys a silence's body may hold; the others of :func:`silence_json` are read-only (a PUT may send them back).
BODY_KEYS = ("matchers", "starts_at", "ends_at", "comment")
READ_ONLY_KEYS = ("id", "state", "created_by", "person", "created_at", "updated_at", "expired_at", "expired_by")
#: ``comment`` longer than this is refused.
MAX_COMMENT_CHARS = 2000
#: Longest silence from an incident, in minutes (a week): longer is a maintenance window's job.
MAX_INCIDENT_SILENCE_MINUTES = 7 * 24 * 60
#: Seconds a process keeps the silences it read before reading them again.
REFRESH_S = 2.0
#: How far back in arrival time the cached set answers: a batch holding older events (a backlog
#: after an outage) reads the silences of its own span instead.
LOOKBACK = timedelta(hours=6)


def state_of(row: Silence, at: datetime) -> str:
    """``pending``, ``active`` or ``expired`` at ``at``."""
    if at < row.starts_at:
        return "pending"
    return "active" if at < row.ends_at else "expired"


def silence_json(row: Silence, at: datetime | None = None) -> dict[str, Any]:
    """A silence as the API shows it; ``state`` is the one it is in at ``at`` (default now)."""
    return {
        "id": row.id,
        "matchers": row.matchers,
        "starts_at": iso(row.starts_at),
        "ends_at": iso(row.ends_at),
        "state": state_of(row, at or utcnow()),
        "comment": row.comment,
        "created_by": row.created_by,
        "person": row.person,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        "expired_at": iso(row.expired_at),
        "expired_by": row.expired_by,
    }


def _time(value: Any, field: str) -> datetime:
    """An ISO 8601 timestamp from a body (``Z`` accepted; without an offset: UTC)."""
    if not isinstance(value, str):
        raise InvalidInput(f"{field} is an ISO 8601 timestamp", field=field)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{field} must be an ISO 8601 timestamp, got {value!r}", field=field) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_silence(body: Any, *, now: datetime) -> dict[str, Any]:
    """Validate a silence as the API receives it.

    Parameters:
      body: ``{matchers, starts_at?, ends_at, comment}``; ``starts_at`` defaults to ``now``. The
        read-only fields a GET answers (:data:`READ_ONLY_KEYS`) may be sent back and are ignored.
      now: The current instant: ``ends_at`` must be after it.

    Returns:
      The ``Silence`` columns it sets (timestamps aware UTC, matchers normalized).

    Raises:
      InvalidInput: naming the field (``matchers[0].value``, ``ends_at``, ``comment``, an unknown key).
    """
    if not isinstance(body, dict):
        raise InvalidInput("a silence is a JSON object", field="body")
    unknown = sorted(set(body) - set(BODY_KEYS) - set(READ_ONLY_KEYS))
    if unknown:
        # An empty key cannot name the field: the body is named instead.
        raise InvalidInput(
            f"unknown key {unknown[0]!r}: a silence has {', '.join(BODY_KEYS)}", field=unknown[0] or "body"
        )
    matchers = parse_matchers(body.get("matchers"))
    comment = body.get("comment")
    if not isinstance(comment, str) or not comment.strip() or len(comment) > MAX_COMMENT_CHARS:
        raise InvalidInput(f"comment is required: why this is silenced (at most {MAX_COMMENT_CHARS} characters)",
                           field="comment")  # fmt: skip
    starts = _time(body["starts_at"], "starts_at") if body.get("starts_at") is not None else now
    if body.get("ends_at") is None:
        raise InvalidInput("ends_at is required: a silence ends", field="ends_at")
    ends = _time(body["ends_at"], "ends_at")
    if ends <= starts:
        raise InvalidInput("ends_at is after starts_at", field="ends_at")
    if ends <= now:
        raise InvalidInput("ends_at is in the past: a silence ends in the future", field="ends_at")
    return {"matchers": [m.as_json() for m in matchers], "starts_at": starts, "ends_at": ends,
            "comment": comment.strip()}  # fmt: skip


#: Silences as the API, the CLI and the console read and write them.
TABLE = Table(Silence, noun="silence", subject="silence", show=silence_json)


def get(silence_id: int) -> dict[str, Any]:
    """Silence ``silence_id`` as the API shows it.

    Raises:
      NotFound: there is none.
    """
    return in_transaction(lambda: silence_json(TABLE.get(silence_id)))


def create(body: dict[str, Any], *, actor: str) -> dict[str, Any]:
    """Store a new silence from an API body; return it as the API shows it.

    Raises:
      InvalidInput: the body is not a valid silence (see :func:`parse_silence`).
    """
    at = utcnow()
    columns = parse_silence(body, now=at)

    def work() -> dict[str, Any]:
        row = Silence.create(**columns, created_by=actor, person=person_of(actor), created_at=at, updated_at=at)
        shown = silence_json(row, at)
        audit.record(audit.Action.SILENCE_CREATED, actor=actor, subject=f"silence:{row.id}", details={"after": shown})
        return shown

    shown = in_transaction(work)
    logger.info("Silence %r created by %r until %s.", shown["id"], actor, shown["ends_at"])
    return shown


def update(silence_id: int, body: dict[str, Any], *, actor: str) -> dict[str, Any]:
    """Replace the matchers, period and comment of a pending or active silence.

    Events it already silenced keep pointing at it; the audit row keeps what it was.

    Raises:
      NotFound: there is no silence ``silence_id``.
      Conflict: it has expired (create a new one).
      InvalidInput: the body is not a valid silence.
    """
    at = utcnow()
    columns = parse_silence(body, now=at)

    def live(row: Silence) -> None:
        if state_of(row, at) == "expired":
            raise Conflict(f"silence {silence_id} has expired; create a new one")

    return in_transaction(
        lambda: TABLE.update(silence_id, {**columns, "updated_at": at}, actor=actor, action=audit.Action.SILENCE_UPDATED,
                             check=live, show=lambda row: silence_json(row, at))
    )  # fmt: skip


def expire(silence_id: int, *, actor: str) -> dict[str, Any]:
    """End silence ``silence_id`` now and keep it (a pending one ends before it began).

    Raises:
      NotFound: there is no silence ``silence_id``.
      Conflict: it has already expired.
    """
    at = utcnow()

    def work() -> dict[str, Any]:
        row = TABLE.get(silence_id)
        if state_of(row, at) == "expired":
            raise Conflict(f"silence {silence_id} has already expired (at {iso(row.ends_at)})")
        before = silence_json(row, at)
        starts = min(row.starts_at, at)
        Silence.update(starts_at=starts, ends_at=at, expired_at=at, expired_by=actor, updated_at=at).where(
            Silence.id == silence_id
        ).execute()
        after = silence_json(TABLE.get(silence_id), at)
        audit.record(audit.Action.SILENCE_EXPIRED, actor=actor, subject=f"silence:{silence_id}",
                     details={"before": before, "after": after})  # fmt: skip
        return after

    shown = in_transaction(work)
    logger.info("Silence %r expired by %r.", silence_id, actor)
    return shown


def list_silences(*, state: str | None = None, limit: int = DEFAULT_LIMIT, offset: int = 0) -> dict[str, Any]:
    """``{silences, total_count, has_more}``, newest first; ``state`` keeps those in that state now.

    Raises:
      InvalidInput: ``state`` is not one of :data:`STATES`, or the page is out of bounds.
    """
    if state is not None and state not in STATES:
        raise InvalidInput(f"state must be one of {', '.join(STATES)}, got {state!r}", field="state")
    check_page(limit, offset)
    at = utcnow()

    def work() -> dict[str, Any]:
        query = Silence.select()
        if state == "pending":
            query = query.where(Silence.starts_at > at)
        elif state == "active":
            query = query.where((Silence.starts_at <= at) & (Silence.ends_at > at))
        elif state == "expired":
            query = query.where(Silence.ends_at <= at)
        return page(query, key="silences", order=Silence.id.desc(), limit=limit, offset=offset,
                    show=lambda row: silence_json(row, at))  # fmt: skip

    return in_transaction(work)


def _one_of(name: str, values: list[str]) -> dict[str, Any]:
    if len(values) == 1:
        return {"name": name, "value": values[0], "is_regex": False, "is_equal": True}
    return {"name": name, "value": "|".join(escape(v) for v in values), "is_regex": True, "is_equal": True}


def silence_from_incident(
    incident_id: str, *, actor: str, duration_minutes: int = 120, comment: str | None = None
) -> dict[str, Any]:
    """Silence the events of an incident's hosts and services, from now for ``duration_minutes``.

    The matchers take in events of one of the incident's hosts *and* (when it has services) of
    one of its services: the narrowest silence that covers what was correlated. An event of
    those hosts with another service, or none, still fires; widen the silence with a PUT.

    Raises:
      NotFound: there is no incident ``incident_id``.
      InvalidInput: ``duration_minutes`` is not 1..:data:`MAX_INCIDENT_SILENCE_MINUTES`, or the
        incident has neither hosts nor services to match on.
    """
    if (
        isinstance(duration_minutes, bool)
        or not isinstance(duration_minutes, int)
        or not (1 <= duration_minutes <= MAX_INCIDENT_SILENCE_MINUTES)
    ):
        raise InvalidInput(f"duration_minutes is a whole number of minutes from 1 to {MAX_INCIDENT_SILENCE_MINUTES}",
                           field="duration_minutes")  # fmt: skip
    try:
        key = uuid.UUID(str(incident_id))
    except ValueError:
        raise NotFound(f"no incident {incident_id!r}") from None
    incident = in_transaction(lambda: Incident.get_or_none(Incident.id == key))
    if incident is None:
        raise NotFound(f"no incident {incident_id!r}")
    hosts = sorted({h for h in incident.hosts or [] if h})
    services = sorted({s for s in incident.services or [] if s})
    if not hosts and not services:
        raise InvalidInput(f"incident {incident_id} has no host or service to silence; write the matchers",
                           field="incident_id")  # fmt: skip
    matchers = ([_one_of("host", hosts)] if hosts else []) + ([_one_of("service", services)] if services else [])
    at = utcnow()
    body = {
        "matchers": matchers,
        "starts_at": iso(at),
        "ends_at": iso(at + timedelta(minutes=duration_minutes)),
        "comment": comment or f"Silenced from incident {incident_id}: {incident.title}"[:MAX_COMMENT_CHARS],
    }
    return create(body, actor=actor)


def load_set(since: datetime) -> SilenceSet:
    """The silences that may apply to an event arriving at or after ``since`` (call inside a transaction)."""
    rows = Silence.select(Silence.id, Silence.starts_at, Silence.ends_at, Silence.matchers).where(
        Silence.ends_at > since
    )
    windows = []
    for row in rows:
        try:
            windows.append(Window(row.id, row.starts_at, row.ends_at, tuple(compile_stored(row.matchers))))
        except Exception as e:  # noqa: BLE001 - one silence stored before a validation change must not stop the others
            logger.error("Silence %r cannot be compiled: %s", row.id, e)
    return SilenceSet(windows, since=since)


class SilenceCache:
    """The silences of this process, read again every :data:`REFRESH_S`.

    PERF: the evaluator matches every batch (hundreds of events) against the silences; reading
    them at most once per :data:`REFRESH_S` keeps that to one small query per batch at most. A new
    or expired silence applies to events evaluated from :data:`REFRESH_S` after the change, as a
    new trigger rule does.
    """

    def __init__(self) -> None:
        self._set: SilenceSet | None = None
        self._read = 0.0

    def covering(self, since: datetime) -> SilenceSet:
        """The silences that may apply to events arriving at or after ``since`` (reads the database)."""
        clock = time.monotonic()
        if self._set is None or clock - self._read >= REFRESH_S:
            self._set = in_transaction(lambda: load_set(utcnow() - LOOKBACK))
            self._read = clock
        if since >= self._set.since:
            return self._set
        # A backlog older than the cached span: its own read, not cached.
        return in_transaction(lambda: load_set(since))

    def recent(self) -> SilenceSet:
        """The silences that may apply to events of the last :data:`LOOKBACK` (reads the database when due)."""
        return self.covering(utcnow())

    def clear(self) -> None:
        """Forget what was read (the next call reads again)."""
        self._set = None


#: The silences of this process.
_cache = SilenceCache()


def silence_batch(events: list[dict[str, Any]], *, cache: SilenceCache | None = None) -> list[dict[str, Any]]:
    """The events of an evaluator's batch no silence applies to; each event records the silence that applied.

    A silence applies to an event whose latest occurrence arrived within its period (see
    :func:`~app.silences.matching.arrival`), whenever it is evaluated: a backlog does not change
    what is silenced, and a repeat of a silenced event that arrives after the silence ended fires
    as an alert that is still firing does when an Alertmanager silence expires. Call inside the
    batch's transaction.

    Parameters:
      events: The batch, as :func:`app.rules.evaluation.load_events` reads it (with ``silenced_by``).
      cache: Where the silences are read (default: this process's).

    Returns:
      The events to match rules against, in the batch's order.
    """
    if not events:
        return events
    times = {e["id"]: arrival(e) for e in events}
    found = (cache or _cache).covering(min(times.values()))
    kept, changed = [], {}
    for event in events:
        silence_id = found.match(event, times[event["id"]])
        if silence_id is None:
            kept.append(event)
        if silence_id != event.get("silenced_by"):
            changed[event["id"]] = silence_id
            event["silenced_by"] = silence_id  # the batch's rows say so too (the evaluator routes them to agents)
    if changed:
        # PERF: one statement for the batch, and only for the events whose silence changed.
        to_id = peewee.Case(ProcessedEvent.id, [(ProcessedEvent.id.db_value(k), v) for k, v in changed.items()])
        # (cast: a CASE of NULLs alone is text to PostgreSQL)
        where = uuid_in(ProcessedEvent.id, list(changed))
        ProcessedEvent.update(silence_id=peewee.Cast(to_id, "bigint")).where(where).execute()
    if len(kept) < len(events):
        logger.info("Silenced %d of %d events.", len(events) - len(kept), len(events))
    return kept


def active_silences(now: datetime) -> SilenceSet:
    """The silences that may apply to events arriving at or after ``now``, cached per process (:class:`SilenceCache`)."""
    return _cache.covering(now)

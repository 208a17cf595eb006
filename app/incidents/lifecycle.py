"""An incident's lifecycle: ``open`` (or ``flapping``) → ``acknowledged`` → ``resolved`` → ``closed``.

Who may move it where (:data:`TRANSITIONS`)::

    acknowledge: open, flapping          -> acknowledged
    resolve:     open, flapping, acknowledged -> resolved
    close:       resolved                -> closed
    reopen:      acknowledged, resolved, closed -> open

A resolution event still closes an open or acknowledged incident (the correlator does it).
Every status change goes through :func:`_change`, which writes the incident's activity row and
the audit row in the change's transaction. Each function here is one transaction that takes the
correlator's lock first (:func:`app.correlation.store.hold_lock`), so a correlator batch never
writes back an incident an operator changed meanwhile, and locks the incident's row.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

import peewee

from .. import audit
from ..correlation.query import incident_json
from ..correlation.regroup import move_into, split_off
from ..correlation.store import LIVE_STATUSES, hold_lock
from ..db import in_transaction, is_postgres
from ..errors import Conflict, InvalidInput, NotFound
from ..models import Incident, IncidentActivity
from ..models.ops import person_of
from ..notifications import follow
from ..present import iso
from ..timeutil import now as utc_now

logger = logging.getLogger(__name__)

#: verb -> (the statuses it moves from, the status it moves to, what the audit log calls it).
TRANSITIONS: dict[str, tuple[tuple[str, ...], str, audit.Action]] = {
    "acknowledge": (("open", "flapping"), "acknowledged", audit.Action.INCIDENT_ACKNOWLEDGED),
    "resolve": (("open", "flapping", "acknowledged"), "resolved", audit.Action.INCIDENT_RESOLVED),
    "close": (("resolved",), "closed", audit.Action.INCIDENT_CLOSED),
    "reopen": (("acknowledged", "resolved", "closed"), "open", audit.Action.INCIDENT_REOPENED),
}
#: The actor of the clock's resolutions.
AUTO_RESOLVER = "system:auto_resolve"
#: Longest note, comment or reason, in characters.
MAX_TEXT = 10_000
#: Longest assignee name (a person or a team), in characters.
MAX_NAME = 200
#: Incidents merged or events split in one request, at most.
MAX_IDS = 1000
#: Incidents one auto-resolve transaction resolves (a sweep runs as many as it needs).
AUTO_RESOLVE_BATCH = 200


def acknowledge(incident_id: str, *, actor: str, comment: str | None = None) -> dict[str, Any]:
    """Someone is working the incident.

    Raises:
      NotFound: no incident ``incident_id``.
      Conflict: it is not open or flapping.
      InvalidInput: ``comment`` is not a string of at most :data:`MAX_TEXT` characters.

    Returns:
      The incident (``incident_json``).
    """
    return _transition("acknowledge", incident_id, actor=actor, comment=comment)


def resolve(incident_id: str, *, actor: str, comment: str | None = None) -> dict[str, Any]:
    """The problem is fixed: the incident takes no new event (a new one opens a new incident).

    Raises and returns as :func:`acknowledge` (it must be open, flapping or acknowledged).
    """
    return _transition("resolve", incident_id, actor=actor, comment=comment)


def close(incident_id: str, *, actor: str, comment: str | None = None) -> dict[str, Any]:
    """Done with a resolved incident (its review, if any, is over).

    Raises and returns as :func:`acknowledge` (it must be resolved).
    """
    return _transition("close", incident_id, actor=actor, comment=comment)


def reopen(incident_id: str, *, actor: str, comment: str | None = None) -> dict[str, Any]:
    """Back to ``open``: nobody is on it after all, or the problem is back.

    Raises and returns as :func:`acknowledge` (it must be acknowledged, resolved or closed,
    and not merged into another).
    """
    return _transition("reopen", incident_id, actor=actor, comment=comment)


def assign(incident_id: str, *, assignee: str, actor: str, comment: str | None = None) -> dict[str, Any]:
    """Give the incident to a person or a team (any name; the last assignment holds).

    Raises:
      NotFound: no incident ``incident_id``.
      Conflict: it is closed.
      InvalidInput: ``assignee`` is blank or longer than :data:`MAX_NAME`, or ``comment`` is not text.

    Returns:
      The incident.
    """
    name = _text(assignee, field="assignee", limit=MAX_NAME)
    note = _optional_text(comment, field="comment")

    def work() -> dict[str, Any]:
        row = _locked(incident_id)
        if row.status == "closed":
            raise Conflict(f"incident {incident_id} is closed: reopen it before assigning it")
        before, row.assignee = row.assignee, name
        row.save()
        _record(row, "assignment", audit.Action.INCIDENT_ASSIGNED, actor=actor, text=note,
                details={"assignee": name, "previous": before})  # fmt: skip
        return incident_json(row)

    return in_transaction(work)


def add_note(incident_id: str, *, text: str, actor: str) -> dict[str, Any]:
    """Write a note on the incident's timeline (any status: post-mortems annotate closed ones too).

    Raises:
      NotFound: no incident ``incident_id``.
      InvalidInput: ``text`` is blank or longer than :data:`MAX_TEXT`.

    Returns:
      The note (:func:`note_json`).
    """
    body = _text(text, field="text", limit=MAX_TEXT)

    def work() -> dict[str, Any]:
        row = _locked(incident_id)
        return note_json(_record(row, "note", audit.Action.INCIDENT_NOTE_CREATED, actor=actor, text=body))

    return in_transaction(work)


def notes(incident_id: str) -> list[dict[str, Any]]:
    """The incident's notes, oldest first.

    Raises:
      NotFound: no incident ``incident_id``.
    """

    def work() -> list[dict[str, Any]]:
        key = _key(incident_id)
        if not Incident.select().where(Incident.id == key).exists():
            raise NotFound(f"no incident {incident_id!r}")
        rows = IncidentActivity.select().where(
            (IncidentActivity.incident_id == key) & (IncidentActivity.kind == "note")
        )
        return [note_json(r) for r in rows.order_by(IncidentActivity.at, IncidentActivity.id)]

    return in_transaction(work)


def note_json(row: IncidentActivity) -> dict[str, Any]:
    return {"id": row.id, "incident_id": str(row.incident_id), "at": iso(row.at), "author": row.person,
            "actor": row.actor, "text": row.text}  # fmt: skip


def merge(target_id: str, *, source_ids: list[str], actor: str, reason: str) -> dict[str, Any]:
    """Move every event of the ``source_ids`` incidents into ``target_id``; the sources are closed.

    Raises:
      InvalidInput: ``source_ids`` is not a non-empty list of incident ids other than the target's,
        or ``reason`` is blank.
      NotFound: the target or a source does not exist.
      Conflict: the target is closed, or an incident was already merged into another.

    Returns:
      The target incident, its counters recomputed.
    """
    why = _text(reason, field="reason", limit=MAX_TEXT)
    sources = _ids(source_ids, field="source_ids")
    if str(_key(target_id)) in sources:
        raise InvalidInput("an incident cannot be merged into itself", field="source_ids")

    def work() -> dict[str, Any]:
        rows = _locked_many([target_id, *sources])
        target, merged = rows[0], rows[1:]
        if target.status == "closed":
            raise Conflict(f"incident {target_id} is closed: reopen it before merging into it")
        for row in rows:
            if row.merged_into:
                raise Conflict(f"incident {row.id} was merged into {row.merged_into}")
        moved = move_into(target, merged)
        for row in merged:
            row.merged_into = target.id
            if row.status != "closed":
                _change(row, "closed", actor=actor, comment=why, action=audit.Action.INCIDENT_MERGED,
                        details={"merged_into": str(target.id)})  # fmt: skip
            else:
                row.save()
                _record(row, "merge", audit.Action.INCIDENT_MERGED, actor=actor, text=why,
                        details={"merged_into": str(target.id)})  # fmt: skip
        _record(target, "merge", audit.Action.INCIDENT_MERGED, actor=actor, text=why,
                details={"sources": [str(r.id) for r in merged], "events_moved": moved})  # fmt: skip
        logger.info("Merged incidents %r into %r (%d events).", [str(r.id) for r in merged], str(target.id), moved)
        return incident_json(target)

    return in_transaction(work)


def split(incident_id: str, *, event_ids: list[str], actor: str, reason: str) -> dict[str, Any]:
    """Move ``event_ids`` of the incident to a new open incident.

    Raises:
      InvalidInput: ``event_ids`` is not a non-empty list of the incident's event ids that leaves
        it at least one, or ``reason`` is blank.
      NotFound: no incident ``incident_id``.
      Conflict: the incident was merged into another.

    Returns:
      The new incident.
    """
    why = _text(reason, field="reason", limit=MAX_TEXT)
    moving = _ids(event_ids, field="event_ids")

    def work() -> dict[str, Any]:
        source = _locked(incident_id)
        if source.merged_into:
            raise Conflict(f"incident {incident_id} was merged into {source.merged_into}")
        row = split_off(source, moving)
        details = {"from": str(source.id), "to": str(row.id), "event_ids": moving}
        _record(source, "split", audit.Action.INCIDENT_SPLIT, actor=actor, text=why, details=details)
        _record(row, "split", audit.Action.INCIDENT_SPLIT, actor=actor, text=why, details=details)
        logger.info("Split %d events of incident %r into %r.", len(moving), str(source.id), str(row.id))
        return incident_json(row)

    return in_transaction(work)


def auto_resolve(*, idle_minutes: int, now: datetime | None = None) -> list[str]:
    """Resolve the incidents that took no event and no status change for ``idle_minutes``.

    Parameters:
      idle_minutes: Minutes without a new event (nor an operator's status change); 0 resolves none.
      now: The current instant (default: now).

    Returns:
      The ids of the incidents resolved, by :data:`AUTO_RESOLVER`.
    """
    if idle_minutes <= 0:
        return []
    cutoff = (now or utc_now()) - timedelta(minutes=idle_minutes)
    comment = f"no new event for {idle_minutes} minutes"
    idle = (
        Incident.status.in_(LIVE_STATUSES)
        & (Incident.last_event_at < cutoff)
        & (Incident.status_changed_at.is_null() | (Incident.status_changed_at < cutoff))
    )

    def batch() -> list[str]:
        hold_lock()  # then the rows read are the latest: no correlator batch is between read and write
        rows = list(_for_update(Incident.select().where(idle).order_by(Incident.id).limit(AUTO_RESOLVE_BATCH)))
        for row in rows:
            _change(row, "resolved", actor=AUTO_RESOLVER, comment=comment, action=audit.Action.INCIDENT_RESOLVED,
                    details={"idle_minutes": idle_minutes})  # fmt: skip
        return [str(r.id) for r in rows]

    resolved: list[str] = []
    while chunk := in_transaction(batch):
        resolved += chunk
        if len(chunk) < AUTO_RESOLVE_BATCH:
            break
    if resolved:
        logger.info("Resolved %d incidents idle for %d minutes.", len(resolved), idle_minutes)
    return resolved


def _transition(verb: str, incident_id: str, *, actor: str, comment: str | None) -> dict[str, Any]:
    sources, to, action = TRANSITIONS[verb]
    note = _optional_text(comment, field="comment")

    def work() -> dict[str, Any]:
        row = _locked(incident_id)
        if row.merged_into:
            raise Conflict(f"incident {incident_id} was merged into {row.merged_into}: work that one")
        if row.status not in sources:
            raise Conflict(f"incident {incident_id} is {row.status}: it cannot move from {row.status} to {to} "
                           f"({verb} needs {' or '.join(sources)})")  # fmt: skip
        _change(row, to, actor=actor, comment=note, action=action)
        return incident_json(row)

    return in_transaction(work)


def _change(row: Incident, to: str, *, actor: str, comment: str | None, action: audit.Action,
            details: dict[str, Any] | None = None) -> None:  # fmt: skip
    """The one way an incident's status changes: the row, its activity row and the audit row.

    Call inside the change's transaction, with the row locked.
    """
    at, person, before = utc_now(), person_of(actor), row.status
    row.status, row.status_changed_at = to, at
    if to == "acknowledged":
        row.acknowledged_at, row.acknowledged_by = at, person
    elif to == "resolved":
        row.resolved_at, row.resolved_by = at, person
    elif to == "closed":
        row.closed_at = row.closed_at or at
    elif to == "open":
        row.acknowledged_at = row.acknowledged_by = row.resolved_at = row.resolved_by = None
        row.closed_at = row.closed_by_event_id = None
    row.save()
    follow.incident_changed(row.id, to, actor=actor, now=at)  # PagerDuty acknowledge/resolve, incident_status policies
    _record(row, "status", action, actor=actor, text=comment, details={"from": before, "to": to, **(details or {})},
            from_status=before, to_status=to, person=person)  # fmt: skip


def _record(row: Incident, kind: str, action: audit.Action, *, actor: str, text: str | None = None,
            details: dict[str, Any] | None = None, from_status: str | None = None, to_status: str | None = None,
            person: str | None = None) -> IncidentActivity:  # fmt: skip
    """The incident's activity row and the audit row of one change."""
    entry = IncidentActivity.create(incident_id=row.id, kind=kind, actor=actor, person=person or person_of(actor),
                                    from_status=from_status, to_status=to_status, text=text, details=details)  # fmt: skip
    audit_details = {**(details or {}), **({"text": text} if text else {})}
    audit.record(action, actor=actor, subject=f"incident:{row.id}", details=audit_details or None)
    return entry


def _key(incident_id: Any) -> uuid.UUID:
    try:
        return uuid.UUID(str(incident_id))
    except ValueError:
        raise NotFound(f"no incident {incident_id!r}") from None


def _for_update(query: peewee.ModelSelect[Incident]) -> peewee.ModelSelect[Incident]:
    return query.for_update() if is_postgres() else query


def _locked(incident_id: str) -> Incident:
    """The incident's row, locked for the transaction (with the correlator's lock taken first)."""
    return _locked_many([incident_id])[0]


def _locked_many(incident_ids: list[str]) -> list[Incident]:
    """The incidents' rows in the order asked, locked (in id order, so two merges cannot deadlock)."""
    keys = [_key(i) for i in incident_ids]
    hold_lock()
    rows = {r.id: r for r in _for_update(Incident.select().where(Incident.id.in_(keys)).order_by(Incident.id))}
    for incident_id, key in zip(incident_ids, keys, strict=True):
        if key not in rows:
            raise NotFound(f"no incident {incident_id!r}")
    return [rows[k] for k in keys]


def _text(value: Any, *, field: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{field} must be a non-blank string", field=field)
    if len(value) > limit:
        raise InvalidInput(f"{field} is longer than {limit} characters", field=field)
    return value.strip()


def _optional_text(value: Any, *, field: str) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return _text(value, field=field, limit=MAX_TEXT)


def _ids(values: Any, *, field: str) -> list[str]:
    """A non-empty list of distinct UUIDs (as canonical strings), in the order given."""
    if not isinstance(values, list) or not values:
        raise InvalidInput(f"{field} must be a non-empty list of ids", field=field)
    if len(values) > MAX_IDS:
        raise InvalidInput(f"{field} holds more than {MAX_IDS} ids", field=field)
    ids: list[str] = []
    for k, value in enumerate(values):
        try:
            ids.append(str(uuid.UUID(value)))
        except (TypeError, ValueError, AttributeError):
            raise InvalidInput(f"{field}[{k}] is not an id: {value!r}", field=f"{field}[{k}]") from None
    return list(dict.fromkeys(ids))

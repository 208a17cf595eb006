"""Evaluating trigger rules against stored events: live (with limits settled in the database)
and as a replay over history (``/test`` and the estimated trigger rate), with no side effects.

Every limit is measured on event time (arrival at the edge): a backlog does not change what
fires, and a replay over history gives what the live evaluator gave.
"""

from __future__ import annotations

import logging
import time
from bisect import bisect_left, bisect_right, insort
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

import orjson
import peewee

from ..correlation.store import flapping_incidents
from ..db import TimestampField, database, in_transaction, is_postgres, uuid_in, wrap_db_errors
from ..events.query import event_json
from ..models import Incident, ProcessedEvent, RuleExecution, RuleMatch, TriggerRule
from ..present import iso
from ..silences.store import SilenceCache, active_silences, silence_batch
from . import limits
from .conditions import Batch, equality_constraint
from .triggers import TriggerSpec, parse_trigger, should_fire

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: Seconds between checks whether rules changed (each evaluator compiles them once per change).
REFRESH_S = 2.0
#: Events a replay looks at, at most.
REPLAY_LIMIT = 200_000


def body_of(row: TriggerRule) -> dict[str, Any]:
    """A rule as the API shows it (the spec's field names)."""
    return {
        "rule_id": row.id,
        "name": row.rule_name,
        "description": row.rule_description,
        "conditions": row.event_conditions,
        "time_window_minutes": row.time_window_minutes,
        "threshold_count": row.threshold_count,
        "max_triggers_per_hour": row.max_triggers_per_hour,
        "cooldown_minutes": row.cooldown_minutes,
        "active": row.active,
        "schedule": row.schedule,
        "response_template_id": row.response_template_id,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        "last_fired_at": iso(row.last_fired_at),
    }


def columns_of(spec: TriggerSpec) -> dict[str, Any]:
    return {
        "rule_name": spec.name,
        "rule_description": spec.description,
        "event_conditions": spec.conditions,
        "time_window_minutes": spec.time_window_minutes,
        "threshold_count": spec.threshold_count,
        "max_triggers_per_hour": spec.max_triggers_per_hour,
        "cooldown_minutes": spec.cooldown_minutes,
        "active": spec.active,
        "schedule": spec.schedule_spec,
        "response_template_id": spec.response_template_id,
    }


class RuleCache:
    """Active rules, compiled once per change (checked every :data:`REFRESH_S`), and the process's
    view of their limits (:class:`app.rules.limits.LimitsView`)."""

    def __init__(self) -> None:
        self.limits = limits.LimitsView()
        self._signature: tuple[Any, ...] | None = None
        self._rules: list[tuple[int, TriggerSpec]] = []
        self._constraints: dict[int, tuple[str, frozenset[Any]] | None] = {}
        self._checked = 0.0

    def constraint(self, rule_id: int) -> tuple[str, frozenset[Any]] | None:
        """The rule's index entry (see :func:`app.rules.conditions.equality_constraint`)."""
        return self._constraints.get(rule_id)

    def rules(self) -> list[tuple[int, TriggerSpec]]:
        now = time.monotonic()
        if now - self._checked < REFRESH_S and self._signature is not None:
            return self._rules
        self._checked = now

        def signature() -> tuple[Any, ...]:
            row = (
                TriggerRule.select(peewee.fn.COUNT(TriggerRule.id), peewee.fn.MAX(TriggerRule.updated_at))
                .tuples()
                .get()
            )
            return tuple(row)  # type: ignore[arg-type]

        sig = in_transaction(signature)
        if sig != self._signature:
            rows = in_transaction(lambda: list(TriggerRule.select().where(TriggerRule.active).order_by(TriggerRule.id)))
            compiled = []
            for row in rows:
                try:
                    compiled.append((row.id, parse_trigger(body_of(row))))
                except Exception as e:  # noqa: BLE001 - a rule stored before a validation change must not stop the others
                    logger.error("Trigger rule %r cannot be compiled: %s", row.id, e)
            self._rules, self._signature = compiled, sig
            self._constraints = {rule_id: equality_constraint(spec.conditions) for rule_id, spec in compiled}
            logger.info("Compiled %d active trigger rules.", len(compiled))
        return self._rules


@dataclass
class Firing:
    rule_id: int
    #: The firing's ``rules.rule_executions`` id: what the decider decides.
    rule_execution_id: int
    event_id: str


@dataclass
class _Known:
    """What the limits of the batch's rules need from the database, read once for all of them."""

    done: set[tuple[int, str]]
    fired: dict[int, list[datetime]]


def _known(rule_ids: list[int], event_ids: list[str], first: datetime, last: datetime) -> _Known:
    ids_match = uuid_in(RuleExecution.triggering_event_id, event_ids)
    rows: Any = (
        RuleExecution.select(RuleExecution.trigger_rule_id, RuleExecution.triggering_event_id)
        .where(RuleExecution.trigger_rule_id.in_(rule_ids) & ids_match)
        .tuples()
    )
    done = {(rule_id or 0, str(event_id)) for rule_id, event_id in rows}
    return _Known(done, limits.fired(rule_ids, first, last))


def _fire_rule(
    row: TriggerRule, spec: TriggerSpec, events: list[dict[str, Any]], known: _Known, times: dict[str, datetime]
) -> list[Firing]:
    """Fire ``row`` for those of its matching ``events`` its limits allow (its row is locked by the caller)."""
    rule_id = row.id
    fired = known.fired.get(rule_id, [])
    threshold = bool(spec.threshold_count and spec.time_window_minutes)
    if not threshold and limits.blocked(spec, row.last_fired_at, fired, [times[e["id"]] for e in events]):
        return []
    events = [e for e in events if (rule_id, e["id"]) not in known.done]  # redelivered: already decided
    if not events:
        return []
    ordered = sorted(((times[e["id"]], e) for e in events), key=lambda p: p[0])
    first, last = ordered[0][0], ordered[-1][0]
    matched: list[datetime] = []
    window = timedelta(minutes=spec.time_window_minutes or 0)
    if threshold:
        RuleMatch.insert_many(
            [{"rule_id": rule_id, "event_id": e["id"], "matched_at": at} for at, e in ordered]
        ).on_conflict_ignore().execute()
        query: Any = RuleMatch.select(RuleMatch.matched_at).where(
            (RuleMatch.rule_id == rule_id) & (RuleMatch.matched_at > first - window) & (RuleMatch.matched_at <= last)
        )
        matched = sorted(at for (at,) in query.tuples())  # PERF: tuples, not a model object per match
    cooldown = timedelta(minutes=spec.cooldown_minutes) if spec.cooldown_minutes else None
    last_fired = row.last_fired_at
    executions: list[dict[str, Any]] = []
    for at, event in ordered:
        # PERF: the two limits that stop most matches, checked before building should_fire's reasons;
        # should_fire refuses these cases too, so skipping them changes nothing.
        if cooldown is not None and last_fired is not None and at - last_fired < cooldown:
            continue
        near = bisect_left(fired, at + limits.HOUR) - bisect_right(fired, at - limits.HOUR)
        if near >= spec.max_triggers_per_hour:
            continue
        in_window = bisect_right(matched, at) - bisect_right(matched, at - window) if matched else 1
        ok, why = should_fire(spec, at=at, matches_in_window=in_window, last_fired_at=last_fired, fired_last_hour=near)
        if not ok:
            continue
        executions.append({"trigger_rule_id": rule_id, "response_template_id": spec.response_template_id,
                           "triggering_event_id": event["id"], "execution_status": "pending", "fired_at": at,
                           "execution_result": {"matches_in_window": in_window, "rule": spec.name}})  # fmt: skip
        insort(fired, at)
        last_fired = at if last_fired is None or at > last_fired else last_fired
    firings = [Firing(rule_id, execution_id, event_id) for execution_id, event_id in _record(executions)]
    if last_fired != row.last_fired_at:
        TriggerRule.update(last_fired_at=last_fired).where(TriggerRule.id == rule_id).execute()
    return firings


def _record(executions: list[dict[str, Any]]) -> list[tuple[int, str]]:
    """Store the rule's firings (``rules.rule_executions``, pending), in order; their ids with their events' ids.

    PERF: one INSERT for the rule's firings of the batch on PostgreSQL (a rule with loose limits fires for
    many events of a batch), not a statement each.
    """
    if not executions:
        return []
    if is_postgres():
        query: Any = RuleExecution.insert_many(executions).returning(
            RuleExecution.id, RuleExecution.triggering_event_id
        )
        ids = {str(event_id): execution_id for execution_id, event_id in query.tuples().execute()}
        return [(ids[e["triggering_event_id"]], e["triggering_event_id"]) for e in executions]
    return [(RuleExecution.create(**e).id, e["triggering_event_id"]) for e in executions]


def _fire_batch(
    matches: list[tuple[int, TriggerSpec, list[dict[str, Any]]]], times: dict[str, datetime]
) -> list[Firing]:
    """Fire the batch's matching rules, each as far as its limits allow, in one transaction.

    The rows of the rules are locked (``FOR UPDATE``, in id order so evaluators never deadlock):
    evaluator processes take turns on a rule; everything the limits need is read once for the
    batch and decided in memory, in event-time order.
    """
    rule_ids = sorted(rule_id for rule_id, _, _ in matches)
    query = TriggerRule.select().where(TriggerRule.id.in_(rule_ids)).order_by(TriggerRule.id)
    rows = {r.id: r for r in (query.for_update() if is_postgres() else query)}
    matched = {e["id"] for _, _, events in matches for e in events}
    first, last = min(times[i] for i in matched), max(times[i] for i in matched)
    known = _known(rule_ids, sorted(matched), first, last)
    firings: list[Firing] = []
    for rule_id, spec, events in matches:
        row = rows.get(rule_id)
        if row is not None and row.active:
            firings += _fire_rule(row, spec, events, known, times)
    return firings


#: The event's fields as the API (and so the condition language) names them.
_EVENT_COLUMNS: dict[str, Any] = {
    "id": ProcessedEvent.id, "source_type": ProcessedEvent.source_type, "source": ProcessedEvent.source,
    "event_type": ProcessedEvent.event_type, "severity": ProcessedEvent.severity, "host": ProcessedEvent.source_host,
    "service": ProcessedEvent.source_service, "title": ProcessedEvent.title, "description": ProcessedEvent.description,
    "occurred_at": ProcessedEvent.occurred_at, "received_at": ProcessedEvent.received_at,
    "processed_at": ProcessedEvent.processed_at, "last_seen_at": ProcessedEvent.last_seen_at,
    "occurrences": ProcessedEvent.occurrences, "fingerprint": ProcessedEvent.fingerprint,
    "correlation_id": ProcessedEvent.correlation_id, "metadata": ProcessedEvent.event_data, "tags": ProcessedEvent.tags,
    "silenced_by": ProcessedEvent.silence_id,
}  # fmt: skip
_TIMES = ("occurred_at", "received_at", "processed_at", "last_seen_at")
#: JSON columns, with what an event shows when they are empty.
_JSON: dict[str, Any] = {"metadata": dict, "tags": list}


def load_events(event_ids: list[str]) -> list[dict[str, Any]]:
    """The stored events as :func:`app.events.query.event_json` shows them, oldest first."""
    return in_transaction(partial(_read_events, event_ids))


#: PostgreSQL: an instant as :func:`app.present.iso` writes it, but for a fraction of ``.000000`` (cut in Python).
_ISO_SQL = """to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""
#: What :data:`_ISO_SQL` writes for a whole second, which ``iso`` leaves out.
_WHOLE_SECOND = ".000000Z"


def _events_sql(*, flapping: bool = False) -> str:
    """PostgreSQL: the batch's events as text where Python would convert (ids, JSON, instants), one array parameter.

    With ``flapping``: one more column, whether the event's incident is flapping (the same test as
    :func:`app.correlation.store.flapping_incidents`), so the batch is one statement.
    """
    columns = []
    for name, column in _EVENT_COLUMNS.items():
        quoted = f'e."{column.column_name}"'
        text = name in _JSON or name in ("id", "correlation_id")
        columns.append(_ISO_SQL.format(quoted) if name in _TIMES else quoted + ("::text" if text else ""))
    incidents = f'"{Incident._meta.schema}"."{Incident._meta.table_name}"'
    join = f" LEFT JOIN {incidents} i ON i.id = e.correlation_id AND i.status = 'flapping'" if flapping else ""
    return (
        f"SELECT {', '.join(columns)}{', i.id IS NOT NULL' if flapping else ''} FROM events.processed_events e{join}"
        " WHERE e.id = ANY(%s::uuid[]) ORDER BY e.received_at"
    )


#: Built on first use (the models' columns are known by then): without, then with the flapping column.
_EVENTS_SQL: dict[bool, str] = {}


def _read_events(event_ids: list[str]) -> list[dict[str, Any]]:
    return _read_rows(event_ids).events


@dataclass
class _Rows:
    """A batch's events as read, with each one's event time (``received_at``)."""

    events: list[dict[str, Any]]
    times: dict[str, datetime]
    #: The incidents of the batch that are flapping; None when not read with the events (SQLite).
    flapping: set[str] | None


def _read_rows(event_ids: list[str], *, flapping: bool = False) -> _Rows:
    # PERF: rows as the driver returns them, ids and JSON as text (orjson reads JSON): peewee's
    # per-value conversions, its query building and psycopg2's json module cost more than the query.
    postgres = is_postgres()
    if postgres:
        if flapping not in _EVENTS_SQL:
            _EVENTS_SQL[flapping] = _events_sql(flapping=flapping)
        rows = database.execute_sql(_EVENTS_SQL[flapping], (list(event_ids),)).fetchall()
    else:
        flapping = False
        columns = [c.cast("text") if k in _JSON else c for k, c in _EVENT_COLUMNS.items()]
        query = (
            ProcessedEvent.select(*columns)
            .where(uuid_in(ProcessedEvent.id, event_ids))
            .order_by(ProcessedEvent.received_at)
        )
        rows = database.execute(query).fetchall()
    uuid_value = ProcessedEvent.id.python_value
    names = tuple(_EVENT_COLUMNS)
    events, times, flapped = [], {}, set()
    for row in rows:
        event = dict(zip(names, row, strict=False))  # (the flapping column, if read, is left out)
        if flapping and row[-1]:
            flapped.add(event["correlation_id"])
        if postgres:
            # PERF: PostgreSQL wrote the instants as text (no datetime made, converted and written per value).
            for name in _TIMES:
                value = event[name]
                if value is not None and value.endswith(_WHOLE_SECOND):
                    event[name] = value[: -len(_WHOLE_SECOND)] + "Z"
            times[event["id"]] = datetime.fromisoformat(event["received_at"])
        else:
            event["id"] = str(uuid_value(event["id"]))
            event["correlation_id"] = str(uuid_value(event["correlation_id"])) if event["correlation_id"] else None
            for name in _TIMES:
                event[name] = _as_time(event[name])
            times[event["id"]] = event["received_at"]
            for name in _TIMES:
                event[name] = iso(event[name])
        for name, empty in _JSON.items():
            event[name] = orjson.loads(event[name]) if event[name] else empty()
        events.append(event)
    return _Rows(events, times, flapped if flapping else None)


def _as_time(value: Any) -> datetime | None:
    """An instant as aware UTC (SQLite's text, or an instant in another zone)."""
    if isinstance(value, str | int | float):
        return TimestampField().python_value(value)  # type: ignore[no-any-return]
    return value.astimezone(UTC) if value is not None else None


def _time(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["received_at"].replace("Z", "+00:00"))


Constraint = tuple[str, frozenset[Any]] | None


def match_batch(
    rules: list[tuple[int, TriggerSpec, Constraint]], events: list[dict[str, Any]]
) -> list[tuple[int, TriggerSpec, list[dict[str, Any]]]]:
    """Each rule with the events of the batch it matches, in batch order (rules matching none are left out).

    PERF: the batch is matched at once (:class:`app.rules.conditions.Batch`): each leaf of the
    rules' conditions is tested once per distinct value in the batch and shared between rules.
    A rule whose condition requires a field to hold one of a few values (its constraint) is not
    even tried when no event of the batch holds one of them.
    """
    batch = Batch(events)
    matches = []
    for rule_id, spec, constraint in rules:
        if constraint is not None and not batch.any_of(*constraint):
            continue
        mask = spec.matching(batch)
        if mask:
            matches.append((rule_id, spec, batch.select(mask)))
    return matches


@dataclass
class _Read:
    """What the evaluator reads for a batch before matching."""

    #: Every event of the batch, as read (``silenced_by`` as the silences decided): what routing matches.
    read: list[dict[str, Any]]
    #: The events rules are matched against (not silenced, not of a flapping incident).
    events: list[dict[str, Any]]
    times: dict[str, datetime]
    rules: list[tuple[int, TriggerSpec]]


def _read_batch(
    event_ids: list[str],
    rules: list[tuple[int, TriggerSpec]],
    silences: SilenceCache | None = None,
    view: limits.LimitsView | None = None,
) -> _Read:
    # PERF: PostgreSQL reads the events and whether their incidents are flapping in one statement.
    rows = _read_rows(event_ids, flapping=True)
    read = rows.events
    # A silenced event is stored and correlated, but fires no rule.
    events = silence_batch(read, cache=silences)
    # A flapping incident's events do not re-trigger rules until it settles.
    flapping = rows.flapping if rows.flapping is not None else flapping_incidents([e["correlation_id"] for e in events])
    if flapping:
        events = [e for e in events if e["correlation_id"] not in flapping]
    # PERF: each event's time is read once for the batch, not once per rule.
    times = {e["id"]: rows.times[e["id"]] for e in events}
    if events:
        rules = (view or limits.LimitsView()).unblocked(rules, min(times.values()), max(times.values()))
    return _Read(read, events, times, rules)


def _autocommit(fn: Callable[[], T]) -> T:
    """``fn`` with each statement its own transaction on PostgreSQL (in one transaction on SQLite).

    PERF: the batch's reads share nothing a snapshot would protect: the events and their incidents'
    state are one statement, the silences recorded one statement, and the limits' view may be
    older than the database (never too strict: :mod:`app.rules.limits`). No BEGIN and COMMIT round
    trips for a batch that fires nothing.
    """
    if not is_postgres():
        return in_transaction(fn)
    with wrap_db_errors():
        database.connect(reuse_if_open=True)
        return fn()


@dataclass
class Evaluated:
    """A batch's evaluation: what fired, and the events as read (for routing to agents, which reads none)."""

    firings: list[Firing]
    #: The batch's events as :func:`load_events` shows them (``silenced_by`` as decided for this batch);
    #: None when nothing was read (no rule and no silence).
    events: list[dict[str, Any]] | None


def evaluate(event_ids: list[str], *, cache: RuleCache, silences: SilenceCache | None = None) -> list[Firing]:
    """Evaluate every active rule against the stored events ``event_ids``; record and return the firings.

    Events a silence applies to fire nothing and record the silence (``silence_id``).

    Parameters:
      cache: The process's compiled rules.
      silences: The process's silences (default: the process-wide :func:`app.silences.active_silences`).
    """
    return evaluate_batch(event_ids, cache=cache, silences=silences).firings


def evaluate_batch(event_ids: list[str], *, cache: RuleCache, silences: SilenceCache | None = None) -> Evaluated:
    """:func:`evaluate`, with the batch's events as read (the evaluator hands them to :mod:`app.agents.routing`)."""
    if not event_ids:
        return Evaluated([], [])
    rules = cache.rules()
    # PERF: with no rule and no silence there is nothing to read.
    if not rules and not (silences.recent() if silences is not None else active_silences(datetime.now(UTC))):
        return Evaluated([], None)
    # PERF: the reads need no transaction (one statement for the batch), the firings one (one commit).
    batch = _autocommit(partial(_read_batch, event_ids, rules, silences, cache.limits))
    if not batch.events or not batch.rules:
        return Evaluated([], batch.read)
    matches = match_batch([(rule_id, spec, cache.constraint(rule_id)) for rule_id, spec in batch.rules], batch.events)
    if not matches:
        return Evaluated([], batch.read)
    firings = in_transaction(partial(_fire_batch, matches, batch.times))
    for firing in firings:
        cache.limits.note(firing.rule_id, batch.times[firing.event_id])
    return Evaluated(firings, batch.read)


def replay(spec: TriggerSpec, *, start: datetime, end: datetime) -> dict[str, Any]:
    """What ``spec`` would have fired over stored events in [start, end] — read only."""

    def load() -> list[dict[str, Any]]:
        rows = (
            ProcessedEvent.select()
            .where((ProcessedEvent.received_at >= start) & (ProcessedEvent.received_at <= end))
            .order_by(ProcessedEvent.received_at)
            .limit(REPLAY_LIMIT)
        )
        return [event_json(r) for r in rows]

    events = in_transaction(load)
    window = timedelta(minutes=spec.time_window_minutes or 0)
    matched: deque[datetime] = deque()
    fired: deque[datetime] = deque()
    last: datetime | None = None
    firings, matches = [], 0
    for event in events:
        if event["silenced_by"] is not None or not spec.matches(event):
            continue  # a silenced event fired nothing live
        matches += 1
        at = _time(event)
        matched.append(at)
        while matched and window and matched[0] <= at - window:
            matched.popleft()
        while fired and fired[0] <= at - timedelta(hours=1):
            fired.popleft()
        ok, _why = should_fire(
            spec, at=at, matches_in_window=len(matched), last_fired_at=last, fired_last_hour=len(fired)
        )
        if ok:
            fired.append(at)
            last = at
            firings.append(
                {
                    "event_id": event["id"],
                    "fired_at": event["received_at"],
                    "title": event["title"],
                    "host": event["host"],
                }
            )
    return {"events_examined": len(events), "truncated": len(events) == REPLAY_LIMIT, "matched": matches,
            "fired": len(firings), "firings": firings[:1000]}  # fmt: skip


def estimated_trigger_rate(spec: TriggerSpec, *, now: datetime) -> str:
    """Replay the last 7 days; say so when there is too little history to tell."""
    start = now - timedelta(days=7)
    result = replay(spec, start=start, end=now)

    def first() -> datetime | None:
        row = (
            ProcessedEvent.select(ProcessedEvent.received_at)
            .where(ProcessedEvent.received_at >= start)
            .order_by(ProcessedEvent.received_at)
            .first()
        )
        return row.received_at if row else None

    oldest = in_transaction(first)
    if oldest is None:
        return "unknown: no events stored in the last 7 days"
    span_days = max((now - oldest).total_seconds() / 86400, 1 / 24)
    per_day = result["fired"] / span_days
    note = "" if span_days >= 1 else f" (from only {span_days * 24:.1f} h of history)"
    if per_day >= 1:
        return f"about {per_day:.0f} per day{note}"
    return f"about {per_day * 7:.1f} per week{note}"

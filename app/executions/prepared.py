"""The runner's hot statements, their SQL built by peewee once and then only bound to new values.

PERF (issue #14): the executor is CPU-bound, and a third of a run's CPU went to peewee building
the same SQL text again for each of its ~20 statements. Here each statement's text is built once
per database kind (PostgreSQL and SQLite name tables differently), from the same peewee query it
replaces, and later calls bind their values converted by the fields as peewee would: what runs
is the statement peewee would have sent.

PERF (issue #14, at 1,000 firings/min on a busy machine): each round trip to PostgreSQL waits for
the server's and then this process's turn on a core, so the way to a first step is cut in round
trips too: the execution is locked and read with what its templates render against in one
statement (:func:`locked_with_context`), and writes whose results nobody reads go together in one
round trip (:class:`Writes`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar, cast

import peewee
from peewee import JOIN, fn

from ..correlation.query import incident_json
from ..db import database, is_postgres
from ..decisions.context import variables_of
from ..events.query import event_json
from ..models import Execution, ExecutionStep, Incident, ProcessedEvent, RuleExecution, TriggerRule

M = TypeVar("M", bound=peewee.Model)

_texts: dict[tuple[str, bool], str] = {}
#: Queries whose rows are joined models: their text and the query that turns a cursor's rows into models.
_joined: dict[tuple[str, bool], tuple[str, Any]] = {}
_exception_wrapper = peewee.__dict__["__exception_wrapper__"]


def _text(key: str, build: Callable[[], Any], params: Sequence[Any]) -> str:
    """The SQL of ``build()`` (a peewee query), built on first use; its parameters must be ``params``."""
    cache_key = (key, is_postgres())
    text = _texts.get(cache_key)
    if text is None:
        text, built = build().sql()
        if list(built) != list(params):  # a query whose text would depend on its values: a bug here
            raise AssertionError(f"prepared statement {key!r} binds {built!r}, not {list(params)!r}")
        _texts[cache_key] = text
    return text


def select(model: type[M], key: str, build: Callable[[], Any], params: Sequence[Any]) -> list[M]:
    """The rows of ``build()`` (a select of ``model``'s columns) whose values are ``params`` (db values)."""
    return list(model.raw(_text(key, build, params), *params))


def first(model: type[M], key: str, build: Callable[[], Any], params: Sequence[Any]) -> M | None:
    rows = select(model, key, build, params)
    return rows[0] if rows else None


def joined(key: str, build: Callable[[], Any], params: Sequence[Any]) -> list[Any]:
    """The rows of ``build()`` (a select of models joined, each joined row set as its join's ``attr``)."""
    cache_key = (key, is_postgres())
    cached = _joined.get(cache_key)
    if cached is None:
        query = build()
        text, built = query.sql()
        if list(built) != list(params):
            raise AssertionError(f"prepared statement {key!r} binds {built!r}, not {list(params)!r}")
        cached = _joined[cache_key] = (text, query)
    text, query = cached
    return list(query._get_cursor_wrapper(database.execute_sql(text, params)))


def _save_statement(row: peewee.Model) -> tuple[str, list[Any]]:
    model = type(row)
    meta = model._meta
    fields = [f for f in meta.sorted_fields if f is not meta.primary_key]
    pk = cast(peewee.Field, meta.primary_key)
    params = [f.db_value(getattr(row, f.name)) for f in fields] + [pk.db_value(row.get_id())]

    def build() -> Any:
        return model.update({f: getattr(row, f.name) for f in fields}).where(pk == row.get_id())

    return _text(f"save:{meta.table_name}", build, params), params


def save(row: peewee.Model) -> None:
    """``row.save()`` of a stored row: every column, by primary key."""
    database.execute_sql(*_save_statement(row))


def _insert_statement(model: type[peewee.Model], values: dict[str, Any]) -> tuple[str, list[Any]]:
    meta = model._meta
    for field in meta.sorted_fields:
        if field.name not in values and field is not meta.primary_key and field.default is not None:
            values[field.name] = field.default() if callable(field.default) else field.default
    fields = [f for f in meta.sorted_fields if f.name in values]
    params = [f.db_value(values[f.name]) for f in fields]
    key = "insert:" + meta.table_name + ":" + ",".join(f.name for f in fields)
    return _text(key, lambda: model.insert({f: values[f.name] for f in fields}), params), params


def insert(model: type[peewee.Model], **values: Any) -> None:
    """``model.create(**values)`` without reading back the row: the other columns take their defaults."""
    database.execute_sql(*_insert_statement(model, values))


class Writes:
    """Writes of one transaction whose results nobody reads, sent together at :meth:`flush`.

    On PostgreSQL the statements, bound by psycopg2 as it binds each one, go in one round trip
    (a failure fails the batch, and the transaction with it); on SQLite one by one. The caller
    flushes before anything in the transaction reads what they write, and before it commits.
    """

    def __init__(self) -> None:
        self.pending: list[tuple[str, list[Any]]] = []

    def save(self, row: peewee.Model) -> None:
        """:func:`save`, at the flush."""
        self.pending.append(_save_statement(row))

    def insert(self, model: type[peewee.Model], **values: Any) -> None:
        """:func:`insert`, at the flush."""
        self.pending.append(_insert_statement(model, values))

    def add(self, query: Any) -> None:
        """``query.execute()`` (a peewee write, its SQL built now), at the flush."""
        text, params = query.sql()
        self.pending.append((text, list(params)))

    def flush(self) -> None:
        pending, self.pending = self.pending, []
        if len(pending) <= 1 or not is_postgres():
            for text, params in pending:
                database.execute_sql(text, params)
            return
        with _exception_wrapper:
            cursor = database.cursor()
            # bound here, executed without parameters: a literal "%" in a bound value stays as it is
            cursor.execute(b";\n".join(cursor.mogrify(text, params) for text, params in pending))


def _by_id(model: type[M], value: Any) -> M | None:
    """``model.get_or_none(model.id == value)``."""
    pk = cast(peewee.Field, model._meta.primary_key)
    return first(model, f"by_id:{model._meta.table_name}", lambda: model.select().where(pk == value),
                 [pk.db_value(value)])  # fmt: skip


def locked_with_context(execution_id: Any) -> Execution | None:
    """The execution, its row locked (PostgreSQL) as :func:`app.executions.runner.locked` does, read in one
    statement with its event, incident, firing and rule (what :func:`render_context` and the learning
    read): its attributes ``ctx_event``, ``ctx_incident``, ``ctx_firing`` and ``ctx_rule``, None when absent."""

    def build() -> Any:
        incident_id = fn.COALESCE(Execution.incident_id, ProcessedEvent.correlation_id)
        query = (
            Execution.select(Execution, ProcessedEvent, Incident, RuleExecution.id, RuleExecution.trigger_rule_id,
                             TriggerRule.id, TriggerRule.rule_name)
            .join_from(Execution, ProcessedEvent, JOIN.LEFT_OUTER, on=ProcessedEvent.id == Execution.event_id,
                       attr="ctx_event")
            .join_from(Execution, Incident, JOIN.LEFT_OUTER, on=Incident.id == incident_id, attr="ctx_incident")
            .join_from(Execution, RuleExecution, JOIN.LEFT_OUTER, on=RuleExecution.id == Execution.rule_execution_id,
                       attr="ctx_firing")
            .join_from(RuleExecution, TriggerRule, JOIN.LEFT_OUTER, on=TriggerRule.id == RuleExecution.trigger_rule_id,
                       attr="ctx_rule")
            .where(Execution.id == execution_id)
        )  # fmt: skip
        return query.for_update(of=Execution) if is_postgres() else query

    rows = joined("locked_with_context", build, [Execution.id.db_value(execution_id)])
    if not rows:
        return None
    row = rows[0]
    row.ctx_rule = getattr(getattr(row, "ctx_firing", None), "ctx_rule", None)  # set on the firing, joined from it
    for attr in ("ctx_event", "ctx_incident", "ctx_firing", "ctx_rule"):
        joined_row = getattr(row, attr, None)
        if joined_row is None or joined_row.get_id() is None:  # the outer join found none
            setattr(row, attr, None)
    return row


def render_context(row: Execution, steps: Iterable[ExecutionStep]) -> dict[str, Any]:
    """:func:`app.decisions.context.render_context` of ``row`` and its ``steps``, both read already under its lock.

    No round trip (a row from :func:`locked_with_context`), or four, and no SQL built, on the way to
    a step. ``steps`` must be all the execution's steps: the runner's action steps are (no rollback
    step exists while it runs).
    """
    if hasattr(row, "ctx_event"):
        event, incident, rule_row = (getattr(row, a) for a in ("ctx_event", "ctx_incident", "ctx_rule"))
    else:
        event = _by_id(ProcessedEvent, row.event_id) if row.event_id else None
        incident_id = row.incident_id or (event.correlation_id if event else None)
        incident = _by_id(Incident, incident_id) if incident_id else None
        firing = _by_id(RuleExecution, row.rule_execution_id) if row.rule_execution_id else None
        rule_row = _by_id(TriggerRule, firing.trigger_rule_id) if firing else None
    rule = None
    if row.rule_execution_id and rule_row is not None:
        rule = {"id": rule_row.id, "name": rule_row.rule_name}
    variables = variables_of(row.definition, row.variables)
    return {
        **variables,
        "variables": variables,
        "event": event_json(event) if event else {},
        "incident": incident_json(incident) if incident else None,
        "rule": rule,
        "steps": {
            s.action_id: {"status": s.status, "result": s.result, "output": (s.result or {}).get("output")}
            for s in steps
        },
        "execution": {"id": str(row.id), "dry_run": row.dry_run, "decision_id": row.decision_id},
    }

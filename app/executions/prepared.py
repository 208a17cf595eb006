"""The runner's hot statements, their SQL built by peewee once and then only bound to new values.

PERF (issue #14): the executor is CPU-bound, and a third of a run's CPU went to peewee building
the same SQL text again for each of its ~20 statements. Here each statement's text is built once
per database kind (PostgreSQL and SQLite name tables differently), from the same peewee query it
replaces, and later calls bind their values converted by the fields as peewee would: what runs
is the statement peewee would have sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar, cast

import peewee

from ..correlation.query import incident_json
from ..db import database, is_postgres
from ..decisions.context import variables_of
from ..events.query import event_json
from ..models import Execution, ExecutionStep, Incident, ProcessedEvent, RuleExecution, TriggerRule

M = TypeVar("M", bound=peewee.Model)

_texts: dict[tuple[str, bool], str] = {}


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


def save(row: peewee.Model) -> None:
    """``row.save()`` of a stored row: every column, by primary key."""
    model = type(row)
    meta = model._meta
    fields = [f for f in meta.sorted_fields if f is not meta.primary_key]
    pk = cast(peewee.Field, meta.primary_key)
    params = [f.db_value(getattr(row, f.name)) for f in fields] + [pk.db_value(row.get_id())]

    def build() -> Any:
        return model.update({f: getattr(row, f.name) for f in fields}).where(pk == row.get_id())

    database.execute_sql(_text(f"save:{meta.table_name}", build, params), params)


def insert(model: type[peewee.Model], **values: Any) -> None:
    """``model.create(**values)`` without reading back the row: the other columns take their defaults."""
    meta = model._meta
    for field in meta.sorted_fields:
        if field.name not in values and field is not meta.primary_key and field.default is not None:
            values[field.name] = field.default() if callable(field.default) else field.default
    fields = [f for f in meta.sorted_fields if f.name in values]
    params = [f.db_value(values[f.name]) for f in fields]
    key = "insert:" + meta.table_name + ":" + ",".join(f.name for f in fields)
    database.execute_sql(_text(key, lambda: model.insert({f: values[f.name] for f in fields}), params), params)


def _by_id(model: type[M], value: Any) -> M | None:
    """``model.get_or_none(model.id == value)``."""
    pk = cast(peewee.Field, model._meta.primary_key)
    return first(model, f"by_id:{model._meta.table_name}", lambda: model.select().where(pk == value),
                 [pk.db_value(value)])  # fmt: skip


def render_context(row: Execution, steps: Iterable[ExecutionStep]) -> dict[str, Any]:
    """:func:`app.decisions.context.render_context` of ``row`` and its ``steps``, both read already under its lock.

    Two round trips fewer, and no SQL built, on the way to a step. ``steps`` must be all the
    execution's steps: the runner's action steps are (no rollback step exists while it runs).
    """
    event = _by_id(ProcessedEvent, row.event_id) if row.event_id else None
    incident_id = row.incident_id or (event.correlation_id if event else None)
    incident = _by_id(Incident, incident_id) if incident_id else None
    rule = None
    if row.rule_execution_id:
        firing = _by_id(RuleExecution, row.rule_execution_id)
        rule_row = _by_id(TriggerRule, firing.trigger_rule_id) if firing else None
        if rule_row is not None:
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

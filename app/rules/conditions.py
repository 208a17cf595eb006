"""The condition language of trigger rules, compiled once into a predicate over an event.

A condition is a JSON object. Each key is a field path (dots reach into
``metadata``: ``metadata.cpu_usage``) or a logical operator:

- ``{"event_type": "threshold_breach"}``: equality; a list means "any of":
  ``{"severity": ["critical", "high"]}``;
- ``{"metadata.cpu_usage": {"$gt": 90}}``: comparison operators ``$eq $ne $gt $gte
  $lt $lte $in $nin $regex $exists $contains`` (several in one object all apply);
- ``{"$and": [c1, c2]}``, ``{"$or": [c1, c2]}``, ``{"$not": c}``.

All keys of an object must hold. ``severity`` compares by rank with ``$gt``/``$gte``/``$lt``/
``$lte`` (``{"severity": {"$gte": "high"}}``). Validation names the offending path or operator.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ..errors import InvalidRule
from ..events.schema import SEVERITIES

Predicate = Callable[[dict[str, Any]], bool]

#: Fields of an event (as the API shows it) that a path may start with.
FIELDS = frozenset(
    {"id", "source_type", "source", "event_type", "severity", "host", "service", "title", "description", "occurred_at",
     "received_at", "metadata", "tags", "fingerprint", "occurrences", "correlation_id"}
)  # fmt: skip
OPERATORS = frozenset({"$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$regex", "$exists", "$contains"})
LOGICAL = frozenset({"$and", "$or", "$not"})
_MISSING = object()
_RANK = {s: len(SEVERITIES) - i for i, s in enumerate(SEVERITIES)}  # critical highest


def resolve(event: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = event
    for part in path:
        if isinstance(value, dict):
            value = value.get(part, _MISSING)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
        if value is _MISSING:
            return _MISSING
    return value


def getter(path: tuple[str, ...]) -> Callable[[dict[str, Any]], Any]:
    """A function reading ``path`` from an event (PERF: the common one- and two-part paths skip the loop)."""
    if len(path) == 1:
        (name,) = path
        return lambda e: e.get(name, _MISSING)
    if len(path) == 2 and not path[1].isdigit():
        outer, inner = path

        def two(e: dict[str, Any]) -> Any:
            value = e.get(outer, _MISSING)
            return value.get(inner, _MISSING) if isinstance(value, dict) else _MISSING

        return two
    return lambda e: resolve(e, path)


def all_of(checks: list[Predicate]) -> Predicate:
    """A predicate true when every check is (PERF: no generator for the usual one to three checks)."""
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        a, b = checks
        return lambda e: a(e) and b(e)
    if len(checks) == 3:
        a, b, c = checks
        return lambda e: a(e) and b(e) and c(e)
    return lambda e: all(check(e) for check in checks)


#: Fields whose equality constraints index rules (see :func:`equality_constraint`).
INDEXED_FIELDS = ("event_type", "severity", "source_type", "service", "host")


def equality_constraint(spec: Any) -> tuple[str, frozenset[Any]] | None:
    """A top-level field the condition requires to equal one of a few values, if there is one.

    Every event the condition accepts has that field's value among those values, so an evaluator
    need only try the rule on such events (an index; the full predicate still decides).
    """
    if not isinstance(spec, dict):
        return None
    for name in INDEXED_FIELDS:
        if name not in spec:
            continue
        value = spec[name]
        if isinstance(value, dict) and set(value) == {"$eq"}:
            value = value["$eq"]
        elif isinstance(value, dict) and set(value) == {"$in"} and isinstance(value["$in"], list):
            value = value["$in"]
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return name, frozenset([value])
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return name, frozenset(value)
    return None


def _comparable(a: Any, b: Any) -> bool:
    numbers = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return False
    return (isinstance(a, numbers) and isinstance(b, numbers)) or (isinstance(a, str) and isinstance(b, str))


def _compare(op: str, operand: Any, path: str, field: tuple[str, ...]) -> Predicate:
    ranked = field == ("severity",) and operand in _RANK
    key = _RANK.get if ranked else (lambda v: v)
    bound = key(operand) if ranked else operand
    if not ranked and not isinstance(operand, int | float | str) or isinstance(operand, bool):
        raise InvalidRule(f"{op} needs a number or a string", field=f"{path}.{op}")
    test: Callable[[Any, Any], bool] = {
        "$gt": lambda a, b: a > b, "$gte": lambda a, b: a >= b, "$lt": lambda a, b: a < b, "$lte": lambda a, b: a <= b,
    }[op]  # fmt: skip

    get = getter(field)

    def check(event: dict[str, Any]) -> bool:
        value = get(event)
        value = key(value) if ranked else value
        return value is not None and value is not _MISSING and _comparable(value, bound) and test(value, bound)

    return check


def _operator(op: str, operand: Any, path: str, field: tuple[str, ...]) -> Predicate:  # noqa: C901 - one branch per operator
    where = f"{path}.{op}"
    get = getter(field)
    if op in ("$gt", "$gte", "$lt", "$lte"):
        return _compare(op, operand, path, field)
    if op == "$eq":
        return lambda e: get(e) == operand
    if op == "$ne":
        return lambda e: get(e) != operand
    if op in ("$in", "$nin"):
        if not isinstance(operand, list):
            raise InvalidRule(f"{op} needs a list", field=where)
        members = list(operand)
        if op == "$in":
            return lambda e: get(e) in members
        return lambda e: get(e) not in members
    if op == "$regex":
        if not isinstance(operand, str):
            raise InvalidRule("$regex needs a string", field=where)
        try:
            pattern = re.compile(operand)
        except re.error as err:
            raise InvalidRule(f"$regex does not compile: {err}", field=where) from None
        return lambda e: isinstance(v := get(e), str) and pattern.search(v) is not None
    if op == "$exists":
        if not isinstance(operand, bool):
            raise InvalidRule("$exists needs true or false", field=where)
        return lambda e: (get(e) not in (_MISSING, None)) is operand
    if op == "$contains":

        def contains(event: dict[str, Any]) -> bool:
            value = get(event)
            if isinstance(value, list):
                return operand in value
            return isinstance(value, str) and isinstance(operand, str) and operand in value

        return contains
    raise InvalidRule(f"unknown operator {op}", field=where)


def _field(name: str, spec: Any, prefix: str) -> Predicate:
    parts = tuple(name.split("."))
    path = f"{prefix}.{name}"
    if parts[0] not in FIELDS or any(not p for p in parts):
        raise InvalidRule(f"unknown field path {name!r} (fields: {', '.join(sorted(FIELDS))})", field=path)
    if isinstance(spec, dict):
        if not spec:
            raise InvalidRule("an empty operator object", field=path)
        checks = []
        for op, operand in spec.items():
            if op not in OPERATORS:
                raise InvalidRule(f"unknown operator {op}", field=f"{path}.{op}")
            checks.append(_operator(op, operand, path, parts))
        return all_of(checks)
    get = getter(parts)
    if isinstance(spec, list):
        members = list(spec)
        return lambda e: get(e) in members
    return lambda e: get(e) == spec


def _negate(inner: Predicate) -> Predicate:
    return lambda e: not inner(e)


def compile_condition(spec: Any, *, path: str = "conditions") -> Predicate:
    """Validate and compile a condition object into a predicate.

    Raises:
      InvalidRule: with ``field`` naming the bad path or operator.
    """
    if not isinstance(spec, dict):
        raise InvalidRule("a condition is a JSON object", field=path)
    checks: list[Predicate] = []
    for key, value in spec.items():
        if key in ("$and", "$or"):
            if not isinstance(value, list) or not value:
                raise InvalidRule(f"{key} needs a non-empty list of conditions", field=f"{path}.{key}")
            parts = [compile_condition(c, path=f"{path}.{key}[{i}]") for i, c in enumerate(value)]
            checks.append(all_of(parts) if key == "$and" else (lambda ps: lambda e: any(p(e) for p in ps))(parts))
        elif key == "$not":
            checks.append(_negate(compile_condition(value, path=f"{path}.$not")))
        elif key.startswith("$"):
            raise InvalidRule(f"unknown operator {key}", field=f"{path}.{key}")
        else:
            checks.append(_field(key, value, path))
    if not checks:
        return lambda e: True
    return all_of(checks)

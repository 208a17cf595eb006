"""The condition language of trigger rules, compiled once into a predicate over an event.

A condition is a JSON object. Each key is a field path (dots reach into
``metadata``: ``metadata.cpu_usage``) or a logical operator:

- ``{"event_type": "threshold_breach"}``: equality; a list means "any of":
  ``{"severity": ["critical", "high"]}``;
- ``{"metadata.cpu_usage": {"$gt": 90}}``: comparison operators ``$eq $ne $gt $gte
  $lt $lte $in $nin $regex $exists $contains`` (several in one object all apply);
- ``{"$and": [c1, c2]}``, ``{"$or": [c1, c2]}``, ``{"$not": c}``.

All keys of an object must hold. ``severity`` compares by rank with ``$gt``/``$gte``/``$lt``/
``$lte`` (``{"severity": {"$gte": "high"}}``). ``$regex`` is searched anywhere in a string with
RE2 (:mod:`app.regex`): linear time, so no backreferences or lookarounds. Validation names the
offending path or operator.

A compiled :class:`Condition` decides one event (``test``) or a whole batch at once (``mask``):
the batch form tests each leaf (one field, one operator) once per distinct value of its field in
the batch, shares leaves between rules, and combines them as bit masks — the same answers as
``test`` on each event, for a fraction of the cost when many rules see the same events.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidRule
from ..events.schema import SEVERITIES
from ..regex import compile_regex

Predicate = Callable[[dict[str, Any]], bool]
#: A leaf's test of one field's value (``_MISSING`` when the event lacks the field).
ValueTest = Callable[[Any], bool]

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


class Batch:
    """Events a set of rules is evaluated against at once; event ``i`` is bit ``i`` of a mask.

    Each field is read once per event and grouped by value; each leaf is tested once per
    distinct value and remembered for every rule that shares it.
    """

    __slots__ = ("events", "everything", "_groups", "_leaves")

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events = events
        #: The mask of every event of the batch.
        self.everything = (1 << len(events)) - 1
        self._groups: dict[tuple[str, ...], list[tuple[Any, int]]] = {}
        self._leaves: dict[tuple[Any, ...], int] = {}

    def groups(self, path: tuple[str, ...]) -> list[tuple[Any, int]]:
        """The distinct values at ``path`` in the batch, each with the mask of the events holding it."""
        found = self._groups.get(path)
        if found is not None:
            return found
        get = getter(path)
        by_key: dict[Any, list[Any]] = {}
        alone: list[tuple[Any, int]] = []
        bit = 1
        for event in self.events:
            value = get(event)
            key = _group_key(value)
            if key is None:
                alone.append((value, bit))
            elif (slot := by_key.get(key)) is None:
                by_key[key] = [value, bit]
            else:
                slot[1] |= bit
            bit <<= 1
        found = [(value, bits) for value, bits in by_key.values()] + alone
        self._groups[path] = found
        return found

    def leaf(self, key: tuple[Any, ...], path: tuple[str, ...], test: ValueTest) -> int:
        """The mask of the events whose value at ``path`` passes ``test`` (remembered under ``key``)."""
        mask = self._leaves.get(key)
        if mask is None:
            mask = 0
            for value, bits in self.groups(path):
                if test(value):
                    mask |= bits
            self._leaves[key] = mask
        return mask

    def any_of(self, name: str, values: frozenset[Any]) -> int:
        """The mask of the events whose top-level field ``name`` equals one of ``values``."""
        mask = 0
        for value, bits in self.groups((name,)):
            if value is not _MISSING and _hashable(value) and value in values:
                mask |= bits
        return mask

    def select(self, mask: int) -> list[dict[str, Any]]:
        """The events of ``mask``, in batch order."""
        if mask == self.everything:
            return list(self.events)
        # PERF: one pass over the mask's binary digits, lowest bit (first event) first.
        return [e for e, bit in zip(self.events, reversed(bin(mask)[2:]), strict=False) if bit == "1"]


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _group_key(value: Any) -> Any:
    """A key under which values every leaf test treats alike are grouped; None for "alone".

    Scalars group by type and value (``1``, ``1.0`` and ``True`` apart: comparisons tell them
    apart). Lists of scalars group by equal contents: every operator treats lists by equality.
    Anything unhashable (objects, lists of lists) stays alone.
    """
    key = (list, tuple(value)) if isinstance(value, list) else (type(value), value)
    try:
        hash(key)
    except TypeError:
        return None
    return key


MaskFn = Callable[[Batch], int]


@dataclass(frozen=True, slots=True)
class Condition:
    """A compiled condition: ``test`` decides one event, ``mask`` decides every event of a batch."""

    test: Predicate
    mask: MaskFn

    def __call__(self, event: dict[str, Any]) -> bool:
        return self.test(event)


def _all_masks(masks: list[MaskFn]) -> MaskFn:
    if len(masks) == 1:
        return masks[0]

    def every(batch: Batch) -> int:
        mask = batch.everything
        for part in masks:
            mask &= part(batch)
            if not mask:
                break
        return mask

    return every


def _any_mask(masks: list[MaskFn]) -> MaskFn:
    def some(batch: Batch) -> int:
        mask = 0
        for part in masks:
            mask |= part(batch)
            if mask == batch.everything:
                break
        return mask

    return some


def _leaf(key: tuple[Any, ...], field: tuple[str, ...], test: ValueTest) -> Condition:
    get = getter(field)
    return Condition(lambda e: test(get(e)), lambda batch: batch.leaf(key, field, test))


def _comparable(a: Any, b: Any) -> bool:
    numbers = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return False
    return (isinstance(a, numbers) and isinstance(b, numbers)) or (isinstance(a, str) and isinstance(b, str))


def _compare(op: str, operand: Any, path: str, field: tuple[str, ...]) -> ValueTest:
    ranked = field == ("severity",) and operand in _RANK
    bound = _RANK[operand] if ranked else operand
    if not ranked and not isinstance(operand, int | float | str) or isinstance(operand, bool):
        raise InvalidRule(f"{op} needs a number or a string", field=f"{path}.{op}")
    test: Callable[[Any, Any], bool] = {
        "$gt": lambda a, b: a > b, "$gte": lambda a, b: a >= b, "$lt": lambda a, b: a < b, "$lte": lambda a, b: a <= b,
    }[op]  # fmt: skip

    if ranked:
        # A value that is not a severity name has no rank, and so never compares.
        return lambda v: isinstance(v, str) and (r := _RANK.get(v)) is not None and test(r, bound)
    return lambda v: v is not None and v is not _MISSING and _comparable(v, bound) and test(v, bound)


#: Characters with a meaning in an RE2 pattern: a pattern without them (but for a leading ``^`` and a trailing
#: ``$``) matches its text literally.
_REGEX_SPECIAL = frozenset("\\.^$|?*+()[]{}")


def _literal_regex(pattern: str) -> ValueTest | None:
    """The string test a literal pattern amounts to (``^web-`` is a prefix), or None for any other pattern.

    PERF: rules often hold a host or title prefix as ``$regex``; ``str.startswith`` answers it for a
    fraction of a search through RE2. The same answers: RE2 without the ``m`` flag matches ``^`` at
    the start of the text only and ``$`` at its end only (not before a final newline, as ``re`` does).
    """
    anchored_start = pattern.startswith("^")
    text = pattern[1:] if anchored_start else pattern
    anchored_end = text.endswith("$")
    text = text[:-1] if anchored_end else text
    if any(c in _REGEX_SPECIAL for c in text):
        return None
    if anchored_start and anchored_end:
        return lambda v: isinstance(v, str) and v == text
    if anchored_start:
        return lambda v: isinstance(v, str) and v.startswith(text)
    if anchored_end:
        return lambda v: isinstance(v, str) and v.endswith(text)
    return lambda v: isinstance(v, str) and text in v


def _operator(op: str, operand: Any, path: str, field: tuple[str, ...]) -> ValueTest:  # noqa: C901 - one branch per operator
    where = f"{path}.{op}"
    if op in ("$gt", "$gte", "$lt", "$lte"):
        return _compare(op, operand, path, field)
    if op == "$eq":
        return lambda v: v == operand
    if op == "$ne":
        return lambda v: v != operand
    if op in ("$in", "$nin"):
        if not isinstance(operand, list):
            raise InvalidRule(f"{op} needs a list", field=where)
        members = list(operand)
        if op == "$in":
            return lambda v: v in members
        return lambda v: v not in members
    if op == "$regex":
        if not isinstance(operand, str):
            raise InvalidRule("$regex needs a string", field=where)
        # RE2, not re: an operator's pattern on an attacker's title must not backtrack (app/regex.py).
        pattern = compile_regex(operand, field=where, label="$regex")
        literal = _literal_regex(operand)
        if literal is not None:
            return literal
        return lambda v: isinstance(v, str) and pattern.search(v) is not None
    if op == "$exists":
        if not isinstance(operand, bool):
            raise InvalidRule("$exists needs true or false", field=where)
        return lambda v: (v is not _MISSING and v is not None) is operand
    if op == "$contains":

        def contains(value: Any) -> bool:
            if isinstance(value, list):
                return operand in value
            return isinstance(value, str) and isinstance(operand, str) and operand in value

        return contains
    raise InvalidRule(f"unknown operator {op}", field=where)


def _field(name: str, spec: Any, prefix: str) -> Condition:
    parts = tuple(name.split("."))
    path = f"{prefix}.{name}"
    if parts[0] not in FIELDS or any(not p for p in parts):
        raise InvalidRule(f"unknown field path {name!r} (fields: {', '.join(sorted(FIELDS))})", field=path)
    # A leaf's key names its field, operator and operand (repr tells 1, 1.0, True and "1" apart),
    # so rules sharing a leaf share its mask within a batch.
    if isinstance(spec, dict):
        if not spec:
            raise InvalidRule("an empty operator object", field=path)
        leaves = []
        for op, operand in spec.items():
            if op not in OPERATORS:
                raise InvalidRule(f"unknown operator {op}", field=f"{path}.{op}")
            leaves.append(_leaf((parts, op, repr(operand)), parts, _operator(op, operand, path, parts)))
        return _all(leaves)
    if isinstance(spec, list):
        members = list(spec)
        return _leaf((parts, "$in", repr(members)), parts, lambda v: v in members)
    return _leaf((parts, "$eq", repr(spec)), parts, lambda v: v == spec)


def _all(parts: list[Condition]) -> Condition:
    if len(parts) == 1:
        return parts[0]
    return Condition(all_of([p.test for p in parts]), _all_masks([p.mask for p in parts]))


def _any(parts: list[Condition]) -> Condition:
    tests = [p.test for p in parts]
    return Condition(lambda e: any(t(e) for t in tests), _any_mask([p.mask for p in parts]))


def _negate(inner: Condition) -> Condition:
    test, mask = inner.test, inner.mask
    return Condition(lambda e: not test(e), lambda batch: batch.everything ^ mask(batch))


def compile_condition(spec: Any, *, path: str = "conditions") -> Condition:
    """Validate and compile a condition object.

    Returns:
      A :class:`Condition`: call it (or its ``test``) on an event, or its ``mask`` on a :class:`Batch`.

    Raises:
      InvalidRule: with ``field`` naming the bad path or operator.
    """
    if not isinstance(spec, dict):
        raise InvalidRule("a condition is a JSON object", field=path)
    checks: list[Condition] = []
    for key, value in spec.items():
        if key in ("$and", "$or"):
            if not isinstance(value, list) or not value:
                raise InvalidRule(f"{key} needs a non-empty list of conditions", field=f"{path}.{key}")
            parts = [compile_condition(c, path=f"{path}.{key}[{i}]") for i, c in enumerate(value)]
            checks.append(_all(parts) if key == "$and" else _any(parts))
        elif key == "$not":
            checks.append(_negate(compile_condition(value, path=f"{path}.$not")))
        elif key.startswith("$"):
            raise InvalidRule(f"unknown operator {key}", field=f"{path}.{key}")
        else:
            checks.append(_field(key, value, path))
    if not checks:
        return Condition(lambda e: True, lambda batch: batch.everything)
    return _all(checks)

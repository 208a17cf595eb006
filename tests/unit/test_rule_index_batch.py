"""Matching a batch at once (leaf masks shared between rules) decides exactly what testing each rule
on each event decides, over generated conditions (every operator, nesting) and awkward values."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from app.rules.conditions import Batch, compile_condition
from app.rules.evaluation import match_batch
from app.rules.triggers import parse_trigger

PATHS = ["event_type", "severity", "host", "service", "title", "tags", "tags.0", "metadata.value",
         "metadata.flag", "metadata.nested.x", "metadata.missing"]  # fmt: skip

#: Values that look alike but compare differently: 1, 1.0 and True; "1" and 1; [] and None.
scalars = st.sampled_from([None, True, False, 0, 1, 1.0, 2, 90, 95.5, "1", "", "high", "critical", "low", "web-01",
                           "db-01", "prod", "disk full on web-01", "timeout"])  # fmt: skip
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=3),
    st.dictionaries(st.sampled_from(["x", "y"]), scalars, max_size=2),
    st.lists(st.lists(scalars, max_size=2), max_size=2),  # unhashable: tested alone
)
comparable = st.one_of(st.integers(-1, 100), st.floats(-1, 100, allow_nan=False), st.sampled_from(["high", "b", "m"]))


@st.composite
def leaves(draw):
    path = draw(st.sampled_from(PATHS))
    op = draw(st.sampled_from(["plain", "list", "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin",
                               "$regex", "$exists", "$contains"]))  # fmt: skip
    if op == "plain":
        return {path: draw(scalars)}
    if op == "list":
        return {path: draw(st.lists(scalars, max_size=3))}
    if op in ("$eq", "$ne"):
        operand = draw(values)
    elif op in ("$in", "$nin"):
        operand = draw(st.lists(values, max_size=3))
    elif op == "$regex":
        operand = draw(st.sampled_from(["^web", "full", "1$", "^$", "i"]))
    elif op == "$exists":
        operand = draw(st.booleans())
    elif op == "$contains":
        operand = draw(scalars)
    else:
        operand = draw(comparable)
    return {path: {op: operand}}


conditions = st.recursive(
    leaves(),
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda cs: {"$and": cs}),
        st.lists(inner, min_size=1, max_size=3).map(lambda cs: {"$or": cs}),
        inner.map(lambda c: {"$not": c}),
        st.lists(inner, min_size=2, max_size=3).map(lambda cs: {k: v for c in cs for k, v in c.items()}),
    ),
    max_leaves=6,
)


@st.composite
def events(draw):
    event = {"id": str(draw(st.uuids()))}
    for name in ("event_type", "severity", "host", "service", "title", "tags"):
        if draw(st.booleans()):
            event[name] = draw(values)
    if draw(st.booleans()):
        event["metadata"] = draw(
            st.fixed_dictionaries({}, optional={"value": values, "flag": values, "nested": st.one_of(values, st.fixed_dictionaries({"x": values}))})
        )  # fmt: skip
    return event


@settings(max_examples=400, deadline=None)
@given(specs=st.lists(conditions, min_size=1, max_size=6), batch=st.lists(events(), max_size=25))
def test_batch_masks_decide_what_each_event_tested_alone_decides(specs, batch):
    # Given several conditions evaluated against one batch (so they share its leaf masks)
    compiled = [compile_condition(spec) for spec in specs]
    shared = Batch(batch)
    for condition in compiled:
        # When the batch is matched at once
        mask = condition.mask(shared)
        # Then each event's bit is what testing that event alone says
        assert [bool(mask >> i & 1) for i in range(len(batch))] == [condition.test(e) for e in batch]
        assert shared.select(mask) == [e for e in batch if condition.test(e)]


@settings(max_examples=200, deadline=None)
@given(specs=st.lists(conditions, min_size=1, max_size=6), batch=st.lists(events(), max_size=25))
def test_match_batch_finds_what_trying_every_rule_on_every_event_finds(specs, batch):
    rules = [(i, parse_trigger({"name": f"r{i}", "conditions": c})) for i, c in enumerate(specs)]
    found = {
        rule_id: [e["id"] for e in matching]
        for rule_id, _, matching in match_batch([(i, s, None) for i, s in rules], batch)
    }
    expected = {i: [e["id"] for e in batch if spec.matches(e)] for i, spec in rules}
    assert found == {i: ids for i, ids in expected.items() if ids}


def test_rules_sharing_a_leaf_share_its_mask_but_not_lookalike_operands():
    # Given an event whose value is True, and rules asking for True, 1 and 1.0
    batch = Batch([{"id": "a", "metadata": {"value": True}}, {"id": "b", "metadata": {"value": 1}}])
    as_true, as_one, as_float = (compile_condition({"metadata.value": v}) for v in (True, 1, 1.0))
    above_zero = compile_condition({"metadata.value": {"$gt": 0}})
    # Then equality follows Python (True == 1 == 1.0) and comparisons leave booleans out, as per event
    assert [as_true.mask(batch), as_one.mask(batch), as_float.mask(batch)] == [0b11, 0b11, 0b11]
    assert above_zero.mask(batch) == 0b10


def test_a_severity_comparison_on_a_value_that_is_no_severity_is_false_not_an_error():
    batch = Batch([{"severity": ["high"]}, {"severity": "critical"}, {"severity": 5}])
    assert compile_condition({"severity": {"$gte": "high"}}).mask(batch) == 0b010

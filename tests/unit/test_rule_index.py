"""The rule index never skips a rule that would match: indexed matching equals trying every rule
on every event, over many generated rules and events."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from app.rules.conditions import equality_constraint
from app.rules.evaluation import match_batch
from app.rules.triggers import parse_trigger

VALUES = {
    "event_type": ["alert", "threshold_breach", "oom_kill"],
    "severity": ["critical", "high", "medium", "low", "info"],
    "source_type": ["webhook", "syslog", "snmp"],
    "service": ["web", "db", None],
    "host": ["web-01", "web-02", "db-01", None],
}


@st.composite
def conditions(draw):
    cond = {}
    for name, values in VALUES.items():
        choice = draw(st.sampled_from(["absent", "absent", "eq", "list", "in", "$eq", "$ne", "$regex"]))
        present = [v for v in values if v is not None]
        if choice == "eq":
            cond[name] = draw(st.sampled_from(present))
        elif choice == "list":
            cond[name] = draw(st.lists(st.sampled_from(present), min_size=1, max_size=3))
        elif choice == "in":
            cond[name] = {"$in": draw(st.lists(st.sampled_from(present), min_size=1, max_size=3))}
        elif choice == "$eq":
            cond[name] = {"$eq": draw(st.sampled_from(present))}
        elif choice == "$ne":
            cond[name] = {"$ne": draw(st.sampled_from(present))}
        elif choice == "$regex":
            cond[name] = {"$regex": "^" + draw(st.sampled_from(present))[:2]}
    if draw(st.booleans()):
        cond["$or"] = [{"metadata.value": {"$gt": draw(st.integers(0, 100))}}, {"tags": {"$contains": "prod"}}]
    return cond


events = st.lists(
    st.fixed_dictionaries({name: st.sampled_from(values) for name, values in VALUES.items()}).flatmap(
        lambda e: st.fixed_dictionaries({
            "id": st.uuids().map(str), "metadata": st.fixed_dictionaries({"value": st.integers(0, 100)}),
            "tags": st.sampled_from([["prod"], ["dev"], []]),
        }).map(lambda extra: {**e, **extra})
    ),
    max_size=30,
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(rules=st.lists(conditions(), min_size=1, max_size=8), batch=events)
def test_indexed_matching_finds_exactly_what_trying_every_rule_finds(rules, batch):
    specs = [(i, parse_trigger({"name": f"r{i}", "conditions": c})) for i, c in enumerate(rules)]
    indexed = match_batch([(i, spec, equality_constraint(spec.conditions)) for i, spec in specs], batch)
    naive = match_batch([(i, spec, None) for i, spec in specs], batch)
    as_ids = lambda found: {rule: sorted(e["id"] for e in matching) for rule, _, matching in found}  # noqa: E731
    assert as_ids(indexed) == as_ids(naive)


def test_constraints_come_only_from_top_level_equalities():
    assert equality_constraint({"event_type": "alert", "host": {"$regex": "^web"}}) == (
        "event_type",
        frozenset({"alert"}),
    )
    assert equality_constraint({"severity": ["critical", "high"]}) == ("severity", frozenset({"critical", "high"}))
    assert equality_constraint({"severity": {"$in": ["high"]}}) == ("severity", frozenset({"high"}))
    assert equality_constraint({"$or": [{"event_type": "a"}, {"event_type": "b"}]}) is None
    assert equality_constraint({"severity": {"$gte": "high"}}) is None
    assert equality_constraint({"service": {"$ne": "db"}}) is None

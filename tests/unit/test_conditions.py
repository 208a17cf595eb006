"""The trigger-rule condition language: every operator, nesting, and validation naming the bad part."""

from __future__ import annotations

import pytest

from app.errors import InvalidRule
from app.rules.conditions import compile_condition

EVENT = {
    "event_type": "threshold_breach",
    "severity": "high",
    "host": "web-server-07",
    "service": "nginx",
    "title": "CPU usage exceeded 95%",
    "tags": ["production", "web"],
    "metadata": {"cpu_usage": 97.5, "metrics": {"memory_usage": 40}, "region": "eu", "empty": None},
}


def matches(condition) -> bool:
    return compile_condition(condition)(EVENT)


def test_the_specs_example_rule_matches():
    spec = {"event_type": "threshold_breach", "severity": ["critical", "high"], "metadata.cpu_usage": {"$gt": 90},
            "host": {"$regex": "web-server-.*"}}  # fmt: skip
    assert matches(spec)
    assert not matches(dict(spec, **{"metadata.cpu_usage": {"$gt": 98}}))


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"service": {"$eq": "nginx"}}, True), ({"service": {"$eq": "apache"}}, False),
        ({"service": {"$ne": "apache"}}, True), ({"service": {"$ne": "nginx"}}, False),
        ({"metadata.cpu_usage": {"$gt": 97.5}}, False), ({"metadata.cpu_usage": {"$gte": 97.5}}, True),
        ({"metadata.cpu_usage": {"$lt": 97.5}}, False), ({"metadata.cpu_usage": {"$lte": 97.5}}, True),
        ({"metadata.metrics.memory_usage": {"$lt": 50}}, True),
        ({"metadata.region": {"$in": ["eu", "us"]}}, True), ({"metadata.region": {"$in": ["us"]}}, False),
        ({"metadata.region": {"$nin": ["us"]}}, True), ({"metadata.region": {"$nin": ["eu"]}}, False),
        ({"title": {"$regex": "^CPU .* 9\\d%$"}}, True), ({"title": {"$regex": "^Disk"}}, False),
        ({"metadata.cpu_usage": {"$exists": True}}, True), ({"metadata.nope": {"$exists": True}}, False),
        ({"metadata.nope": {"$exists": False}}, True), ({"metadata.empty": {"$exists": False}}, True),
        ({"tags": {"$contains": "production"}}, True), ({"tags": {"$contains": "staging"}}, False),
        ({"title": {"$contains": "exceeded"}}, True),
        ({"severity": {"$gte": "high"}}, True), ({"severity": {"$gt": "high"}}, False), ({"severity": {"$lt": "critical"}}, True),
        ({"metadata.cpu_usage": {"$gt": 90, "$lt": 99}}, True), ({"metadata.cpu_usage": {"$gt": 90, "$lt": 95}}, False),
        ({"metadata.region": {"$gt": 5}}, False),  # a string never compares with a number
        ({"metadata.missing": {"$lt": 5}}, False),
    ],
)  # fmt: skip
def test_every_operator(condition, expected):
    assert matches(condition) is expected


def test_and_or_not_nest():
    assert matches({"$or": [{"host": "db-01"}, {"$and": [{"service": "nginx"}, {"$not": {"severity": "low"}}]}]})
    assert not matches({"$not": {"$or": [{"host": "db-01"}, {"service": "nginx"}]}})
    assert matches({})


@pytest.mark.parametrize(
    ("condition", "field"),
    [
        ({"metadata.cpu_usage": {"$gtx": 1}}, "conditions.metadata.cpu_usage.$gtx"),
        ({"colour": "red"}, "conditions.colour"),
        ({"metadata..x": 1}, "conditions.metadata..x"),
        ({"$xor": []}, "conditions.$xor"),
        ({"$or": [{"host": "a"}, {"hots": "b"}]}, "conditions.$or[1].hots"),
        ({"$and": []}, "conditions.$and"),
        ({"title": {"$regex": "("}}, "conditions.title.$regex"),
        ({"host": {"$in": "web"}}, "conditions.host.$in"),
        ({"metadata.x": {"$exists": "yes"}}, "conditions.metadata.x.$exists"),
        ({"metadata.x": {"$gt": [1]}}, "conditions.metadata.x.$gt"),
        ({"host": {}}, "conditions.host"),
        (["not", "an", "object"], "conditions"),
    ],
)
def test_validation_names_the_bad_operator_or_path(condition, field):
    with pytest.raises(InvalidRule) as error:
        compile_condition(condition)
    assert error.value.field == field

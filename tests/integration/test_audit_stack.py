"""The audit log over real gunicorn and PostgreSQL: operators page through it and export it;
viewers may not read it; a bad cursor or filter is a 400 naming the field."""

from __future__ import annotations

import csv
import io
import json
import uuid
from urllib.parse import urlencode

import pytest

from app import audit
from app.auth import create_key
from app.db import in_transaction
from tests.http import request


@pytest.fixture(scope="module")
def operator(stack) -> str:
    return create_key(role="operator", name="audit-stack operator")


@pytest.fixture
def written(db) -> str:
    """25 rows on one object kind of this test's own (the stack's database is shared by the module)."""
    kind = f"probe_{uuid.uuid4().hex[:8]}"

    def write() -> None:
        for i in range(25):
            audit.record(audit.Action.TRIGGER_RULE_UPDATED, actor="cli", subject=f"{kind}:{i % 5}",
                         details={"i": i, "note": "=1+1" if i == 0 else "ok"})  # fmt: skip

    in_transaction(write)
    return kind


def get(stack, path: str, key: str, **params: object):
    return request("GET", f"{stack.base}{path}?{urlencode(params)}", key=key)


def test_an_operator_pages_through_the_audit_log_reading_each_row_once(stack, operator, written):
    # Given 25 rows of one kind, written in one transaction (rows sharing a timestamp)
    seen: list[int] = []
    cursor = None
    # When an operator reads them 10 at a time, following next_cursor
    while True:
        reply = get(stack, "/api/v1/audit", operator, object_kind=written, limit=10, **({"cursor": cursor} if cursor else {}))
        assert reply.status == 200, reply.body[:300]
        page = reply.json()
        seen += [row["id"] for row in page["entries"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    # Then each row came once, newest first
    assert len(seen) == 25 and len(set(seen)) == 25 and seen == sorted(seen, reverse=True)
    # And one object's rows are found by kind and id
    reply = get(stack, "/api/v1/audit", operator, object_kind=written, object_id="3")
    assert {row["subject"] for row in reply.json()["entries"]} == {f"{written}:3"}
    assert len(reply.json()["entries"]) == 5


def test_the_export_is_an_attachment_in_csv_or_json(stack, operator, written):
    # When an operator exports the rows as CSV
    reply = get(stack, "/api/v1/audit/export", operator, object_kind=written, format="csv")
    # Then the file holds a header and every row, with formulas defused
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("text/csv")
    assert reply.headers["Content-Disposition"].startswith('attachment; filename="opsconductor-audit-')
    table = list(csv.DictReader(io.StringIO(reply.body.decode())))
    assert len(table) == 25 and {r["action"] for r in table} == {"trigger_rule.updated"}
    first = next(r for r in table if json.loads(r["details"])["i"] == 0)
    assert first["details"] == '{"i":0,"note":"=1+1"}'
    # And as JSON, the same rows
    reply = get(stack, "/api/v1/audit/export", operator, object_kind=written, format="json")
    assert reply.headers["Content-Disposition"].endswith('.json"')
    assert [row["id"] for row in reply.json()] == [int(r["id"]) for r in table]


def test_a_viewer_may_not_read_the_audit_log(stack):
    for path in ("/api/v1/audit", "/api/v1/audit/export"):
        reply = get(stack, path, stack.viewer)
        assert reply.status == 403, (path, reply.status)


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/v1/audit", {"cursor": "bm90IGEgY3Vyc29y"}, "cursor"),
        ("/api/v1/audit", {"limit": "5000"}, "limit"),
        ("/api/v1/audit", {"since": "yesterday"}, "since"),
        ("/api/v1/audit", {"action": "rule.exploded"}, "action"),
        ("/api/v1/audit", {"object_id": "7"}, "object_id"),
        ("/api/v1/audit", {"actor": "a\x00b"}, "actor"),
        ("/api/v1/audit/export", {"format": "xml"}, "format"),
        ("/api/v1/audit/export", {"until": "2020-01-01T00:00:00Z", "since": "2021-01-01T00:00:00Z"}, "since"),
    ],
)
def test_bad_parameters_are_refused_naming_the_field(stack, operator, path, params, field):
    reply = get(stack, path, operator, **params)
    assert reply.status == 400, reply.body[:300]
    assert reply.json()["field"] == field

"""Reading the audit log: filters, cursor pages, exports; and the database keeping it append-only.
On both databases with real rows (the trigger's refusals of TRUNCATE on PostgreSQL only)."""

from __future__ import annotations

import csv
import io
import sqlite3
from datetime import UTC, datetime, timedelta

import orjson
import peewee
import psycopg2
import psycopg2.errors
import pytest
from freezegun import freeze_time

from app import audit, audit_query
from app.audit_query import AuditFilter
from app.auth import create_key
from app.db import in_transaction
from app.errors import InvalidInput
from app.migrate import migrate
from app.models import ApiKey, AuditLog

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def everything(flt: AuditFilter, *, limit: int) -> list[dict]:
    """Every row ``flt`` matches, page after page."""
    rows, cursor = [], None
    while True:
        got = audit_query.page(flt, cursor=cursor, limit=limit)
        rows += got["entries"]
        cursor = got["next_cursor"]
        if cursor is None:
            return rows


def test_pages_cover_every_row_once_even_when_rows_share_a_timestamp(any_db):
    # Given 23 rows written in the same microsecond, and 5 an hour later
    with freeze_time(T0):
        for i in range(23):
            audit.record(audit.Action.TRIGGER_RULE_CREATED, actor="cli", subject=f"trigger_rule:{i}")
    with freeze_time(T0 + timedelta(hours=1)):
        for i in range(5):
            audit.record(audit.Action.TRIGGER_RULE_UPDATED, actor="cli", subject=f"trigger_rule:{i}")
    # When they are read 7 at a time
    rows = everything(AuditFilter(), limit=7)
    # Then each row comes once, newest first, ties by id
    ids = [r["id"] for r in rows]
    assert len(ids) == 28 and set(ids) == {row.id for row in AuditLog.select()}
    assert [r["action"] for r in rows[:5]] == ["trigger_rule.updated"] * 5
    assert ids[:5] == sorted(ids[:5], reverse=True) and ids[5:] == sorted(ids[5:], reverse=True)


def test_a_page_that_ends_the_rows_has_no_next_cursor(any_db):
    audit.record(audit.Action.TOPOLOGY_REPLACED, actor="cli", subject="topology")
    page = audit_query.page(AuditFilter(), limit=1)
    assert len(page["entries"]) == 1 and page["next_cursor"] is None


def test_rows_are_filtered_by_actor_person_action_object_and_time(any_db):
    # Given rows by alice's key, the executor and the CLI, on rules, executions and the topology
    with freeze_time(T0 - timedelta(days=1)):
        create_key(role="operator", name="laptop", person="alice")
    alice = f"key:{ApiKey.get(ApiKey.name == 'laptop').id}:laptop"
    with freeze_time(T0):
        audit.record(audit.Action.TRIGGER_RULE_CREATED, actor=alice, subject="trigger_rule:7")
        audit.record(audit.Action.TRIGGER_RULE_DELETED, actor=alice, subject="trigger_rule:17")
    with freeze_time(T0 + timedelta(minutes=10)):
        audit.record(audit.Action.STEP_COMPLETED, actor="executor", subject="execution:abc")
        audit.record(audit.Action.TOPOLOGY_REPLACED, actor="cli", subject="topology")
        audit.record(audit.Action.TRIGGER_RULE_UPDATED, actor="cli", subject="trigger_rule_x:7")

    def subjects(**given) -> list[str]:
        return sorted(r["subject"] for r in audit_query.page(AuditFilter(**given))["entries"])

    # Then each filter selects its rows
    assert subjects(person="alice", since=T0) == ["trigger_rule:17", "trigger_rule:7"]
    assert subjects(actor="executor") == ["execution:abc"]
    assert subjects(action="trigger_rule.deleted") == ["trigger_rule:17"]
    assert subjects(object_kind="trigger_rule") == ["trigger_rule:17", "trigger_rule:7"]
    assert subjects(object_kind="trigger_rule", object_id="7") == ["trigger_rule:7"]
    assert subjects(object_kind="topology") == ["topology"]
    assert subjects(since=T0 + timedelta(minutes=5)) == ["execution:abc", "topology", "trigger_rule_x:7"]
    assert subjects(until=T0 + timedelta(minutes=5), actor=alice) == ["trigger_rule:17", "trigger_rule:7"]
    assert subjects(since=T0, until=T0 + timedelta(microseconds=1)) == ["trigger_rule:17", "trigger_rule:7"]


def test_an_action_is_found_by_its_old_name_and_its_new_one(any_db):
    # Given a row written before the vocabulary ("trigger_rule.create") and one after
    AuditLog.create(action="trigger_rule.create", actor="cli", subject="trigger_rule:1")
    audit.record(audit.Action.TRIGGER_RULE_CREATED, actor="cli", subject="trigger_rule:2")
    # When either name is asked for
    for name in ("trigger_rule.create", "trigger_rule.created"):
        rows = audit_query.page(AuditFilter(action=name))["entries"]
        # Then both rows come, shown under the current name
        assert sorted(r["subject"] for r in rows) == ["trigger_rule:1", "trigger_rule:2"]
        assert {r["action"] for r in rows} == {"trigger_rule.created"}


@pytest.mark.parametrize(
    ("given", "field"),
    [
        ({"flt": AuditFilter(action="trigger_rule.exploded")}, "action"),
        ({"flt": AuditFilter(object_id="7")}, "object_id"),
        ({"flt": AuditFilter(object_kind="Trigger Rule")}, "object_kind"),
        ({"flt": AuditFilter(actor="cl\x00i")}, "actor"),
        ({"flt": AuditFilter(person="x" * 201)}, "person"),
        ({"flt": AuditFilter(since=T0, until=T0)}, "since"),
        ({"flt": AuditFilter(), "cursor": "not-a-cursor"}, "cursor"),
        ({"flt": AuditFilter(), "cursor": "WyJ4IiwxXQ"}, "cursor"),  # ["x",1]
        ({"flt": AuditFilter(), "limit": 0}, "limit"),
        ({"flt": AuditFilter(), "limit": 1001}, "limit"),
    ],
)
def test_bad_filters_cursors_and_limits_are_refused_naming_the_field(any_db, given, field):
    options = {k: v for k, v in given.items() if k != "flt"}
    with pytest.raises(InvalidInput) as refused:
        audit_query.page(given["flt"], **options)
    assert refused.value.field == field


def test_the_export_writes_every_matching_row_as_csv_and_as_json(any_db, monkeypatch):
    # Given 7 rows of one kind (read 3 per query), one of them with a formula-like actor, and one other row
    monkeypatch.setattr(audit_query, "EXPORT_CHUNK", 3)
    with freeze_time(T0):
        for i in range(6):
            audit.record(audit.Action.SECRET_CREATED, actor="cli", subject=f"secret:S{i}", details={"i": i})
        audit.record(audit.Action.SECRET_DELETED, actor="=HYPERLINK(\"x\")", subject="secret:S0")
    audit.record(audit.Action.TOPOLOGY_REPLACED, actor="cli", subject="topology")
    flt = AuditFilter(object_kind="secret")
    # When they are exported as CSV
    text = b"".join(audit_query.csv_lines(audit_query.export_rows(flt, run=in_transaction))).decode()
    table = list(csv.DictReader(io.StringIO(text)))
    # Then a header and each row once, newest first, with details as JSON and the formula defused
    assert text.startswith("id,at,actor,person,action,subject,object_kind,object_id,details\r\n")
    assert len(table) == 7 and len({r["id"] for r in table}) == 7
    assert table[0]["actor"] == "'=HYPERLINK(\"x\")" and table[0]["action"] == "secret.deleted"
    assert [orjson.loads(r["details"])["i"] for r in table[1:]] == [5, 4, 3, 2, 1, 0]
    assert table[1]["at"] == "2025-03-01T12:00:00Z" and table[1]["object_id"] == "S5"
    # And as JSON: the same rows, values as stored
    rows = orjson.loads(b"".join(audit_query.json_lines(audit_query.export_rows(flt, run=in_transaction))))
    assert [r["id"] for r in rows] == [int(r["id"]) for r in table]
    assert rows[0]["actor"] == "=HYPERLINK(\"x\")" and rows[1]["details"] == {"i": 5}


def test_an_empty_export_is_a_header_or_an_empty_array(any_db):
    flt = AuditFilter(actor="nobody")
    assert b"".join(audit_query.csv_lines(audit_query.export_rows(flt, run=in_transaction))).count(b"\r\n") == 1
    assert orjson.loads(b"".join(audit_query.json_lines(audit_query.export_rows(flt, run=in_transaction)))) == []


@pytest.mark.parametrize(
    "statement",
    ["UPDATE ops.audit_log SET actor = 'mallory'", "DELETE FROM ops.audit_log", "TRUNCATE ops.audit_log"],
)
def test_postgresql_refuses_to_change_or_delete_audit_rows(pg_db, pg_url, statement):
    # Given an audit row, and the migration run again (it is idempotent)
    audit.record(audit.Action.TOPOLOGY_REPLACED, actor="cli", subject="topology")
    migrate()
    # When anyone connected to the database changes or deletes it
    connection = psycopg2.connect(pg_url)
    try:
        with pytest.raises(psycopg2.errors.InsufficientPrivilege, match="append-only"):
            with connection, connection.cursor() as cursor:
                cursor.execute(statement)
    finally:
        connection.close()
    # Then the row is unchanged
    assert [(r.actor, r.subject) for r in AuditLog.select()] == [("cli", "topology")]


def test_a_saved_audit_row_cannot_be_saved_again_on_either_database(any_db):
    # Given an audit row read back
    row = audit.record(audit.Action.TOPOLOGY_REPLACED, actor="cli", subject="topology")
    row.actor = "mallory"
    # When the application tries to update it, or to delete it
    with pytest.raises((peewee.ProgrammingError, peewee.IntegrityError), match="append-only"):
        with any_db.atomic():
            row.save()
    with pytest.raises((peewee.ProgrammingError, peewee.IntegrityError), match="append-only"):
        with any_db.atomic():
            AuditLog.delete().execute()
    # Then it is as written
    assert AuditLog.get_by_id(row.id).actor == "cli"


def test_sqlite_refuses_to_change_audit_rows_outside_the_application(sqlite_db, tmp_path):
    audit.record(audit.Action.TOPOLOGY_REPLACED, actor="cli", subject="topology")
    connection = sqlite3.connect(tmp_path / "test.db")
    try:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            connection.execute("UPDATE ops_audit_log SET actor = 'mallory'")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            connection.execute("DELETE FROM ops_audit_log")
    finally:
        connection.close()

"""Migrations bring a database created by an older release up to the current schema."""

from __future__ import annotations

from app.db import database, is_postgres
from app.migrate import LZ4_COLUMNS, migrate
from app.models import DecisionLog


def _columns() -> set[str]:
    meta = DecisionLog._meta
    return {c.name for c in database.get_columns(meta.table_name, meta.schema)}


def test_migrate_adds_the_columns_a_newer_release_declares(any_db):
    # Given a decision log created before the decider recorded its analysis
    table = (
        f"{DecisionLog._meta.schema}.{DecisionLog._meta.table_name}" if is_postgres() else DecisionLog._meta.table_name
    )
    database.execute_sql(f"ALTER TABLE {table} DROP COLUMN analysis")
    database.execute_sql(f"ALTER TABLE {table} DROP COLUMN risk_score")
    assert "analysis" not in _columns()

    # When the release migrates again
    migrate()

    # Then the columns are back and usable
    assert {"analysis", "risk_score"} <= _columns()
    DecisionLog.create(
        decision_type="investigate", confidence_score=0.5, reasoning="r", analysis={"a": 1}, risk_score=0.2
    )
    assert DecisionLog.get().analysis == {"a": 1}


def test_the_columns_the_correlator_rewrites_are_compressed_with_lz4(pg_db):
    # Given a database whose correlator columns were created with the server's default compression
    for table, columns in LZ4_COLUMNS.items():
        database.execute_sql(
            f"ALTER TABLE {table} " + ", ".join(f"ALTER COLUMN {c} SET COMPRESSION pglz" for c in columns)
        )

    # When the release migrates
    migrate()

    # Then each of them is compressed with lz4 (the server of the tests has it)
    for table, columns in LZ4_COLUMNS.items():
        rows = database.execute_sql(
            "SELECT attname, attcompression FROM pg_attribute WHERE attrelid = %s::regclass AND attname = ANY(%s)",
            (table, list(columns)),
        ).fetchall()
        assert dict(rows) == {c: "l" for c in columns}

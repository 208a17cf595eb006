"""Migrations: create schemas, tables and indexes; idempotent (the ``release`` process type)."""

from __future__ import annotations

import logging

from playhouse.migrate import SchemaMigrator
from playhouse.migrate import migrate as migrate_columns

from .db import SCHEMAS, database, is_postgres, wrap_db_errors
from .models import ALL_MODELS, AuditLog
from .topology.store import adopt_legacy

logger = logging.getLogger(__name__)


def _add_missing_columns() -> None:
    """Add the columns a newer release declares to tables an older one created (nullable or defaulted)."""
    migrator = SchemaMigrator.from_database(database.obj)
    for model in ALL_MODELS:
        meta = model._meta
        present = {c.name for c in database.get_columns(meta.table_name, meta.schema)}
        missing = [f for f in meta.sorted_fields if f.column_name not in present]
        for field in missing:
            logger.info("Adding column %s to %s.", field.column_name, meta.table_name)
            if meta.schema:
                database.execute_sql(f'SET LOCAL search_path TO "{meta.schema}", public')
            migrate_columns(migrator.add_column(meta.table_name, field.column_name, field))


#: Columns the correlator rewrites on every batch, large enough to be compressed out of line (TOAST): lz4 where the
#: server has it. PERF: several times faster than PostgreSQL's default pglz both ways; the incidents' upsert of a
#: batch took 28 % less server CPU (match_keys of a large incident is 150 kB), reading them back less too.
LZ4_COLUMNS = {
    "events.incidents": ("hosts", "services", "templates", "fingerprints", "link_keys", "match_keys"),
    "events.correlation_decisions": ("assigned", "links"),
}


def _compress_with_lz4() -> None:
    """Compress :data:`LZ4_COLUMNS` with lz4 (values written from now on), unless the server was built without it.

    Idempotent; the table is locked (briefly: no row is rewritten) only when one of its columns is not lz4 yet.
    """
    row = database.execute_sql(
        "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
    ).fetchone()
    if not row or not row[0]:
        logger.info("The server has no lz4 compression: the correlator's columns keep pglz.")
        return
    for table, columns in LZ4_COLUMNS.items():
        todo = [
            name
            for (name,) in database.execute_sql(
                "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attname = ANY(%s)"
                " AND attcompression IS DISTINCT FROM 'l'",
                (table, list(columns)),
            ).fetchall()
        ]
        if todo:
            database.execute_sql(
                f"ALTER TABLE {table} " + ", ".join(f"ALTER COLUMN {name} SET COMPRESSION lz4" for name in sorted(todo))
            )


#: Why the database refuses a change of the audit log (the message of the refusal).
AUDIT_LOG_APPEND_ONLY = "the audit log is append-only"


def _make_audit_log_append_only_pg() -> None:
    """A trigger refuses UPDATE, DELETE and TRUNCATE of ``ops.audit_log``, whoever sends them.

    Idempotent. A superuser can still disable it (``session_replication_role = replica``, as the
    tests' reset does): it guards against the application and its role, not the database's owner.
    """
    # psycopg2 formats the statement: its %% is PL/pgSQL's % (the operation refused).
    database.execute_sql(
        "CREATE OR REPLACE FUNCTION ops.audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$"
        f" BEGIN RAISE EXCEPTION '{AUDIT_LOG_APPEND_ONLY}: %% refused', TG_OP"
        " USING ERRCODE = 'insufficient_privilege'; END $$"
    )
    database.execute_sql("DROP TRIGGER IF EXISTS audit_log_append_only ON ops.audit_log")
    database.execute_sql(
        "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON ops.audit_log"
        " FOR EACH ROW EXECUTE FUNCTION ops.audit_log_refuse_change()"
    )
    database.execute_sql("DROP TRIGGER IF EXISTS audit_log_no_truncate ON ops.audit_log")
    database.execute_sql(
        "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON ops.audit_log"
        " FOR EACH STATEMENT EXECUTE FUNCTION ops.audit_log_refuse_change()"
    )


def _make_audit_log_append_only_sqlite() -> None:
    """The embedded database refuses UPDATE and DELETE of the audit log too (SQLite has no TRUNCATE)."""
    table = AuditLog._meta.table_name
    for operation in ("UPDATE", "DELETE"):
        database.execute_sql(
            f"CREATE TRIGGER IF NOT EXISTS {table}_no_{operation.lower()} BEFORE {operation} ON {table}"
            f" BEGIN SELECT RAISE(ABORT, '{AUDIT_LOG_APPEND_ONLY}: {operation} refused'); END"
        )


def migrate() -> None:
    """Bring the database to the current schema. Safe to run on every release."""
    with wrap_db_errors():
        database.connect(reuse_if_open=True)
        with database.atomic():
            if is_postgres():
                # Serialize concurrent releases.
                database.execute_sql("SELECT pg_advisory_xact_lock(727274)")
                for schema in SCHEMAS:
                    database.execute_sql(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            database.create_tables(ALL_MODELS, safe=True)
            _add_missing_columns()
            # the older one-upstream-per-host map becomes the topology's first version, once
            adopt_legacy()
            if is_postgres():
                # Unparseable input is rare and listed by the API: a partial index stays tiny.
                database.execute_sql(
                    "CREATE INDEX IF NOT EXISTS raw_events_errors ON events.raw_events (received_at) WHERE NOT processed"
                )
                # A late correlator batch claims the oldest events not yet correlated (correlation/store.py):
                # without this index that reads every uncorrelated row kept for retention.
                database.execute_sql(
                    "CREATE INDEX IF NOT EXISTS processed_events_uncorrelated"
                    " ON events.processed_events (received_at) WHERE correlation_id IS NULL"
                )
                # Retention deletes correlations by age.
                database.execute_sql(
                    "CREATE INDEX IF NOT EXISTS event_correlations_created_at ON events.event_correlations (created_at)"
                )
                _make_audit_log_append_only_pg()
                _compress_with_lz4()
            else:
                _make_audit_log_append_only_sqlite()
    logger.info("Database schema is up to date (%d tables).", len(ALL_MODELS))

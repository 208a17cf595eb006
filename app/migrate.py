"""Migrations: create schemas, tables and indexes; idempotent (the ``release`` process type)."""

from __future__ import annotations

import logging

from playhouse.migrate import SchemaMigrator
from playhouse.migrate import migrate as migrate_columns

from .db import SCHEMAS, database, is_postgres, wrap_db_errors
from .models import ALL_MODELS

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
    logger.info("Database schema is up to date (%d tables).", len(ALL_MODELS))

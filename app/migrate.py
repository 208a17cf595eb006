"""Migrations: create schemas, tables and indexes; idempotent (the ``release`` process type)."""

from __future__ import annotations

import logging

from .db import SCHEMAS, database, is_postgres, wrap_db_errors
from .models import ALL_MODELS

logger = logging.getLogger(__name__)


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
            if is_postgres():
                # Unparseable input is rare and listed by the API: a partial index stays tiny.
                database.execute_sql(
                    "CREATE INDEX IF NOT EXISTS raw_events_errors ON events.raw_events (received_at) WHERE NOT processed"
                )
    logger.info("Database schema is up to date (%d tables).", len(ALL_MODELS))

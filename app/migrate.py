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
    logger.info("Database schema is up to date (%d tables).", len(ALL_MODELS))

"""What every command that reads the database does first: settings, logging, a small connection pool."""

from __future__ import annotations


def bootstrap_db() -> None:
    """Connect this process to the database of the settings (two connections: a command is one client)."""
    from ..config import load_settings
    from ..db import init_database
    from ..runtime import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level)
    init_database(settings.database_url, application_name="opsconductor-cli", max_connections=2)

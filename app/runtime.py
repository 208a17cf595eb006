"""Composition root: settings, logging, broker, database, actors — in that order."""

from __future__ import annotations

import logging
import sys

import dramatiq

from .config import Settings, load_settings, set_settings

logger = logging.getLogger(__name__)


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s",
    )
    # pika logs every failed connection attempt with a traceback; we log the outcome once, ourselves.
    logging.getLogger("pika").setLevel(logging.DEBUG if level == "DEBUG" else logging.CRITICAL)


def bootstrap(
    config: Settings | None = None,
    *,
    role: str,
    allow_in_process: bool = False,
    db_connections: int = 20,
) -> Settings:
    """Prepare this process: logging, the broker, the database, then the actors.

    Parameters:
      role: The process type (``web``, ``worker``, ``syslog`` ...), used as the
        database application name.
      allow_in_process: Accept Dramatiq's in-process broker (all-in-one mode only).
      db_connections: Size of the PostgreSQL pool of this process.
    """
    from .broker import setup_broker
    from .brokers.rabbitmq import declare_queues
    from .db import init_database

    config = config or load_settings()
    configure_logging(config.log_level)
    setup_broker(config, allow_in_process=allow_in_process)
    init_database(config.database_url, application_name=f"opsconductor-{role}", max_connections=db_connections)
    set_settings(config)
    import app.actors  # noqa: F401 - registers the actors on the broker just set

    declare_queues(dramatiq.get_broker())  # queues of another type stop the process here, with the way out

    return config


def broker() -> dramatiq.Broker:
    return dramatiq.get_broker()

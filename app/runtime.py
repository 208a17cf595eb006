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
    # dramatiq's workers configured the root logger (at INFO, into a pipe to their parent) before this runs,
    # which makes basicConfig a no-op there: LOG_LEVEL must still apply (each record costs a pipe write).
    logging.getLogger().setLevel(level)
    # pika logs every failed connection attempt with a traceback; we log the outcome once, ourselves. At DEBUG
    # it shows its connections (INFO), not each frame: a worker writing a record per frame into its pipe to
    # dramatiq's parent process spent most of its time blocked on that pipe (a correlator 30x slower).
    logging.getLogger("pika").setLevel(logging.INFO if level == "DEBUG" else logging.CRITICAL)


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

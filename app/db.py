"""The database: one peewee proxy, bound to PostgreSQL or SQLite at start.

Models declare the PostgreSQL schemas of the technical architecture
(``events``, ``rules``, ``autonomous``, ``ops``). SQLite has no schemas, so on
SQLite each table is named ``<schema>_<table>`` in the one file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
import peewee
from playhouse.db_url import parse as parse_db_url
from playhouse.pool import PooledPostgresqlDatabase

from .errors import DatabaseUnavailable

logger = logging.getLogger(__name__)

#: The database every model is bound to; :func:`init_database` points it at a real one.
database = peewee.DatabaseProxy()

#: Schemas created by the migration on PostgreSQL.
SCHEMAS = ("events", "rules", "autonomous", "ops")

#: Seconds a new PostgreSQL connection may take before it fails: without a bound, a database host
#: that stops answering (a network partition) holds a worker thread for the kernel's TCP timeout.
CONNECT_TIMEOUT_S = 10

#: Seconds the outage probe gives the database to accept a connection and answer ``SELECT 1``.
PROBE_TIMEOUT_S = 5

#: PostgreSQL errors that mean "the connection or server is in trouble", worth a retry.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (peewee.OperationalError, peewee.InterfaceError)

T = TypeVar("T")


class BaseModel(peewee.Model):
    class Meta:
        database = database
        legacy_table_names = False


class JSONField(peewee.Field):
    """JSON: ``jsonb`` on PostgreSQL, text on SQLite."""

    field_type = "JSON"

    def db_value(self, value: Any) -> Any:
        if value is None:
            return None
        return orjson.dumps(value).decode()

    def python_value(self, value: Any) -> Any:
        if value is None or not isinstance(value, str | bytes):
            return value  # psycopg2 already decoded jsonb
        return orjson.loads(value)


class TimestampField(peewee.DateTimeField):
    """An instant: ``timestamptz`` on PostgreSQL, naive UTC text on SQLite; always aware UTC in Python."""

    field_type = "TIMESTAMPTZ"

    def db_value(self, value: Any) -> Any:
        if isinstance(value, datetime):
            value = value.astimezone(UTC) if value.tzinfo else value
            if not isinstance(self.model._meta.database.obj, peewee.PostgresqlDatabase):
                return value.replace(tzinfo=None)
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        return super().db_value(value)

    def python_value(self, value: Any) -> Any:
        value = super().python_value(value)
        if isinstance(value, datetime):
            return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value


class _UtcPostgresqlDatabase(peewee.PostgresqlDatabase):
    """Every new connection's session runs in UTC.

    Set by a ``SET`` once the connection is open, not by a startup ``options`` parameter: PgBouncer
    before 1.20 (Debian 12 ships 1.18) refuses ``options``, and in transaction mode it tracks
    ``TimeZone`` per client and sets it again on whichever server connection a transaction gets.
    """

    def _connect(self) -> Any:
        conn = super()._connect()  # type: ignore[misc]  # autocommit: the SET is its own transaction
        with conn.cursor() as cursor:
            cursor.execute("SET TIME ZONE 'UTC'")
        return conn


class UtcPooledPostgresqlDatabase(PooledPostgresqlDatabase, _UtcPostgresqlDatabase):
    """The pool of :class:`PooledPostgresqlDatabase` making its new connections as :class:`_UtcPostgresqlDatabase` does."""


_FIELD_TYPES = {
    "postgres": {"JSON": "JSONB", "TIMESTAMPTZ": "TIMESTAMP WITH TIME ZONE", "UUID": "UUID"},
    "sqlite": {"JSON": "TEXT", "TIMESTAMPTZ": "DATETIME"},
}


def make_database(url: str, *, application_name: str = "opsconductor", max_connections: int = 20) -> peewee.Database:
    """Build (not connect) a peewee database from a ``DATABASE_URL``.

    Parameters:
      url: ``postgresql://user@host:port/db`` or ``sqlite:///relative/or/absolute/path.db``.
      application_name: Shown in ``pg_stat_activity`` so operators can tell processes apart.
      max_connections: Size of the PostgreSQL connection pool of this process. Under gevent
        every greenlet counts as a thread, so the pool bounds connections per process.
    """
    if url.startswith(("postgres://", "postgresql://")):
        kwargs = parse_db_url(url)
        kwargs.setdefault("application_name", application_name)
        kwargs.setdefault("connect_timeout", CONNECT_TIMEOUT_S)
        return UtcPooledPostgresqlDatabase(
            kwargs.pop("database"),
            field_types=_FIELD_TYPES["postgres"],
            max_connections=max_connections,
            stale_timeout=300,
            timeout=30,
            **kwargs,
        )
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        if path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        # WAL lets the web readers and the in-process worker write at the same time. Transactions begin
        # IMMEDIATE: a deferred one that read and then writes cannot wait for another writer (SQLite answers
        # "database is locked" at once instead of waiting busy_timeout), e.g. a heartbeat beside a request.
        return peewee.SqliteDatabase(
            path,
            lock_type="IMMEDIATE",
            field_types=_FIELD_TYPES["sqlite"],
            pragmas={"journal_mode": "wal", "synchronous": "normal", "foreign_keys": 1, "busy_timeout": 10000},
            check_same_thread=False,
        )
    raise ValueError(f"DATABASE_URL must start with postgresql:// or sqlite:///, got {url.split(':', 1)[0]!r}")


#: Every model class, registered by :mod:`app.models` when it is imported (this module imports no model).
_models: list[type[peewee.Model]] = []


def register_models(models: Iterable[type[peewee.Model]]) -> None:
    """Have the tables of ``models`` named for the database :func:`init_database` binds, now or later."""
    new = [model for model in models if model not in _models]
    _models.extend(new)
    if database.obj is not None:
        _name_tables(new, postgres=isinstance(database.obj, peewee.PostgresqlDatabase))


def init_database(url: str, *, application_name: str = "opsconductor", max_connections: int = 20) -> peewee.Database:
    """Point the global :data:`database` at ``url`` and adapt table names to its dialect."""
    db = make_database(url, application_name=application_name, max_connections=max_connections)
    database.initialize(db)
    _name_tables(_models, postgres=isinstance(db, peewee.PostgresqlDatabase))
    return db


def _name_tables(models: Iterable[type[peewee.Model]], *, postgres: bool) -> None:
    """PostgreSQL tables live in their schema; SQLite has none, so a table is ``<schema>_<table>``."""
    for model in models:
        meta = model._meta
        if not hasattr(meta, "pg_schema"):
            meta.pg_schema = meta.schema  # type: ignore[attr-defined]
            meta.base_table_name = meta.table_name  # type: ignore[attr-defined]
        if postgres:
            meta.schema = meta.pg_schema  # type: ignore[attr-defined]
            meta.table_name = meta.base_table_name  # type: ignore[attr-defined]
        else:
            meta.schema = None
            meta.table_name = f"{meta.pg_schema}_{meta.base_table_name}"  # type: ignore[attr-defined]


def is_postgres() -> bool:
    return isinstance(database.obj, peewee.PostgresqlDatabase)


@contextmanager
def wrap_db_errors() -> Iterator[None]:
    """Turn connection-level database errors into :class:`DatabaseUnavailable`.

    The connection is closed so that the next attempt opens a fresh one.
    """
    try:
        yield
    except TRANSIENT_ERRORS as e:
        try:
            db = database.obj
            if isinstance(db, PooledPostgresqlDatabase):
                db.manual_close()  # never hand a broken connection back to the pool
            elif not database.is_closed():
                database.close()
        except Exception:  # noqa: BLE001 - the connection is already broken
            logger.debug("Closing a broken database connection failed.", exc_info=True)
        raise DatabaseUnavailable(str(e).strip() or type(e).__name__) from e


def in_transaction(fn: Callable[[], T]) -> T:
    """Run ``fn`` in one transaction, wrapping connection errors."""
    with wrap_db_errors():
        database.connect(reuse_if_open=True)
        with database.atomic():
            return fn()


def release_connection() -> None:
    """Hand this thread's (greenlet's) connection back before a long wait that needs none.

    PERF: the executor waits on HTTP targets and programs for seconds; holding a pooled
    connection meanwhile would cap concurrent steps at the pool's size.
    """
    if database.obj is not None and not database.is_closed():
        database.close()


def reachable(*, timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    """Whether the database accepts a new connection and answers ``SELECT 1`` within about ``timeout_s``.

    The probe opens its own connection, outside the pool (a pooled connection may be one the
    outage broke), and never raises. SQLite is a file of this process: it has no outage to wait out.
    """
    db = database.obj
    if not isinstance(db, peewee.PostgresqlDatabase):
        return True
    import psycopg2

    params = dict(db.connect_params)
    params["connect_timeout"] = max(1, round(timeout_s))
    try:
        conn = psycopg2.connect(dbname=db.database, **params)
    except psycopg2.Error as e:
        logger.debug("Database probe: no connection (%s).", str(e).strip())
        return False
    try:
        with conn.cursor() as cursor:
            # SET LOCAL, not a startup option: it holds through PgBouncer in transaction mode too.
            cursor.execute("SET LOCAL statement_timeout = %s", (int(timeout_s * 1000),))
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except psycopg2.Error as e:
        logger.debug("Database probe: no answer (%s).", str(e).strip())
        return False
    finally:
        conn.close()


def discard_idle_connections() -> None:
    """Close the pooled connections nobody holds, so that none an outage broke is handed out again.

    Called when an outage begins and ends: after a restart or a partition every idle pooled
    connection is dead, and each would otherwise fail one message (and spend one of its retries).
    """
    db = database.obj
    if isinstance(db, PooledPostgresqlDatabase):
        db.close_idle()


def uuid_in(field: peewee.Field, ids: list[str]) -> peewee.Expression:
    """``field IN ids`` for UUID columns.

    PERF: on PostgreSQL the ids go as one array parameter (``= ANY(%s::uuid[])``); building
    hundreds of placeholders costs more than the query itself.
    """
    if is_postgres():
        return field == peewee.fn.ANY(peewee.Cast(peewee.Value(list(ids), unpack=False), "uuid[]"))
    return field.in_(list(ids))

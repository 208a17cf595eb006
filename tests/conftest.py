"""Fixtures per backend, as Dramatiq's conftest does: a stub broker and SQLite for fast
tests, a real RabbitMQ and PostgreSQL (and real gunicorn/dramatiq processes) for integration."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import dramatiq
import freezegun
import peewee
import pytest
from dramatiq.brokers.stub import StubBroker

from app.config import Settings
from app.db import database, init_database
from app.migrate import migrate
from app.models import ALL_MODELS
from tests import processes, services

# freezegun looks at every loaded module's attributes when time is frozen; the kubernetes client's
# lazy attributes then import its pydantic models, whose schemas cannot hold a FakeDatetime.
freezegun.configure(extend_ignore_list=["kubernetes"])


def _truncate() -> None:
    if isinstance(database.obj, peewee.PostgresqlDatabase):
        names = [f"{m._meta.schema}.{m._meta.table_name}" for m in ALL_MODELS]
        schemas = sorted({m._meta.schema for m in ALL_MODELS})
        with database.atomic():
            # The audit log refuses TRUNCATE (app/migrate.py); a superuser's replica role skips triggers.
            database.execute_sql("SET LOCAL session_replication_role = replica")
            # PERF: TRUNCATE costs ~20 ms a table even when empty (new files for the table and its indexes):
            # only the tables holding rows are truncated (CASCADE: with the empty ones referring to them), and
            # every sequence restarts, as TRUNCATE ... RESTART IDENTITY of them all did.
            probe = " UNION ALL ".join(f"(SELECT {i} FROM {name} LIMIT 1)" for i, name in enumerate(names))
            full = [names[row[0]] for row in database.execute_sql(probe).fetchall()]
            if full:
                database.execute_sql(f"TRUNCATE {', '.join(full)} RESTART IDENTITY CASCADE")
            database.execute_sql(
                "SELECT setval(s.seqrelid, s.seqstart, false) FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid"
                " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ANY(%s)",
                (schemas,),
            )
    else:
        for model in ALL_MODELS:
            model.delete().execute()


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory) -> Path:
    """A SQLite database migrated once for the session; each test gets a copy (migrating takes ~100 ms)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    db = init_database(f"sqlite:///{path}")
    migrate()
    db.close()  # (checkpoints the WAL into the file)
    return path


@pytest.fixture
def sqlite_db(tmp_path, _sqlite_template) -> Iterator[peewee.Database]:
    """A fresh SQLite database (the embedded default) with the schema migrated."""
    shutil.copyfile(_sqlite_template, tmp_path / "test.db")
    db = init_database(f"sqlite:///{tmp_path}/test.db")
    yield db
    db.close()


@pytest.fixture(scope="session")
def pg_url() -> str:
    services.require("PostgreSQL", services.BASE_DATABASE_URL, 5432)
    return services.recreate_test_database()


#: The shape of the migrated PostgreSQL schema (columns, indexes, triggers), once the session migrated it.
_migrated: dict[str, tuple[int, ...]] = {}


def _schema_shape() -> tuple[int, ...]:
    schemas = sorted({m._meta.schema for m in ALL_MODELS})
    row = database.execute_sql(
        "SELECT (SELECT count(*) FROM information_schema.columns WHERE table_schema = ANY(%(s)s)),"
        " (SELECT count(*) FROM pg_indexes WHERE schemaname = ANY(%(s)s)),"
        " (SELECT count(*) FROM information_schema.triggers WHERE trigger_schema = ANY(%(s)s))",
        {"s": schemas},
    ).fetchone()
    return tuple(row)


@pytest.fixture
def pg_db(pg_url) -> Iterator[peewee.Database]:
    """The tests' PostgreSQL database, migrated and emptied before each test."""
    db = init_database(pg_url, application_name="opsconductor-tests", max_connections=4)
    # PERF: migrating takes ~0.4 s; it runs again only when a test changed the schema (test_migrate drops columns)
    if _migrated.get(pg_url) is None or _schema_shape() != _migrated[pg_url]:
        migrate()
        _migrated[pg_url] = _schema_shape()
    _truncate()
    yield db
    if not db.is_closed():
        db.close()


@pytest.fixture(params=["sqlite", "postgres"])
def any_db(request) -> Iterator[peewee.Database]:
    """Each storage test runs on both databases the product supports."""
    yield request.getfixturevalue("sqlite_db" if request.param == "sqlite" else "pg_db")


@pytest.fixture
def settings() -> Settings:
    return Settings(dedup_window_seconds=300)


@pytest.fixture
def stub_broker(settings) -> Iterator[StubBroker]:
    """Dramatiq's in-process broker with the actors registered on it."""
    from app.broker import setup_broker
    from app.config import set_settings

    broker = setup_broker(settings, allow_in_process=True)
    set_settings(settings)
    import app.actors.correlator as correlator
    import app.actors.decider as decider
    import app.actors.evaluator as evaluator
    import app.actors.executor as executor
    import app.actors.expirer as expirer
    import app.actors.normalizer as normalizer
    import app.actors.rollbacker as rollbacker

    for module in (correlator, decider, evaluator, executor, expirer, normalizer, rollbacker):
        for name in dir(module):
            obj = getattr(module, name)
            if isinstance(obj, dramatiq.Actor):
                obj.broker = broker
                broker.declare_actor(obj)
    yield broker
    broker.flush_all()
    broker.close()


@pytest.fixture
def stub_worker(stub_broker) -> Iterator[dramatiq.Worker]:
    worker = dramatiq.Worker(stub_broker, worker_timeout=100, worker_threads=2)
    worker.start()
    yield worker
    worker.stop()


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "own_stack: the module's stack runs processes of its own (not shared)")


@pytest.fixture(scope="session")
def stacks() -> Iterator[processes.Stacks]:
    """The integration and browser tests' stacks, shared by the modules whose environment is the same."""
    shared = processes.Stacks()
    yield shared
    shared.close()


@pytest.fixture(scope="module", autouse=True)
def _no_stack_but_its_own(request, stacks) -> None:
    """A module that does not use the shared stack stops it first: its worker consumes every queue."""
    shares = any(
        "stack" in item.fixturenames
        for item in request.session.items
        if getattr(item, "module", None) is request.module
    )
    if not shares or request.node.get_closest_marker("own_stack") is not None:
        stacks.close()


@pytest.fixture(scope="session", autouse=True)
def _reap_retired_processes() -> Iterator[None]:
    """The processes fixtures asked to stop without waiting (:func:`tests.processes.retire`) have exited."""
    yield
    processes.reap_retired()


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    services.require("RabbitMQ", services.RABBITMQ_URL, 5672)
    return services.RABBITMQ_URL


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)

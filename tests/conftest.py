"""Fixtures per backend, as Dramatiq's conftest does: a stub broker and SQLite for fast
tests, a real RabbitMQ and PostgreSQL (and real gunicorn/dramatiq processes) for integration."""

from __future__ import annotations

from collections.abc import Iterator

import dramatiq
import freezegun
import peewee
import pytest
from dramatiq.brokers.stub import StubBroker

from app.config import Settings
from app.db import database, init_database
from app.migrate import migrate
from app.models import ALL_MODELS
from tests import services

# freezegun looks at every loaded module's attributes when time is frozen; the kubernetes client's
# lazy attributes then import its pydantic models, whose schemas cannot hold a FakeDatetime.
freezegun.configure(extend_ignore_list=["kubernetes"])


def _truncate() -> None:
    if isinstance(database.obj, peewee.PostgresqlDatabase):
        names = ", ".join(f"{m._meta.schema}.{m._meta.table_name}" for m in ALL_MODELS)
        with database.atomic():
            # The audit log refuses TRUNCATE (app/migrate.py); a superuser's replica role skips triggers.
            database.execute_sql("SET LOCAL session_replication_role = replica")
            database.execute_sql(f"TRUNCATE {names} RESTART IDENTITY")
    else:
        for model in ALL_MODELS:
            model.delete().execute()


@pytest.fixture
def sqlite_db(tmp_path) -> Iterator[peewee.Database]:
    """A fresh SQLite database (the embedded default) with the schema migrated."""
    db = init_database(f"sqlite:///{tmp_path}/test.db")
    migrate()
    yield db
    db.close()


@pytest.fixture(scope="session")
def pg_url() -> str:
    services.require("PostgreSQL", services.BASE_DATABASE_URL, 5432)
    return services.recreate_test_database()


@pytest.fixture
def pg_db(pg_url) -> Iterator[peewee.Database]:
    """The tests' PostgreSQL database, migrated and emptied before each test."""
    db = init_database(pg_url, application_name="opsconductor-tests", max_connections=4)
    migrate()
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


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    services.require("RabbitMQ", services.RABBITMQ_URL, 5672)
    return services.RABBITMQ_URL


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)

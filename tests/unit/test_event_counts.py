"""The events page's count: exact up to a bound, PostgreSQL's estimate past it (flagged), on both databases;
``has_more`` exact either way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.db import database, in_transaction, is_postgres
from app.events import query
from app.events.query import EventFilter, list_events
from app.ids import uuid7
from app.models import ProcessedEvent


def _store(count: int, host: str) -> None:
    now = datetime.now(UTC)
    for i in range(count):
        ProcessedEvent.create(id=uuid7(), source_type="webhook", event_type="alert", severity="high", source_host=host,
                              title=f"event {i}", occurred_at=now - timedelta(seconds=i), fingerprint=f"f{host}{i}")  # fmt: skip


@pytest.fixture
def history(any_db, monkeypatch):
    """40 events on web-01 and 3 on db-01, counted exactly up to 10."""
    monkeypatch.setattr(query, "EXACT_COUNT_LIMIT", 10)
    _store(40, "web-01")
    _store(3, "db-01")
    if is_postgres():
        database.execute_sql("ANALYZE events.processed_events")  # the statistics the estimate reads
    return any_db


def test_a_count_within_the_bound_is_exact_and_has_more_is_exact(history):
    few = list_events(EventFilter(host="db-01", limit=2))
    assert (few["total_count"], few["total_count_estimated"], few["has_more"]) == (3, False, True)
    last = list_events(EventFilter(host="db-01", limit=2, offset=2))
    assert (len(last["events"]), last["has_more"]) == (1, False)


def test_past_the_bound_postgresql_estimates_and_says_so(history):
    page = list_events(EventFilter(limit=5, offset=40))
    assert len(page["events"]) == 3 and page["has_more"] is False
    if is_postgres():
        # the planner's figure from fresh statistics, never below what was seen counting
        assert page["total_count_estimated"] is True and 11 <= page["total_count"] <= 86
    else:
        # the embedded database counts them all
        assert (page["total_count"], page["total_count_estimated"]) == (43, False)
    assert in_transaction(lambda: ProcessedEvent.select().count()) == 43

"""API keys (hashing, roles, revocation seen after the cache TTL) and time-based queries, with freezegun."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time

from app.auth import KeyStore, create_key, hash_key
from app.errors import InvalidInput
from app.events.envelope import make_item
from app.events.query import EventFilter, analytics, list_events
from app.events.store import store_batch
from app.http.params import parse_duration
from app.ids import new_id
from app.models import ApiKey


def test_keys_are_stored_hashed_and_carry_their_role(any_db):
    key = create_key(role="operator", name="ops")
    row = ApiKey.get(ApiKey.name == "ops")
    assert row.key_hash == hash_key(key) and key not in str(row.__data__)
    principal = KeyStore().verify(key)
    assert principal is not None and principal.may("operate") and principal.may("read") and not principal.may("admin")
    with pytest.raises(ValueError):
        create_key(role="root", name="x")


def test_a_revoked_key_stops_working_once_the_cache_expires(any_db):
    key = create_key(role="ingest", name="sender")
    with freeze_time("2026-11-23 12:00:00") as clock:
        keys = KeyStore(ttl_s=30)
        assert keys.verify(key) is not None
        ApiKey.update(revoked_at=datetime.now(UTC)).execute()
        clock.tick(10)
        assert keys.verify(key) is not None  # still cached
        clock.tick(31)
        assert keys.verify(key) is None


def test_analytics_counts_only_the_time_range(any_db):
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)

    def at(hours_ago: float, severity: str) -> dict:
        t = (now - timedelta(hours=hours_ago)).timestamp()
        payload = {"source": "x", "severity": severity, "title": f"t{hours_ago}", "timestamp": t}
        return make_item(id=new_id(), source_type="webhook", received_at=t, payload=payload)

    store_batch([at(1, "high"), at(2, "high"), at(3, "low"), at(30, "critical")], window_s=300)
    with freeze_time(now):
        result = analytics(timerange=parse_duration("24h", field="timerange"), groupby="severity")
    assert {g["key"]: g["count"] for g in result["groups"]} == {"high": 2, "low": 1}
    page = list_events(EventFilter(start_time=now - timedelta(hours=2, minutes=30)))
    assert [e["severity"] for e in page["events"]] == ["high", "high"]


@pytest.mark.parametrize("bad", [{"limit": 0}, {"limit": 1001}, {"offset": -1}, {"severity": ["loud"]}])
def test_bad_query_parameters_are_refused(bad):
    with pytest.raises(InvalidInput):
        EventFilter(**bad)

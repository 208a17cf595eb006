"""Storing micro-batches: idempotent, de-duplicated within the window, nothing lost — on SQLite and PostgreSQL."""

from __future__ import annotations

import time

from app.events.envelope import make_item
from app.events.store import store_batch
from app.ids import new_id
from app.models import ProcessedEvent, RawEvent

T0 = 1_790_000_000.0  # a fixed instant, in epoch seconds


def webhook(title: str = "CPU high", *, host: str = "web-01", at: float = T0, **extra) -> dict:
    payload = {"source": "nagios", "severity": "high", "host": host, "title": title, **extra}
    return make_item(id=new_id(), source_type="webhook", received_at=at, payload=payload, source="10.0.0.1")


def test_a_new_event_is_stored_raw_and_processed(any_db):
    # Given one event
    item = webhook()
    # When it is stored
    result = store_batch([item], window_s=300)
    # Then one raw row and one processed event with the edge's id exist
    assert result.inserted == [item["id"]]
    event = ProcessedEvent.get_by_id(item["id"])
    assert (event.severity, event.source_host, event.title, event.occurrences) == ("high", "web-01", "CPU high", 1)
    assert RawEvent.get_by_id(item["id"]).processed is True


def test_redelivering_a_batch_stores_nothing_twice(any_db):
    # Given a batch that was stored
    batch = [webhook("a"), webhook("b")]
    store_batch(batch, window_s=300)
    # When the same message is delivered again
    again = store_batch(batch, window_s=300)
    # Then nothing new is stored and occurrences are not bumped, yet the ids go on to the correlator
    assert again.new_raw == 0 and again.inserted == [] and again.folded == []
    assert RawEvent.select().count() == 2
    assert [e.occurrences for e in ProcessedEvent.select()] == [1, 1]
    assert sorted(again.event_ids) == sorted(i["id"] for i in batch)


def test_a_duplicate_inside_the_window_is_folded_into_the_first(any_db):
    # Given an event, and the same event 100 s later (in another batch) and twice in a third batch
    first = webhook(at=T0)
    store_batch([first], window_s=300)
    store_batch([webhook(at=T0 + 100)], window_s=300)
    result = store_batch([webhook(at=T0 + 150), webhook(at=T0 + 160)], window_s=300)
    # Then there is one processed event with four occurrences, and every raw input is kept
    assert result.folded == [first["id"]]
    assert ProcessedEvent.select().count() == 1
    event = ProcessedEvent.get_by_id(first["id"])
    assert event.occurrences == 4
    assert abs(event.last_seen_at.timestamp() - (T0 + 160)) < 0.01
    assert RawEvent.select().count() == 4


def test_a_duplicate_after_the_window_starts_a_new_event(any_db):
    # Given an event last seen at T0
    store_batch([webhook(at=T0)], window_s=300)
    # When the same event comes 301 s later
    late = webhook(at=T0 + 301)
    result = store_batch([late], window_s=300)
    # Then it is a new event
    assert result.inserted == [late["id"]]
    assert ProcessedEvent.select().count() == 2


def test_the_window_slides_with_each_occurrence(any_db):
    # Given occurrences every 200 s with a 300 s window
    first = webhook(at=T0)
    for k in range(4):
        store_batch([webhook(at=T0 + 200 * k)] if k else [first], window_s=300)
    # Then they are all one event
    assert ProcessedEvent.get_by_id(first["id"]).occurrences == 4


def test_duplicates_inside_one_batch_are_folded(any_db):
    # Given a batch with the same event three times and another one
    batch = [webhook(at=T0), webhook(at=T0 + 1), webhook(at=T0 + 2), webhook("disk full", at=T0)]
    # When it is stored
    result = store_batch(batch, window_s=300)
    # Then there are two events, the first with three occurrences
    assert sorted(result.inserted) == sorted([batch[0]["id"], batch[3]["id"]])
    assert ProcessedEvent.get_by_id(batch[0]["id"]).occurrences == 3


def test_source_fingerprints_feed_deduplication(any_db):
    # Given two events with different titles but the same source fingerprint
    a = webhook("first wording", fingerprint="abc")
    b = webhook("second wording", fingerprint="abc", at=T0 + 5)
    store_batch([a], window_s=300)
    store_batch([b], window_s=300)
    # Then they are one event
    assert ProcessedEvent.select().count() == 1
    assert ProcessedEvent.get_by_id(a["id"]).occurrences == 2


def test_unparseable_input_is_kept_raw_with_its_error(any_db):
    # Given a batch with a good event and one whose severity is unknown
    good = webhook()
    bad = webhook(severity="apocalyptic")
    # When it is stored
    result = store_batch([good, bad], window_s=300)
    # Then the good one is an event and the bad one is raw input with a processing error naming the field
    assert result.errors == 1
    assert result.inserted == [good["id"]]
    raw = RawEvent.get_by_id(bad["id"])
    assert raw.processed is False
    assert "severity" in raw.processing_errors[0]


def test_an_unknown_source_type_is_kept_with_its_error(any_db):
    item = make_item(id=new_id(), source_type="carrier-pigeon", received_at=time.time(), payload={"coo": 1})
    store_batch([item], window_s=300)
    assert "carrier-pigeon" in RawEvent.get_by_id(item["id"]).processing_errors[0]


def test_operator_syslog_rules_from_the_database_apply_before_the_shipped_ones(any_db, tmp_path):
    import json

    import app.events.syslog_rule_store as rules

    # Given an operator's rule file imported into the database
    path = tmp_path / "rules.json"
    path.write_text(json.dumps([{"name": "backup", "pattern": "backup (?P<job>\\w+) failed", "event_type": "backup_failure",
                                 "severity": "high"}]))  # fmt: skip
    assert rules.import_rules(str(path)) == 1
    rules._cache = None
    # When a matching syslog line is stored
    item = make_item(id=new_id(), source_type="syslog", received_at=T0, payload="<13>Nov 23 10:00:00 h cron: backup nightly failed",
                     source="10.0.0.2")  # fmt: skip
    store_batch([item], window_s=300)
    rules._cache = None
    # Then the operator's rule decided its type, severity and fields
    event = ProcessedEvent.get_by_id(item["id"])
    assert (event.event_type, event.severity, event.event_data["job"]) == ("backup_failure", "high", "nightly")

"""The incidents a correlator process keeps between batches (app/correlation/held.py), on PostgreSQL: a batch sees
what any other writer changed since, a failed batch leaves nothing behind, and the grouping is the one without them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from app.correlation import held
from app.correlation import store as correlation_store
from app.correlation.held import HeldIncidents
from app.correlation.store import correlate_batch
from app.events.envelope import make_item
from app.events.store import store_batch
from app.ids import new_id
from app.models import EventCorrelation, Incident, ProcessedEvent
from tests.conftest import _truncate

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


class _NoCache:
    """What the correlator did before it kept incidents: read every candidate anew per batch."""

    def take(self, since, flap_since, *, similarity_floor):
        return held.candidates(since, flap_since), {}

    def put(self, rows) -> None:
        pass


@pytest.fixture(autouse=True)
def fresh_caches():
    correlation_store._topology = None
    correlation_store._held.clear()
    correlation_store._stood.clear()  # earlier tests' rehearsals that did not stand
    yield
    correlation_store._topology = None
    correlation_store._held.clear()


def event(host: str, service: str, title: str, t: float) -> dict:
    payload = {"source": "x", "host": host, "service": service, "severity": "high", "title": title}
    return make_item(id=new_id(), source_type="webhook", received_at=(T0 + timedelta(seconds=t)).timestamp(),
                     payload=payload)  # fmt: skip


def disk_full(host: str, t: float) -> dict:
    return event(host, "billing", "Disk /var 97% full", t)


def run(items: list[dict], *, meanwhile: Callable[[], None] | None = None) -> dict[str, str]:
    """Store and correlate ``items`` as one batch; ``meanwhile`` runs between its rehearsal and its decision."""
    store_batch(items, window_s=0)
    return correlate_batch([i["id"] for i in items], rehearsed=meanwhile)


def test_a_batch_sees_what_another_process_changed_since_its_last_batch(pg_db, monkeypatch):
    # Given an open incident this process's last batch saved (and keeps)
    incident = next(iter(run([disk_full("db-1", 0)]).values()))
    mine = correlation_store._held
    # When another correlator process places an event in it
    monkeypatch.setattr(correlation_store, "_held", HeldIncidents())
    other = disk_full("db-1", 30)
    assert run([other]) == {other["id"]: incident}
    monkeypatch.setattr(correlation_store, "_held", mine)
    # Then this process's next batch joins the incident as it is now
    item = disk_full("db-1", 60)
    assert run([item]) == {item["id"]: incident}
    assert Incident.get_by_id(incident).event_count == 3


def test_a_batch_sees_an_incident_an_operator_resolved(pg_db):
    # Given an open incident this process's last batch saved (and keeps)
    incident = next(iter(run([disk_full("db-1", 0)]).values()))
    # When an operator resolves it
    Incident.update(status="resolved").where(Incident.id == incident).execute()
    # Then the next matching event does not join it: it opens a new incident
    assert next(iter(run([disk_full("db-1", 60)]).values())) != incident
    assert Incident.get_by_id(incident).event_count == 1


def test_a_failed_batch_leaves_no_changed_incident_behind(pg_db, monkeypatch):
    # Given an incident of one event, kept by this process
    incident = next(iter(run([disk_full("db-1", 0)]).values()))
    item = disk_full("db-1", 60)
    store_batch([item], window_s=0)

    # When a batch places an event in it, then fails before it commits
    def fail(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(correlation_store.CorrelationDecision, "insert", fail)
    with pytest.raises(RuntimeError):
        correlate_batch([item["id"]])
    monkeypatch.undo()
    # Then its redelivery counts the event once
    assert correlate_batch([item["id"]]) == {item["id"]: incident}
    assert Incident.get_by_id(incident).event_count == 2


@pytest.mark.parametrize("rebuilt", [1_000, 0], ids=["index-kept", "index-rebuilt-often"])
def test_the_grouping_is_the_one_without_kept_incidents(pg_db, monkeypatch, rebuilt):
    # Given problems that come and go over two hours (each its own host, service and message), and noise,
    # correlated in batches of 20 events
    words = ["amber", "basalt", "cobalt", "dune", "ember", "fjord", "garnet", "harbor", "indigo", "jasper"]
    items = []
    for k, word in enumerate(words):
        host, service, start = f"{word}-db", f"{word}-api", k * 700.0
        items += [event(host, service, f"{word.capitalize()} queue stalled after {n} ms", start + n * 11.0)
                  for n in range(15)]  # fmt: skip
        items.append(event(f"{word}-{k}-x", f"{words[-1 - k]}-job", f"{word} {words[-1 - k]} check", start + 5.0))
    items.sort(key=lambda i: i["received_at"])

    def partition() -> tuple[frozenset[frozenset[str]], int, set[tuple[tuple[str, ...], str]]]:
        for k in range(0, len(items), 20):
            run(items[k : k + 20])
        groups: dict[str, set[str]] = {}
        for event_id, incident_id in ProcessedEvent.select(ProcessedEvent.id, ProcessedEvent.correlation_id).tuples():
            groups.setdefault(str(incident_id), set()).add(str(event_id))
        reasons = {
            (tuple(link.related_event_ids), link.correlation_reason)
            for link in EventCorrelation.select(EventCorrelation.related_event_ids, EventCorrelation.correlation_reason)
        }
        return frozenset(frozenset(g) for g in groups.values()), Incident.select().count(), reasons

    # When correlated with the incidents (and their index) kept between batches, and again with every candidate
    # read anew
    monkeypatch.setattr(held, "_MIN_REBUILD", rebuilt)
    kept = partition()
    _truncate()
    monkeypatch.setattr(correlation_store, "_held", _NoCache())
    anew = partition()
    # Then the incidents are the same, and so are the reasons of each join
    assert kept == anew
    assert len(kept[0]) >= 10


def test_a_kept_rows_keys_are_in_the_order_postgresql_gives_them_back(pg_db):
    # Given keys of every kind an incident holds, ASCII and not, of many lengths, in the order a batch added them
    import json
    import random

    from app.db import database

    rng = random.Random(7)
    alphabet = "abcxyz019:|@.-_ \x1féüß→中文😀"
    keys = {"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 24))): [[0.0, 1.0]] for _ in range(400)}
    keys.update({"t:disk <*> full@\x1fsshd": [], "h:web-1||": [], "f:é": [], "f:z": [], "f:ä": []})
    # When they are put in jsonb's order here, and PostgreSQL stores and returns them
    ordered = list(held.as_jsonb(keys))
    (returned,) = database.execute_sql("SELECT %s::jsonb::text", (json.dumps(keys),)).fetchone()
    # Then both orders are the same
    assert ordered == list(json.loads(returned)) and len(ordered) == len(keys)

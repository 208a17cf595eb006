"""A batch placed before the correlator's lock (app/correlation/rehearsal.py), on PostgreSQL: its placements stand
when no incident it relied on changed meanwhile, and it is placed again under the lock when one did (another
process's batch joined or opened one its events relate to): the incidents are those placing under the lock makes."""

from __future__ import annotations

import gc
import weakref
from collections import Counter, deque
from collections.abc import Callable
from datetime import timedelta

from app.correlation import rehearsal
from app.correlation import store as correlation_store
from app.correlation.held import HeldIncidents
from app.models import EventCorrelation, Incident, ProcessedEvent
from tests.unit.test_correlation_held import T0, event, fresh_caches, run  # noqa: F401 - fresh_caches: autouse here too


def disk_full(host: str, t: float) -> dict:
    return event(host, "billing", f"Disk /var {90 + int(t) // 10 % 10}% full", t)


def upstream(host: str, t: float) -> dict:
    return event(host, "shop", f"Nginx upstream timed out after {int(t) + 100} ms", t)


def another_process(items: list[dict]) -> Callable[[], None]:
    """Correlate ``items`` as another correlator process would: with incidents held of its own."""

    def correlate() -> None:
        mine = correlation_store._held, correlation_store._stood, correlation_store._since_rehearsal
        correlation_store._held, correlation_store._stood = HeldIncidents(), deque(maxlen=8)
        try:
            run(items)
        finally:
            correlation_store._held, correlation_store._stood, correlation_store._since_rehearsal = mine

    return correlate


def outcomes(work: Callable[[], object]) -> Counter[str]:
    before = Counter(rehearsal.OUTCOMES)
    work()
    return Counter(rehearsal.OUTCOMES) - before


def test_a_rehearsal_stands_when_only_unrelated_incidents_changed_meanwhile(pg_db):
    # Given an open incident of db-1's disk and one of web-7's upstream
    disk = next(iter(run([disk_full("db-1", 0)]).values()))
    web = next(iter(run([upstream("web-7", 0)]).values()))
    # When a batch of db-1's disk is rehearsed, and meanwhile another process places an event in web-7's incident
    item = disk_full("db-1", 60)
    placed: dict[str, str] = {}
    counted = outcomes(lambda: placed.update(run([item], meanwhile=another_process([upstream("web-7", 30)]))))
    # Then the rehearsal stood (both batches were decided before the lock), and the incidents are as placing makes them
    assert counted == {"rehearsed": 2}
    assert placed == {item["id"]: disk}
    assert Incident.get_by_id(disk).event_count == 2 and Incident.get_by_id(web).event_count == 2


def test_a_batch_is_placed_again_when_another_process_joined_its_incident_meanwhile(pg_db):
    # Given an open incident of db-1's disk
    disk = next(iter(run([disk_full("db-1", 0)]).values()))
    # When a batch of db-1's disk is rehearsed, and meanwhile another process places an event in that incident
    item, other = disk_full("db-1", 60), disk_full("db-1", 30)
    counted = outcomes(lambda: run([item], meanwhile=another_process([other])))
    # Then the batch was placed again under the lock, and the incident holds the three events, each counted once
    assert counted == {"rehearsed": 1, "conflict": 1}
    row = Incident.get_by_id(disk)
    assert row.event_count == 3 and row.last_event_at == T0 + timedelta(seconds=60)
    assert {str(c) for (c,) in ProcessedEvent.select(ProcessedEvent.correlation_id).tuples()} == {disk}
    assert EventCorrelation.select().count() == 2
    assert Incident.select().count() == 1


def test_a_batch_is_placed_again_when_another_process_opened_an_incident_its_events_join(pg_db):
    # Given no incident yet
    # When a batch of db-1's disk is rehearsed (it would open an incident), and meanwhile another process opens one
    # for db-1's disk from an earlier event
    item, other = disk_full("db-1", 60), disk_full("db-1", 30)
    counted = outcomes(lambda: run([item], meanwhile=another_process([other])))
    # Then the rehearsal did not stand (the new incident answers its question), and the batch joined that incident
    assert counted == {"rehearsed": 1, "conflict": 1}
    assert Incident.select().count() == 1
    assert ProcessedEvent.select().where(ProcessedEvent.correlation_id.is_null()).count() == 0
    assert Incident.get().event_count == 2


def test_a_process_whose_rehearsals_keep_not_standing_places_under_the_lock_and_probes_again(pg_db):
    # Given a process whose rehearsals mostly did not stand (another process kept joining their incidents)
    disk = next(iter(run([disk_full("db-1", 0)]).values()))
    for k in range(3):
        run([disk_full("db-1", 60 + 20 * k)], meanwhile=another_process([disk_full("db-1", 50 + 20 * k)]))
    assert list(correlation_store._stood) == [True, False, False, False]
    # When it correlates more batches
    counted = outcomes(lambda: [run([disk_full("db-1", 200 + t)]) for t in range(correlation_store.PROBE_EVERY)])
    # Then it placed them under the lock without rehearsing, but for one (which stood: nothing changed meanwhile)
    assert counted == {"skipped": correlation_store.PROBE_EVERY - 1, "rehearsed": 1}
    assert Incident.get_by_id(disk).event_count == 1 + 6 + correlation_store.PROBE_EVERY


def test_an_operator_change_meanwhile_to_a_relied_on_incident_is_seen(pg_db):
    # Given an open incident of db-1's disk
    disk = next(iter(run([disk_full("db-1", 0)]).values()))
    # When a batch of db-1's disk is rehearsed (it joins that incident), and meanwhile an operator resolves it
    item = disk_full("db-1", 60)

    def resolve() -> None:
        Incident.update(status="resolved").where(Incident.id == disk).execute()

    placed: dict[str, str] = {}
    counted = outcomes(lambda: placed.update(run([item], meanwhile=resolve)))
    # Then the batch was placed again, and opened a new incident (a resolved one takes no event)
    assert counted == {"conflict": 1}
    assert placed[item["id"]] != disk
    assert Incident.get_by_id(disk).event_count == 1


def test_a_rehearsal_is_freed_with_its_batch_not_left_to_the_garbage_collector(pg_db, monkeypatch):
    # Given an open incident, and a record of the rehearsals made
    run([disk_full("db-1", 0)])
    made: list[weakref.ref] = []
    init = rehearsal.Rehearsing.__init__

    def recorded(self, *args, **kwargs) -> None:
        init(self, *args, **kwargs)
        made.append(weakref.ref(self))

    monkeypatch.setattr(rehearsal.Rehearsing, "__init__", recorded)
    # When a batch is rehearsed and decided with the garbage collector off (only reference counts free objects)
    gc.disable()
    try:
        counted = outcomes(lambda: run([disk_full("db-1", 60)]))
    finally:
        gc.enable()
    # Then its rehearsal (and the facts of its events it asked about) is gone once the batch returned
    assert counted == {"rehearsed": 1}
    assert len(made) == 1 and made[0]() is None


def _merged_in_a_later_batch() -> tuple[frozenset[frozenset[tuple[str, str]]], int, list[tuple[str, str]], int]:
    """Hosts behind a switch: two problems of two hosts each, in three batches (incidents saved), then the
    switch's trap, which ties them together (a merge of saved incidents). Returns the incidents (as sets of
    events, by host and title), how many were merged, the merges' timeline entries and the links recorded."""
    from app.models import IncidentActivity
    from tests.correlation_items import LINK_DOWN, trap, webhook
    from tests.unit.test_grouping_causal import HOSTS, SWITCH, declare_three_hops

    declare_three_hops()
    down = [webhook(h, f"Host {h} is unreachable", 2 + i, service=f"svc{i}") for i, h in enumerate(HOSTS[:2])]
    slow = [webhook(h, f"Ping to {h} timed out", 6 + i, service=f"other{i}") for i, h in enumerate(HOSTS[2:4])]
    for batch in (down[:1], down[1:], slow, [trap(SWITCH, LINK_DOWN, 20)]):
        run(batch)
    groups: dict[str, set[tuple[str, str]]] = {}
    rows = ProcessedEvent.select(ProcessedEvent.correlation_id, ProcessedEvent.source_host, ProcessedEvent.title)
    for incident_id, host, title in rows.tuples():
        groups.setdefault(str(incident_id), set()).add((host, title))
    merged = Incident.select().where(Incident.merged_into.is_null(False)).count()
    entries = sorted((a.kind, a.text) for a in IncidentActivity.select().where(IncidentActivity.kind == "merge"))
    return frozenset(frozenset(g) for g in groups.values()), merged, entries, EventCorrelation.select().count()


def test_a_rehearsal_that_merges_saved_incidents_stands_and_merges_as_placing_under_the_lock(pg_db, monkeypatch):
    from tests.conftest import _truncate

    # Given incidents saved by earlier batches, which a later batch's event ties together (a merge)
    # When they are correlated with rehearsals, and again with every batch placed under the lock
    found: list[tuple[frozenset[frozenset[tuple[str, str]]], int, list[tuple[str, str]], int]] = []
    counted = outcomes(lambda: found.append(_merged_in_a_later_batch()))
    _truncate()
    correlation_store._held.clear()
    monkeypatch.setattr(correlation_store, "_rehearsing", lambda: False)
    locked = _merged_in_a_later_batch()
    # Then every rehearsal stood, the merge's included, and the incidents, merges, timelines and links are the same
    assert counted == {"rehearsed": 4}
    assert locked[1] >= 1 and len(locked[2]) == 2 * locked[1] and len(locked[0]) == 1
    assert found == [locked]

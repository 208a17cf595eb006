"""An incident's lifecycle on both databases: transitions allowed and refused, assignment, notes, merge,
split, the clock's auto-resolve, and how the correlator treats acknowledged and resolved incidents."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time

from app.correlation import store as correlation_store
from app.correlation.query import list_incidents
from app.correlation.store import correlate_batch
from app.errors import Conflict, InvalidInput, NotFound
from app.events.envelope import make_item
from app.events.store import store_batch
from app.ids import new_id
from app.incidents import lifecycle
from app.models import AuditLog, EventCorrelation, Incident, IncidentActivity, ProcessedEvent

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
ALICE = "key:7:alice"


@pytest.fixture(autouse=True)
def fresh_topology():
    correlation_store._topology = None
    yield
    correlation_store._topology = None


def webhook(host: str, title: str, minutes: float, severity: str = "high", status: str | None = None) -> dict:
    payload = {"source": "x", "host": host, "title": title, "severity": severity}
    if status:
        payload["status"] = status
    return make_item(id=new_id(), source_type="webhook", received_at=(T0 + timedelta(minutes=minutes)).timestamp(),
                     payload=payload)  # fmt: skip


def correlate(*items: dict) -> list[str]:
    """Store and correlate ``items``; the incident id of each."""
    store_batch(list(items), window_s=0)
    placed = correlate_batch([i["id"] for i in items])
    return [placed[i["id"]] for i in items]


def incident_on(host: str, *titles: str, minutes: float = 0) -> str:
    ids = correlate(*(webhook(host, t, minutes + k) for k, t in enumerate(titles or ("CPU high",))))
    assert len(set(ids)) == 1
    return ids[0]


def audited(action: str, incident_id: str) -> list[AuditLog]:
    return list(AuditLog.select().where((AuditLog.action == action) & (AuditLog.subject == f"incident:{incident_id}")))


def test_an_incident_is_acknowledged_resolved_closed_and_reopened_with_who_and_when(any_db):
    # Given an open incident
    incident_id = incident_on("web-01")
    # When an operator acknowledges, resolves and closes it, then reopens it
    acked = lifecycle.acknowledge(incident_id, actor=ALICE, comment="looking")
    resolved = lifecycle.resolve(incident_id, actor=ALICE)
    closed = lifecycle.close(incident_id, actor="cli", comment="post-mortem done")
    reopened = lifecycle.reopen(incident_id, actor=ALICE, comment="it is back")
    # Then each answer shows the new status and who moved it
    assert (acked["status"], acked["acknowledged_by"]) == ("acknowledged", "alice") and acked["acknowledged_at"]
    assert (resolved["status"], resolved["resolved_by"]) == ("resolved", "alice") and resolved["resolved_at"]
    assert closed["status"] == "closed" and closed["closed_at"]
    assert reopened["status"] == "open" and reopened["resolved_at"] is None and reopened["closed_at"] is None
    # And each change is one activity row and one audit row, in order
    moves = IncidentActivity.select().where(IncidentActivity.incident_id == incident_id).order_by(IncidentActivity.id)
    assert [(m.from_status, m.to_status, m.person, m.text) for m in moves] == [
        ("open", "acknowledged", "alice", "looking"),
        ("acknowledged", "resolved", "alice", None),
        ("resolved", "closed", "cli", "post-mortem done"),
        ("closed", "open", "alice", "it is back"),
    ]
    for action in ("incident.acknowledged", "incident.resolved", "incident.closed", "incident.reopened"):
        assert len(audited(action, incident_id)) == 1, action
    assert audited("incident.acknowledged", incident_id)[0].person == "alice"


@pytest.mark.parametrize(
    ("path", "verb"),
    [
        ([], "close"),
        ([], "reopen"),
        (["acknowledge"], "acknowledge"),
        (["acknowledge"], "close"),
        (["resolve"], "acknowledge"),
        (["resolve"], "resolve"),
        (["resolve", "close"], "close"),
        (["resolve", "close"], "resolve"),
        (["resolve", "close"], "acknowledge"),
    ],
)
def test_a_transition_outside_the_lifecycle_is_refused_naming_from_and_to(any_db, path, verb):
    # Given an incident moved along ``path``
    incident_id = incident_on("web-01")
    for step in path:
        getattr(lifecycle, step)(incident_id, actor=ALICE)
    before = Incident.get_by_id(incident_id).status
    # When a move the lifecycle does not allow is asked
    with pytest.raises(Conflict) as refused:
        getattr(lifecycle, verb)(incident_id, actor=ALICE)
    # Then it is refused, saying from where to where, and nothing changed or was audited
    to = lifecycle.TRANSITIONS[verb][1]
    assert f"from {before} to {to}" in str(refused.value)
    assert Incident.get_by_id(incident_id).status == before
    assert IncidentActivity.select().where(IncidentActivity.incident_id == incident_id).count() == len(path)


def test_a_flapping_incident_is_worked_like_an_open_one(any_db):
    incident_id = incident_on("web-01")
    Incident.update(status="flapping").where(Incident.id == incident_id).execute()
    assert lifecycle.acknowledge(incident_id, actor=ALICE)["status"] == "acknowledged"


def test_unknown_or_malformed_ids_are_not_found_and_bad_comments_are_named(any_db):
    with pytest.raises(NotFound):
        lifecycle.acknowledge("00000000-0000-0000-0000-000000000001", actor=ALICE)
    with pytest.raises(NotFound):
        lifecycle.resolve("not-an-id", actor=ALICE)
    incident_id = incident_on("web-01")
    with pytest.raises(InvalidInput) as bad:
        lifecycle.acknowledge(incident_id, actor=ALICE, comment=["not", "text"])  # type: ignore[arg-type]
    assert bad.value.field == "comment"
    # A blank comment is no comment
    lifecycle.acknowledge(incident_id, actor=ALICE, comment="   ")
    assert IncidentActivity.get(IncidentActivity.incident_id == incident_id).text is None


def test_incidents_are_listed_by_host_in_pages_counted_in_the_database(any_db):
    # Given three incidents on web-01 (one also touching web-010) and one on web-010 alone
    on_web01 = [incident_on("web-01", f"Disk {n} full", minutes=n * 120) for n in range(3)]
    other = incident_on("web-010", "Swap", minutes=400)

    def listed(host: str, offset: int, limit: int = 2) -> dict:
        return list_incidents(status=None, severity=None, host=host, since=None, limit=limit, offset=offset)

    # When they are listed by host two at a time
    first, second = listed("web-01", 0), listed("web-01", 2)
    # Then only web-01's are listed, newest first, the total counts them all and the pages join up
    assert (first["total_count"], first["has_more"], second["has_more"]) == (3, True, False)
    ids = [i["id"] for i in first["incidents"] + second["incidents"]]
    assert ids == list(reversed(on_web01)) and other not in ids
    assert [i["id"] for i in listed("web-010", 0)["incidents"]] == [other]


def test_an_incident_is_assigned_to_a_person_then_a_team_and_listed_by_assignee(any_db):
    # Given two incidents
    mine, other = incident_on("web-01"), incident_on("db-07", "Replica lag")
    # When one is assigned to alice, then to the database team
    assert lifecycle.assign(mine, assignee="alice", actor="cli")["assignee"] == "alice"
    assert lifecycle.assign(mine, assignee=" team-db ", actor=ALICE, comment="their replica")["assignee"] == "team-db"
    # Then the last assignment holds, and the list filters by it
    listed = list_incidents(status=None, severity=None, host=None, since=None, limit=10, offset=0, assignee="team-db")
    assert [i["id"] for i in listed["incidents"]] == [mine] and other != mine
    rows = audited("incident.assigned", mine)
    assert [r.details["assignee"] for r in rows] == ["alice", "team-db"] and rows[1].details["previous"] == "alice"
    # And a blank assignee, or a closed incident, is refused
    with pytest.raises(InvalidInput) as blank:
        lifecycle.assign(mine, assignee="  ", actor=ALICE)
    assert blank.value.field == "assignee"
    lifecycle.resolve(other, actor=ALICE)
    lifecycle.close(other, actor=ALICE)
    with pytest.raises(Conflict):
        lifecycle.assign(other, assignee="alice", actor=ALICE)


def test_notes_are_written_listed_and_audited_and_a_blank_one_is_refused(any_db):
    incident_id = incident_on("web-01")
    note = lifecycle.add_note(incident_id, text="Restarted nginx by hand", actor=ALICE)
    lifecycle.add_note(incident_id, text="Still slow", actor="cli")
    assert note["author"] == "alice" and note["text"] == "Restarted nginx by hand"
    assert [n["text"] for n in lifecycle.notes(incident_id)] == ["Restarted nginx by hand", "Still slow"]
    assert audited("incident_note.created", incident_id)[0].details == {"text": "Restarted nginx by hand"}
    with pytest.raises(InvalidInput) as blank:
        lifecycle.add_note(incident_id, text="", actor=ALICE)
    assert blank.value.field == "text"
    with pytest.raises(NotFound):
        lifecycle.notes("00000000-0000-0000-0000-000000000001")


def test_merging_moves_the_events_recounts_the_target_and_closes_the_sources(any_db):
    # Given an incident of two events on web-01 and one of three on db-07 (with a correlation record)
    target = incident_on("web-01", "CPU high", "Disk slow")
    source = incident_on("db-07", "Replica lag", "Replica lag again", "Replica stopped", minutes=1)
    assert EventCorrelation.select().where(EventCorrelation.correlation_id == source).count() == 2
    # When an operator merges the second into the first
    merged = lifecycle.merge(target, source_ids=[source], actor=ALICE, reason="same storage outage")
    # Then the target holds the five events, both hosts, and the correlation records
    assert merged["event_count"] == 5 and merged["hosts"] == ["db-07", "web-01"]
    assert ProcessedEvent.select().where(ProcessedEvent.correlation_id == target).count() == 5
    assert EventCorrelation.select().where(EventCorrelation.correlation_id == source).count() == 0
    # And the source is closed, merged into the target, with no event left
    row = Incident.get_by_id(source)
    assert (row.status, str(row.merged_into), row.event_count) == ("closed", target, 0)
    # And who and why are recorded on both sides
    assert audited("incident.merged", target)[0].details["sources"] == [source]
    assert audited("incident.merged", source)[0].details["merged_into"] == target
    assert audited("incident.merged", source)[0].details["text"] == "same storage outage"
    # And a merged incident cannot be worked any more, nor merged into itself
    with pytest.raises(Conflict):
        lifecycle.reopen(source, actor=ALICE)
    with pytest.raises(InvalidInput) as itself:
        lifecycle.merge(target, source_ids=[target], actor=ALICE, reason="x")
    assert itself.value.field == "source_ids"
    with pytest.raises(InvalidInput) as no_reason:
        lifecycle.merge(target, source_ids=[source], actor=ALICE, reason=" ")
    assert no_reason.value.field == "reason"


def test_merging_an_unknown_incident_is_not_found_and_a_bad_id_is_named(any_db):
    target = incident_on("web-01")
    with pytest.raises(NotFound):
        lifecycle.merge(target, source_ids=["00000000-0000-0000-0000-000000000001"], actor=ALICE, reason="x")
    with pytest.raises(InvalidInput) as bad:
        lifecycle.merge(target, source_ids=["nope"], actor=ALICE, reason="x")
    assert bad.value.field == "source_ids[0]"


def test_splitting_moves_the_chosen_events_to_a_new_open_incident(any_db):
    # Given one incident of three events on web-01, the first its root
    events = [webhook("web-01", t, k) for k, t in enumerate(["CPU high", "Disk slow", "Disk full"])]
    source = correlate(*events)[0]
    # When an operator splits off the first and the last
    new = lifecycle.split(source, event_ids=[events[0]["id"], events[2]["id"]], actor=ALICE, reason="disk is separate")
    # Then a new open incident holds those two, rooted at the oldest, and the source keeps the middle one
    assert new["status"] == "open" and new["event_count"] == 2 and new["root_event_id"] == events[0]["id"]
    assert ProcessedEvent.get_by_id(events[2]["id"]).correlation_id.hex == new["id"].replace("-", "")
    row = Incident.get_by_id(source)
    assert row.event_count == 1 and str(row.root_event_id) == events[1]["id"] and row.title == "Disk slow"
    assert audited("incident.split", source)[0].details["to"] == new["id"]
    assert audited("incident.split", new["id"])[0].details["from"] == source


def test_a_split_takes_only_the_incidents_events_and_leaves_it_at_least_one(any_db):
    events = [webhook("web-01", t, k) for k, t in enumerate(["CPU high", "Disk slow"])]
    source = correlate(*events)[0]
    stranger = webhook("db-07", "Replica lag", 0)
    correlate(stranger)
    with pytest.raises(InvalidInput) as foreign:
        lifecycle.split(source, event_ids=[stranger["id"]], actor=ALICE, reason="x")
    with pytest.raises(InvalidInput) as everything:
        lifecycle.split(source, event_ids=[e["id"] for e in events], actor=ALICE, reason="x")
    with pytest.raises(InvalidInput) as empty:
        lifecycle.split(source, event_ids=[], actor=ALICE, reason="x")
    assert foreign.value.field == everything.value.field == empty.value.field == "event_ids"
    assert Incident.get_by_id(source).event_count == 2


def test_the_clock_resolves_incidents_idle_longer_than_the_setting(any_db):
    # Given an incident whose last event came at T0, one acknowledged later, and a fresh one
    idle = incident_on("web-01")
    worked = incident_on("db-07", "Replica lag")
    fresh = incident_on("mail-1", "Queue stuck", minutes=200)
    with freeze_time(T0 + timedelta(minutes=100)):
        lifecycle.acknowledge(worked, actor=ALICE)
    # When the clock sweeps just before 240 minutes of idleness, then just after
    with freeze_time(T0 + timedelta(minutes=239)):
        assert lifecycle.auto_resolve(idle_minutes=240) == []
    with freeze_time(T0 + timedelta(minutes=241)):
        resolved = lifecycle.auto_resolve(idle_minutes=240)
    # Then only the incident idle for longer is resolved, by the clock, audited
    assert resolved == [idle]
    row = Incident.get_by_id(idle)
    assert (row.status, row.resolved_by, row.resolved_at) == ("resolved", "system:auto_resolve", T0 + timedelta(minutes=241))
    assert audited("incident.resolved", idle)[0].actor == "system:auto_resolve"
    assert Incident.get_by_id(worked).status == "acknowledged" and Incident.get_by_id(fresh).status == "open"
    # And the acknowledged one goes once idle long enough since it was acknowledged; 0 resolves nothing ever
    assert lifecycle.auto_resolve(idle_minutes=0, now=T0 + timedelta(days=30)) == []
    assert set(lifecycle.auto_resolve(idle_minutes=240, now=T0 + timedelta(minutes=341))) == {worked}


def test_an_acknowledged_incident_takes_new_events_and_a_resolved_one_does_not(any_db):
    # Given an acknowledged incident on web-01
    first = incident_on("web-01")
    lifecycle.acknowledge(first, actor=ALICE)
    # When a matching event arrives, then it joins the acknowledged incident
    assert correlate(webhook("web-01", "Disk slow", 2)) == [first]
    assert Incident.get_by_id(first).event_count == 2 and Incident.get_by_id(first).status == "acknowledged"
    # When the operator resolves it and the problem comes back, then a new incident opens
    lifecycle.resolve(first, actor=ALICE)
    (second,) = correlate(webhook("web-01", "CPU high again", 4))
    assert second != first and Incident.get_by_id(second).status == "open"
    assert Incident.get_by_id(first).event_count == 2 and Incident.get_by_id(first).status == "resolved"


def test_a_resolution_event_still_closes_an_acknowledged_incident(any_db):
    def alert(status: str, minutes: float) -> dict:
        payload = {"alert": {"status": status, "labels": {"alertname": "HighCPU", "instance": "web-3:9100"},
                             "fingerprint": "f00d", "annotations": {"summary": "CPU high on web-3"},
                             "startsAt": "2026-11-23T10:00:00Z"}, "group": {}}  # fmt: skip
        return make_item(id=new_id(), source_type="alertmanager", received_at=(T0 + timedelta(minutes=minutes)).timestamp(),
                         payload=payload)  # fmt: skip

    firing = alert("firing", 0)
    (incident_id,) = correlate(firing)
    lifecycle.acknowledge(incident_id, actor=ALICE)
    correlate(alert("resolved", 2))
    row = Incident.get_by_id(incident_id)
    assert row.status == "closed" and row.closed_by_event_id is not None and row.acknowledged_by == "alice"


def test_a_correlator_batch_never_writes_over_an_operators_columns(any_db):
    # Given an incident the correlator has loaded, then an operator assigned meanwhile
    incident_id = incident_on("web-01")
    stale = Incident.get_by_id(incident_id)
    lifecycle.assign(incident_id, assignee="alice", actor=ALICE)
    # When the correlator writes its (stale) row back
    correlation_store._save_incidents([stale])
    # Then the assignment stays
    assert Incident.get_by_id(incident_id).assignee == "alice"


def test_the_cli_works_an_incident_through_the_same_lifecycle(sqlite_db, tmp_path, monkeypatch, capsys):
    from app import cli

    # Given an open incident in the database the CLI is pointed at
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/test.db")
    incident_id = incident_on("web-01")
    # When an operator acknowledges, assigns, annotates it and tries to close it from the command line
    assert cli.main(["incidents", "ack", incident_id, "--comment", "on it"]) == 0
    assert cli.main(["incidents", "assign", incident_id, "team-web"]) == 0
    assert cli.main(["incidents", "note", incident_id, "restarted nginx"]) == 0
    refused = cli.main(["incidents", "close", incident_id])
    assert cli.main(["incidents", "list", "--assignee", "team-web"]) == 0
    # Then the changes are the lifecycle's, by the actor "cli", and the illegal one is refused with its reason
    out, err = capsys.readouterr()
    assert refused == 1 and "from acknowledged to closed" in err
    assert f"{incident_id}\tacknowledged\thigh\t1\tteam-web\tCPU high" in out
    row = Incident.get_by_id(incident_id)
    assert (row.status, row.assignee, row.acknowledged_by) == ("acknowledged", "team-web", "cli")
    assert [n["text"] for n in lifecycle.notes(incident_id)] == ["restarted nginx"]


def test_an_acknowledgement_waits_for_a_correlator_batch_in_flight_and_is_not_lost(pg_db):
    import threading
    import time

    from app.db import database, in_transaction

    # Given an open incident, and a correlator batch that has read it under its lock
    incident_id = incident_on("web-01")
    read, answered = threading.Event(), threading.Event()
    done: dict[str, object] = {}

    def batch() -> None:
        def work() -> None:
            correlation_store.hold_lock()
            stale = Incident.get_by_id(incident_id)
            read.set()
            time.sleep(0.5)  # the operator's request arrives meanwhile
            stale.event_count += 1
            correlation_store._save_incidents([stale])

        in_transaction(work)
        database.close()

    def operator() -> None:
        read.wait(10)
        done["answer"] = lifecycle.acknowledge(incident_id, actor=ALICE)
        answered.set()
        database.close()

    threads = [threading.Thread(target=batch), threading.Thread(target=operator)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    # Then the acknowledgement came after the batch, and neither change was lost
    assert answered.is_set()
    row = Incident.get_by_id(incident_id)
    assert (row.status, row.event_count) == ("acknowledged", 2)

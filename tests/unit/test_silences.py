"""Silences: what their matchers take in, their period (pending, active, expired), validation that
names the field, expiry that keeps history, their audit rows, and the evaluator skipping the events
they silence (both databases, the clock frozen by freezegun)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time

from app import silences
from app.errors import Conflict, InvalidInput, NotFound
from app.events.envelope import make_item
from app.events.query import EventFilter, get_event, list_events
from app.events.store import store_batch
from app.ids import new_id
from app.models import AuditLog, Incident, ProcessedEvent, RuleExecution, TriggerRule
from app.rules.evaluation import RuleCache, columns_of, evaluate, replay
from app.rules.triggers import parse_trigger
from app.silences.matching import Matcher, SilenceSet, Window, escape, parse_matcher_text, parse_matchers

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
EVENT = {"host": "web-01", "service": "nginx", "event_type": "threshold_breach", "severity": "high",
         "source": "nagios", "source_type": "webhook", "tags": ["prod", "team-web"]}  # fmt: skip


def takes_in(matcher: dict, event: dict = EVENT) -> bool:
    return Matcher(**matcher).matches(event)


def body(*matchers: dict, starts: datetime | None = None, ends: datetime = NOW + HOUR, comment: str = "deploy") -> dict:
    shown = {"matchers": list(matchers) or [{"name": "host", "value": "web-01"}], "ends_at": ends.isoformat(),
             "comment": comment}  # fmt: skip
    if starts is not None:
        shown["starts_at"] = starts.isoformat()
    return shown


# What matchers take in, without a database


def test_equality_matches_the_whole_value_ignoring_case():
    assert takes_in({"name": "host", "value": "web-01"})
    assert takes_in({"name": "host", "value": "WEB-01"})
    assert not takes_in({"name": "host", "value": "web-0"})
    assert takes_in({"name": "severity", "value": "high"}) and takes_in({"name": "source", "value": "Nagios"})
    assert takes_in({"name": "event_type", "value": "threshold_breach"})
    assert takes_in({"name": "source_type", "value": "webhook"}) and takes_in({"name": "service", "value": "nginx"})


def test_a_regex_must_match_the_whole_value_and_keeps_its_case():
    assert takes_in({"name": "host", "value": "web-.*", "is_regex": True})
    assert not takes_in({"name": "host", "value": "web", "is_regex": True})  # full match, not a search
    assert not takes_in({"name": "host", "value": "eb-01", "is_regex": True})
    assert not takes_in({"name": "host", "value": "WEB-.*", "is_regex": True})
    assert takes_in({"name": "host", "value": "(?i)WEB-.*", "is_regex": True})
    assert takes_in({"name": "severity", "value": "critical|high", "is_regex": True})


def test_negation_inverts_equality_and_regex():
    assert not takes_in({"name": "host", "value": "web-01", "is_equal": False})
    assert takes_in({"name": "host", "value": "db-01", "is_equal": False})
    assert not takes_in({"name": "host", "value": "web-.*", "is_regex": True, "is_equal": False})
    assert takes_in({"name": "host", "value": "db-.*", "is_regex": True, "is_equal": False})


def test_a_tag_matcher_takes_in_an_event_when_any_tag_matches_and_its_negation_when_none_does():
    assert takes_in({"name": "tag", "value": "prod"})
    assert takes_in({"name": "tag", "value": "team-.*", "is_regex": True})
    assert not takes_in({"name": "tag", "value": "staging"})
    assert takes_in({"name": "tag", "value": "staging", "is_equal": False})
    assert not takes_in({"name": "tag", "value": "prod", "is_equal": False})
    assert takes_in({"name": "tag", "value": "test.*", "is_regex": True, "is_equal": False}, {**EVENT, "tags": []})


def test_a_field_the_event_lacks_is_the_empty_string():
    no_service = {**EVENT, "service": None}
    assert takes_in({"name": "service", "value": ""}, no_service)
    assert takes_in({"name": "service", "value": "nginx", "is_equal": False}, no_service)
    assert not takes_in({"name": "service", "value": ".+", "is_regex": True}, no_service)


def test_a_silence_takes_in_an_event_when_every_matcher_does_and_only_in_its_period():
    window = Window(7, NOW, NOW + HOUR, (Matcher("host", "web-01"), Matcher("severity", "low", is_equal=False)))
    found = SilenceSet([window], since=NOW - HOUR)
    assert found.match(EVENT, NOW) == 7
    assert found.match(EVENT, NOW + HOUR - timedelta(seconds=1)) == 7
    assert found.match(EVENT, NOW + HOUR) is None  # the end is not in it
    assert found.match(EVENT, NOW - timedelta(seconds=1)) is None
    assert found.match({**EVENT, "severity": "low"}, NOW) is None
    assert found.match({**EVENT, "received_at": "2026-11-23T09:30:00Z"}) == 7  # the event's own arrival


def test_the_first_silence_by_id_is_the_one_recorded():
    second = Window(9, NOW, NOW + HOUR, (Matcher("host", "web-01"),))
    first = Window(4, NOW, NOW + HOUR, (Matcher("tag", "prod"),))
    assert SilenceSet([second, first], since=NOW).match(EVENT, NOW) == 4


def test_matchers_written_as_on_the_command_line():
    assert parse_matcher_text("host=web-01") == {"name": "host", "value": "web-01", "is_regex": False, "is_equal": True}
    assert parse_matcher_text("service!=db")["is_equal"] is False
    assert parse_matcher_text("tag=~a|b") == {"name": "tag", "value": "a|b", "is_regex": True, "is_equal": True}
    assert parse_matcher_text("host!~web-.*") == {
        "name": "host",
        "value": "web-.*",
        "is_regex": True,
        "is_equal": False,
    }
    with pytest.raises(InvalidInput):
        parse_matcher_text("web-01")


def test_escaped_names_match_only_themselves():
    names = ["web-01.example.com", "a+b (primary)", "x|y"]
    matcher = Matcher("host", "|".join(escape(n) for n in names), is_regex=True)
    assert all(matcher.matches({"host": n}) for n in names)
    assert not matcher.matches({"host": "web-01Xexample.com"}) and not matcher.matches({"host": "x"})


@pytest.mark.parametrize(
    ("matchers", "field"),
    [
        (None, "matchers"),
        ([], "matchers"),
        ("host=web", "matchers"),
        ([{"name": "hostname", "value": "x"}], "matchers[0].name"),
        ([{"name": "host", "value": 3}], "matchers[0].value"),
        ([{"name": "host", "value": "x", "op": "="}], "matchers[0].op"),
        ([{"name": "host", "value": "x", "is_regex": "yes"}], "matchers[0].is_regex"),
        ([{"name": "host", "value": "x"}, {"name": "host", "value": "(a)\\1", "is_regex": True}], "matchers[1].value"),
        ([{"name": "host", "value": "(?=web)", "is_regex": True}], "matchers[0].value"),
        ([{"name": "host", "value": "a)|(b", "is_regex": True}], "matchers[0].value"),
        ([{"name": "host", "value": ".*", "is_regex": True}], "matchers"),
        ([{"name": "service", "value": "db", "is_equal": False}], "matchers"),
        ([{"name": "host", "value": ""}], "matchers"),
        ([{"name": "tag", "value": ".*", "is_regex": True}], "matchers"),
        ([{"name": "tag", "value": "test", "is_equal": False}], "matchers"),
    ],
)
def test_invalid_matchers_name_the_field(matchers, field):
    with pytest.raises(InvalidInput) as refused:
        parse_matchers(matchers)
    assert refused.value.field == field


def test_a_matcher_that_matches_the_empty_string_is_allowed_beside_one_that_does_not():
    parsed = parse_matchers([{"name": "host", "value": "web-.+", "is_regex": True},
                             {"name": "service", "value": "db", "is_equal": False}])  # fmt: skip
    assert [str(m) for m in parsed] == ['host=~"web-.+"', 'service!="db"']


# Stored silences (both databases)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"comment": ""}, "comment"),
        ({"comment": None}, "comment"),
        ({"ends_at": None}, "ends_at"),
        ({"ends_at": "tomorrow"}, "ends_at"),
        ({"starts_at": (NOW + 2 * HOUR).isoformat()}, "ends_at"),
        ({"ends_at": (NOW - HOUR).isoformat(), "starts_at": (NOW - 2 * HOUR).isoformat()}, "ends_at"),
        ({"createdBy": "me"}, "createdBy"),
        ({"matchers": [{"name": "host", "value": "[", "is_regex": True}]}, "matchers[0].value"),
    ],
)
def test_an_invalid_silence_is_refused_naming_the_field_and_nothing_is_stored(any_db, change, field):
    with freeze_time(NOW), pytest.raises(InvalidInput) as refused:
        silences.create({**body(), **change}, actor="cli")
    assert refused.value.field == field
    assert silences.list_silences()["total_count"] == 0


def test_a_silence_is_pending_then_active_then_expired(any_db):
    with freeze_time(NOW) as clock:
        # Given a silence from in an hour, for an hour
        created = silences.create(body(starts=NOW + HOUR, ends=NOW + 2 * HOUR), actor="key:1:ops")
        # Then its state follows the clock, and the listing by state with it
        assert created["state"] == "pending"
        assert [s["id"] for s in silences.list_silences(state="pending")["silences"]] == [created["id"]]
        clock.move_to(NOW + HOUR)
        assert silences.get(created["id"])["state"] == "active"
        assert silences.list_silences(state="pending")["total_count"] == 0
        assert silences.list_silences(state="active")["total_count"] == 1
        clock.move_to(NOW + 2 * HOUR)
        assert silences.get(created["id"])["state"] == "expired"
        assert silences.list_silences(state="expired")["total_count"] == 1
        assert silences.list_silences(state="active")["total_count"] == 0


def test_a_starts_at_defaults_to_now_and_an_unknown_state_is_refused(any_db):
    with freeze_time(NOW):
        created = silences.create(body(), actor="cli")
        assert created["starts_at"] == "2026-11-23T09:00:00Z" and created["state"] == "active"
        with pytest.raises(InvalidInput) as refused:
            silences.list_silences(state="muted")
        assert refused.value.field == "state"


def test_expiring_ends_a_silence_now_and_keeps_it_for_history(any_db):
    with freeze_time(NOW) as clock:
        created = silences.create(body(ends=NOW + 4 * HOUR), actor="key:1:ops")
        clock.move_to(NOW + HOUR)
        # When it is expired
        expired = silences.expire(created["id"], actor="key:2:lead")
        # Then it ended now and is still there, listed with the expired ones
        assert expired["state"] == "expired" and expired["ends_at"] == "2026-11-23T10:00:00Z"
        assert expired["expired_at"] == "2026-11-23T10:00:00Z" and expired["expired_by"] == "key:2:lead"
        assert silences.get(created["id"])["matchers"] == created["matchers"]
        assert [s["id"] for s in silences.list_silences(state="expired")["silences"]] == [created["id"]]
        # and it can be neither expired again nor changed
        with pytest.raises(Conflict):
            silences.expire(created["id"], actor="cli")
        with pytest.raises(Conflict):
            silences.update(created["id"], body(ends=NOW + 5 * HOUR), actor="cli")


def test_expiring_a_pending_silence_ends_it_before_it_began(any_db):
    with freeze_time(NOW):
        created = silences.create(body(starts=NOW + HOUR, ends=NOW + 2 * HOUR), actor="cli")
        expired = silences.expire(created["id"], actor="cli")
        assert expired["state"] == "expired" and expired["starts_at"] == expired["ends_at"] == "2026-11-23T09:00:00Z"


def test_an_update_replaces_the_matchers_and_takes_back_what_a_get_answers(any_db):
    with freeze_time(NOW):
        created = silences.create(body(), actor="cli")
        # When the GET's answer is sent back with other matchers (its read-only fields included)
        changed = {**created, "matchers": [{"name": "service", "value": "nginx"}], "comment": "wider"}
        updated = silences.update(created["id"], changed, actor="cli")
        # Then the matchers and comment are replaced, the rest kept
        assert updated["matchers"] == [{"name": "service", "value": "nginx", "is_regex": False, "is_equal": True}]
        assert updated["comment"] == "wider" and updated["created_by"] == "cli" and updated["id"] == created["id"]


def test_unknown_silences_are_not_found(any_db):
    with pytest.raises(NotFound):
        silences.get(424242)
    with pytest.raises(NotFound):
        silences.expire(424242, actor="cli")
    with freeze_time(NOW), pytest.raises(NotFound):
        silences.update(424242, body(), actor="cli")


def test_each_change_is_audited_with_who_and_what(any_db):
    with freeze_time(NOW):
        created = silences.create(body(), actor="cli")
        silences.update(created["id"], body(comment="still deploying"), actor="cli")
        silences.expire(created["id"], actor="cli")
    rows = list(AuditLog.select().where(AuditLog.subject == f"silence:{created['id']}").order_by(AuditLog.id))
    assert [r.action for r in rows] == ["silence.created", "silence.updated", "silence.expired"]
    assert all(r.actor == "cli" for r in rows)
    assert rows[0].details["after"]["comment"] == "deploy"
    assert rows[1].details["before"]["comment"] == "deploy" and rows[1].details["after"]["comment"] == "still deploying"
    assert rows[2].details["after"]["state"] == "expired"


def incident(hosts: list[str], services: list[str]) -> str:
    incident_id = uuid.uuid4()
    Incident.create(id=incident_id, status="open", title="nginx down", root_event_id=uuid.uuid4(), root_fingerprint="f",
                    severity="high", opened_at=NOW, last_event_at=NOW, hosts=hosts, services=services)  # fmt: skip
    return str(incident_id)


def test_a_silence_from_an_incident_matches_its_hosts_and_services(any_db):
    with freeze_time(NOW):
        # Given an incident on two hosts of one service
        incident_id = incident(["web-02", "web-01.example.com"], ["nginx"])
        # When it is silenced in one click
        created = silences.silence_from_incident(incident_id, actor="cli")
    # Then the silence runs two hours from now, names the incident, and takes in exactly its hosts' nginx events
    assert (created["starts_at"], created["ends_at"]) == ("2026-11-23T09:00:00Z", "2026-11-23T11:00:00Z")
    assert incident_id in created["comment"]
    found = SilenceSet(
        [Window(1, NOW, NOW + HOUR, tuple(Matcher(**m) for m in created["matchers"]))], since=NOW
    )  # fmt: skip
    assert found.match({"host": "web-01.example.com", "service": "nginx"}, NOW) == 1
    assert found.match({"host": "web-02", "service": "nginx"}, NOW) == 1
    assert found.match({"host": "web-01Xexample.com", "service": "nginx"}, NOW) is None
    assert found.match({"host": "web-02", "service": "mysql"}, NOW) is None


def test_a_silence_from_an_incident_refuses_what_it_cannot_build(any_db):
    with pytest.raises(NotFound):
        silences.silence_from_incident(str(uuid.uuid4()), actor="cli")
    with pytest.raises(NotFound):
        silences.silence_from_incident("not-a-uuid", actor="cli")
    with pytest.raises(InvalidInput) as refused:
        silences.silence_from_incident(incident(["web-01"], []), actor="cli", duration_minutes=0)
    assert refused.value.field == "duration_minutes"
    with pytest.raises(InvalidInput) as refused:
        silences.silence_from_incident(incident([], []), actor="cli")
    assert refused.value.field == "incident_id"


# The evaluator and silenced events (both databases)


def arrive(host: str) -> str:
    """One high-severity event of ``host`` arriving now (frozen time); returns its id."""
    item = make_item(id=new_id(), source_type="webhook", received_at=time.time(),
                     payload={"source": "t", "severity": "high", "host": host, "title": f"e {new_id()}"})  # fmt: skip
    store_batch([item], window_s=300)
    return item["id"]


def fired_for(event_id: str) -> int:
    return RuleExecution.select().where(RuleExecution.triggering_event_id == event_id).count()


def test_a_silenced_event_fires_no_rule_and_records_its_silence(any_db):
    with freeze_time(NOW) as clock:
        # Given a rule firing on every high event, and a silence of web-01
        TriggerRule.create(**columns_of(parse_trigger({"name": "r", "conditions": {"severity": "high"},
                                                       "max_triggers_per_hour": 100})))  # fmt: skip
        silence = silences.create(body(), actor="cli")
        # When events of web-01 and db-01 arrive and are evaluated
        clock.tick(60)
        quiet, loud = arrive("web-01"), arrive("db-01")
        evaluate([quiet, loud], cache=RuleCache(), silences=silences.SilenceCache())
    # Then the silenced one fired nothing and shows its silence; the other fired
    assert fired_for(quiet) == 0 and fired_for(loud) == 1
    assert get_event(uuid.UUID(quiet))["silenced_by"] == silence["id"]
    assert get_event(uuid.UUID(loud))["silenced_by"] is None
    # and the events' listing filters on it
    assert [e["id"] for e in list_events(EventFilter(silenced=True))["events"]] == [quiet]
    assert [e["id"] for e in list_events(EventFilter(silenced=False))["events"]] == [loud]
    # and a replay of the rule over them fires what the live evaluator fired
    assert (
        replay(parse_trigger({"name": "r", "conditions": {"severity": "high"}}), start=NOW, end=NOW + HOUR)["fired"]
        == 1
    )


def test_a_silence_applies_by_arrival_time_whenever_the_event_is_evaluated(any_db):
    with freeze_time(NOW) as clock:
        TriggerRule.create(**columns_of(parse_trigger({"name": "r", "conditions": {"severity": "high"},
                                                       "max_triggers_per_hour": 100})))  # fmt: skip
        # Given one event that arrived before a silence began and one that arrived during it
        before = arrive("web-01")
        clock.tick(60)
        silence = silences.create(body(ends=NOW + HOUR), actor="cli")
        clock.tick(60)
        during = arrive("web-01")
        # When both are evaluated after the silence was expired (a backlog)
        clock.tick(60)
        silences.expire(silence["id"], actor="cli")
        clock.tick(60)
        evaluate([before, during], cache=RuleCache(), silences=silences.SilenceCache())
    # Then the one that arrived during the silence stays silenced; the other fires
    assert fired_for(during) == 0 and fired_for(before) == 1
    assert ProcessedEvent.get_by_id(uuid.UUID(during)).silence_id == silence["id"]


def repeat(event_id: str) -> None:
    """A repeat of the stored event ``event_id`` arriving now: folded into it (same fingerprint, inside the window)."""
    row = ProcessedEvent.get_by_id(uuid.UUID(event_id))
    item = make_item(id=new_id(), source_type="webhook", received_at=time.time(),
                     payload={"source": "t", "severity": "high", "host": row.source_host, "title": row.title})  # fmt: skip
    store_batch([item], window_s=300)
    assert ProcessedEvent.get_by_id(uuid.UUID(event_id)).occurrences > 1


def test_a_repeat_is_judged_when_it_arrives_and_fires_once_the_silence_is_over(any_db):
    with freeze_time(NOW) as clock:
        TriggerRule.create(**columns_of(parse_trigger({"name": "r", "conditions": {"severity": "high"},
                                                       "max_triggers_per_hour": 100})))  # fmt: skip
        # Given an event silenced when it arrived
        silence = silences.create(body(ends=NOW + HOUR), actor="cli")
        clock.tick(60)
        event_id = arrive("web-01")
        evaluate([event_id], cache=RuleCache(), silences=silences.SilenceCache())
        assert get_event(uuid.UUID(event_id))["silenced_by"] == silence["id"] and fired_for(event_id) == 0
        # When it repeats after the silence was expired (the problem goes on)
        silences.expire(silence["id"], actor="cli")
        clock.tick(60)
        repeat(event_id)
        evaluate([event_id], cache=RuleCache(), silences=silences.SilenceCache())
    # Then it fires, as a firing alert notifies when its Alertmanager silence expires, and is no longer shown silenced
    assert fired_for(event_id) == 1
    assert get_event(uuid.UUID(event_id))["silenced_by"] is None


def test_with_no_rule_a_silenced_event_still_records_its_silence(any_db):
    with freeze_time(NOW) as clock:
        silence = silences.create(body(), actor="cli")
        clock.tick(1)
        event_id = arrive("web-01")
        assert evaluate([event_id], cache=RuleCache(), silences=silences.SilenceCache()) == []
    assert get_event(uuid.UUID(event_id))["silenced_by"] == silence["id"]


def test_a_backlog_older_than_the_cached_span_reads_its_own_silences(any_db):
    with freeze_time(NOW) as clock:
        rule_id = TriggerRule.create(**columns_of(parse_trigger({"name": "r", "conditions": {"severity": "high"}}))).id
        # Given an event that arrived during a silence that ended a day ago, never evaluated (an outage)
        silence = silences.create(body(ends=NOW + HOUR), actor="cli")
        clock.tick(60)
        event_id = arrive("web-01")
        clock.move_to(NOW + 25 * HOUR)
        cache = silences.SilenceCache()
        assert not cache.recent()  # nothing in force in the cached span
        # When it is evaluated now
        evaluate([event_id], cache=RuleCache(), silences=cache)
    # Then the silence of its arrival applied all the same
    assert get_event(uuid.UUID(event_id))["silenced_by"] == silence["id"]
    assert RuleExecution.select().where(RuleExecution.trigger_rule_id == rule_id).count() == 0

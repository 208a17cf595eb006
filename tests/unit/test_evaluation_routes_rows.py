"""Routing to agents matches the rows the rules' evaluation read (the batch is read once): those rows carry
what a second read would give — the routed fields and ``silenced_by`` as the silences decided for the
batch — so a silenced event goes to no agent; a batch the evaluation did not read is read for routing
(both databases, the clock frozen by freezegun)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from functools import partial

from freezegun import freeze_time

from app import silences
from app.agents import registry, routing
from app.db import in_transaction
from app.events.envelope import make_item
from app.events.query import event_json
from app.events.store import store_batch
from app.ids import new_id
from app.models import ProcessedEvent, TriggerRule
from app.rules.evaluation import RuleCache, columns_of, evaluate_batch, load_events
from app.rules.triggers import parse_trigger

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
#: The fields routes match on.
ROUTED = ("id", "host", "service", "event_type", "severity", "source", "source_type", "tags", "silenced_by")


def arrive(host: str, **payload) -> str:
    item = make_item(id=new_id(), source_type="webhook", received_at=time.time(),
                     payload={"source": "t", "severity": "high", "host": host, "title": f"e {new_id()}",
                              "tags": ["prod"], **payload})  # fmt: skip
    store_batch([item], window_s=300)
    return item["id"]


def routed_agent() -> None:
    route = routing.parse_routes([{"matchers": [{"name": "severity", "value": "high"},
                                                {"name": "tag", "value": "prod"}]}])  # fmt: skip
    in_transaction(lambda: registry.configure({"name": "spend", "kind": "cost", "enabled": True, "routes": route},
                                              actor="a", now=NOW))  # fmt: skip


def test_routing_matches_the_evaluated_rows_and_routes_no_silenced_event(any_db):
    with freeze_time(NOW) as clock:
        # Given a rule, a silence of web-01 and an agent routed the high events tagged prod
        TriggerRule.create(**columns_of(parse_trigger({"name": "r", "conditions": {"severity": "high"},
                                                       "max_triggers_per_hour": 100})))  # fmt: skip
        silence = silences.create({"matchers": [{"name": "host", "value": "web-01"}],
                                   "ends_at": (NOW + timedelta(hours=1)).isoformat(), "comment": "c"}, actor="cli")  # fmt: skip
        routed_agent()
        clock.tick(60)
        quiet, loud, low = arrive("web-01"), arrive("db-01"), arrive("db-02", severity="low", service="db")
        # When the batch is evaluated
        evaluated = evaluate_batch([quiet, loud, low], cache=RuleCache(), silences=silences.SilenceCache())
        # Then its rows hold, field for field, what reading the batch again for routing would (silences applied)
        assert evaluated.events is not None
        again = in_transaction(partial(routing.load_routable, [quiet, loud, low]))
        by_id = sorted(({k: e[k] for k in ROUTED} for e in evaluated.events), key=lambda e: e["id"])
        assert by_id == sorted(again, key=lambda e: e["id"])  # (they arrived at one frozen instant: any order)
        assert {e["id"]: e["silenced_by"] for e in evaluated.events} == {quiet: silence["id"], loud: None, low: None}
        # And routed on those rows, the agent is sent one run with the event it takes in, never the silenced one
        sent: list[tuple[str, str, dict]] = []
        names = routing.route(evaluated.events, cache=routing.RouteCache(), now=NOW,
                              send=lambda kind, name, trigger: sent.append((kind, name, trigger)))  # fmt: skip
    assert names == ["spend"] and sent == [("cost", "spend", {"trigger": "events", "event_ids": [loud]})]
    assert [f.event_id for f in evaluated.firings] == [loud]


def test_a_batch_the_evaluation_did_not_read_is_read_for_routing_only_when_an_agent_has_routes(any_db):
    with freeze_time(NOW):
        # Given no rule and no silence: the evaluation reads nothing
        event_id = arrive("db-01")
        evaluated = evaluate_batch([event_id], cache=RuleCache(), silences=silences.SilenceCache())
        assert evaluated.firings == [] and evaluated.events is None
        reads: list[list[str]] = []

        def read(ids: list[str]) -> list[dict]:
            reads.append(ids)
            return routing.read_routable(ids)

        send = lambda *a: None  # noqa: E731
        # When no agent has routes, routing reads nothing
        assert routing.route(partial(read, [event_id]), cache=routing.RouteCache(), now=NOW, send=send) == []
        assert reads == []
        # When one has, it reads the batch and routes it
        routed_agent()
        assert routing.route(partial(read, [event_id]), cache=routing.RouteCache(), now=NOW, send=send) == ["spend"]
    assert reads == [[event_id]]


def test_the_evaluator_reads_events_as_the_api_shows_them_at_whole_and_fractional_seconds(any_db):
    # Given events stored at a whole second, at a fraction of one, and at a millionth past one
    ids = []
    for received in (1_795_420_800.0, 1_795_420_800.25, 1_795_420_801.000001):
        item = make_item(id=new_id(), source_type="webhook", received_at=received,
                         payload={"source": "t", "host": "h1", "title": f"e {new_id()}", "metadata": {"v": 1}})  # fmt: skip
        ids += store_batch([item], window_s=300).event_ids
    # When the evaluator reads them (PostgreSQL writes their instants as text itself)
    read = {e["id"]: e for e in load_events(ids)}
    # Then each reads as the API shows it, instants included
    for event_id in ids:
        assert read[event_id] == event_json(ProcessedEvent.get_by_id(uuid.UUID(event_id)))
    assert [read[i]["received_at"][-10:] for i in ids] == ["T08:00:00Z", "00.250000Z", "01.000001Z"]

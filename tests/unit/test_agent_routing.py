"""Events routed to agents without a broker: the routes' validation, what they take in, one pending run
per agent however many events match, and the run that starts clearing it (SQLite)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.agents import registry, routing
from app.agents.runner import run_agent
from app.config import Settings
from app.db import in_transaction
from app.errors import InvalidInput
from app.models import AgentConfig

PROMETHEUS_K8S = {"matchers": [{"name": "source", "value": "prometheus"},
                               {"name": "tag", "value": "k8s-.*", "is_regex": True}]}  # fmt: skip


def _event(i: int, **fields):
    return {"id": f"e{i}", "source": "prometheus", "tags": ["k8s-prod"], "host": "web-01", "silenced_by": None,
            **fields}  # fmt: skip


@pytest.mark.parametrize(("routes", "field"), [
    ({"matchers": []}, "routes"),
    ([{"matchers": [{"name": "colour", "value": "red"}]}], "routes[0].matchers[0].name"),
    ([{"matchers": [{"name": "host", "value": "(", "is_regex": True}]}], "routes[0].matchers[0].value"),
    ([{"matchers": [{"name": "host", "value": ".*", "is_regex": True}]}], "routes[0].matchers"),
    ([{"matchers": [{"name": "host", "value": "a"}], "when": "now"}], "routes[0]"),
])  # fmt: skip
def test_bad_routes_are_refused_naming_the_field(routes, field):
    with pytest.raises(InvalidInput) as refused:
        registry.parse_config({"name": "k8s", "routes": routes})
    assert refused.value.field == field


def test_routes_written_as_text_read_back_the_same():
    routes = routing.routes_of_text("source=prometheus, tag=~k8s-.*\n\nevent_type=oom_killed,host!=db-01\n")
    assert routes == [routing.parse_routes([PROMETHEUS_K8S])[0],
                      {"matchers": [{"name": "event_type", "value": "oom_killed", "is_regex": False, "is_equal": True},
                                    {"name": "host", "value": "db-01", "is_regex": False, "is_equal": False}]}]  # fmt: skip
    assert routing.routes_as_text(routes) == "source=prometheus, tag=~k8s-.*\nevent_type=oom_killed, host!=db-01"
    assert routing.routes_of_text(routing.routes_as_text(routes)) == routes
    with pytest.raises(InvalidInput):
        routing.routes_of_text("source is prometheus")


def test_an_agent_is_routed_the_events_any_of_its_routes_takes_in_and_never_a_silenced_one():
    agent = routing.Routed("k8s", "kubernetes", (
        tuple(routing.compile_stored(PROMETHEUS_K8S["matchers"])),
        tuple(routing.compile_stored([{"name": "event_type", "value": "oom_killed"}])),
    ))  # fmt: skip
    events = [_event(1), _event(2, tags=["db"]), _event(3, tags=[], event_type="oom_killed"),
              _event(4, silenced_by=7), _event(5, source="syslog")]  # fmt: skip
    assert routing.matches([agent], events) == {"k8s": (agent, ["e1", "e3"])}


@pytest.fixture
def routed(sqlite_db):
    now = datetime.now(UTC)
    in_transaction(lambda: registry.configure({"name": "k8s", "kind": "kubernetes", "enabled": True,
                                               "routes": routing.parse_routes([PROMETHEUS_K8S])}, actor="a", now=now))  # fmt: skip
    in_transaction(lambda: registry.configure({"name": "quiet", "kind": "cost", "enabled": True,
                                               "routes": [{"matchers": [{"name": "host", "value": "nope"}]}]},
                                              actor="a", now=now))  # fmt: skip
    return now


class Idle:
    def __init__(self):
        self.seen = []

    def run(self, config):
        self.seen.append(config.event_ids)
        return []

    def status(self, config):
        return {"ready": True}


def test_a_storm_sends_one_run_per_agent_until_a_run_starts(routed):
    sent = []
    cache = routing.RouteCache()

    def route(ids, now):
        return routing.route([_event(int(i[1:])) for i in ids], cache=cache, now=now,
                             send=lambda kind, name, trigger: sent.append((kind, name, trigger)))  # fmt: skip

    # When a thousand matching events arrive in batches
    for start in range(0, 1000, 100):
        route([f"e{i}" for i in range(start, start + 100)], routed)
    # Then the agent whose route takes them in was sent one run, with the first batch's events
    assert [(k, n) for k, n, _ in sent] == [("kubernetes", "k8s")]
    assert sent[0][2] == {"trigger": "events", "event_ids": [f"e{i}" for i in range(100)]}
    # When that run starts, and another event matches
    agent = Idle()
    outcome = run_agent("k8s", settings=Settings(), publish=lambda items: None, agent=agent, trigger=sent[0][2])
    route(["e1000"], routed)
    # Then the agent saw the events it was routed, the run recorded why it ran, and the new event sent the next run
    assert agent.seen == [tuple(f"e{i}" for i in range(100))]
    row = in_transaction(lambda: AgentConfig.get(AgentConfig.name == "k8s"))
    assert outcome.skipped is None and row.last_result["trigger"]["event_ids"][:2] == ["e0", "e1"]
    assert [n for _, n, _ in sent] == ["k8s", "k8s"] and sent[1][2]["event_ids"] == ["e1000"]


def test_a_pending_run_lost_for_long_is_sent_again_and_a_failed_send_leaves_none_pending(routed):
    cache, sent = routing.RouteCache(), []

    def route(now, send):
        return routing.route([_event(1)], cache=cache, now=now, send=send)

    def fail(kind, name, trigger):
        raise ConnectionError("broker away")

    # When the send fails, the claim is released: the next event sends the run
    with pytest.raises(ConnectionError):
        route(routed, fail)
    assert route(routed, lambda *a: sent.append(a)) == ["k8s"]
    # And a pending run never started is taken as lost after PENDING_EXPIRES
    assert route(routed + timedelta(minutes=5), lambda *a: sent.append(a)) == []
    assert route(routed + routing.PENDING_EXPIRES + timedelta(seconds=1), lambda *a: sent.append(a)) == ["k8s"]


def test_a_stopped_agent_is_routed_nothing(routed):
    in_transaction(lambda: registry.set_running("k8s", running=False, actor="a", now=routed))
    sent = routing.route([_event(1)], cache=routing.RouteCache(), now=routed, send=lambda *a: None)
    assert sent == []

"""Events routed to agents: an agent whose ``routes`` take in an event is sent a run, once per storm.

An agent's configuration may carry ``routes``: a list of ``{"matchers": [...]}``, each matcher in
the silences' language (:mod:`app.silences.matching`: ``host``, ``service``, ``event_type``,
``severity``, ``source``, ``source_type``, ``tag``; ``=``, ``!=``, ``=~``, ``!~``). A route takes
in an event when all its matchers do; an agent is routed an event when any of its routes takes it in::

    "routes": [{"matchers": [{"name": "source", "value": "prometheus"},
                             {"name": "tag", "value": "k8s-.*", "is_regex": true}]}]

The evaluator calls :func:`route` for each batch, after the rules, with the rows the rules' evaluation
read (:func:`app.rules.evaluation.evaluate_batch`: the batch is not read twice); a silenced event is
routed to no agent, as it fires no rule. For each started agent that a batch's events match, one run is sent
to its queue ``agent_<kind>`` with ``{"trigger": "events", "event_ids": [...]}`` — unless a routed
run of it is already pending: ``route_pending_at`` is claimed by a conditional UPDATE, and cleared
by the runner when a run starts (:func:`app.agents.runner.run_agent`), so a storm of a thousand
matching events sends one run, and events arriving during that run send the next one. A claim
older than :data:`PENDING_EXPIRES` (a message lost with its broker) is taken again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from ..db import in_transaction, uuid_in
from ..errors import InvalidInput
from ..models import AgentConfig, ProcessedEvent
from ..silences.matching import Matcher, compile_stored, parse_matcher_text, parse_matchers
from .base import RUNNABLE_KINDS

#: Routes of one agent, at most.
MAX_ROUTES = 20
#: Event ids carried by one routed run, at most (the first ones of the batch).
MAX_EVENT_IDS = 100
#: A pending routed run not started for this long is taken as lost: the next matching event sends another.
PENDING_EXPIRES = timedelta(minutes=35)
#: ``(is_regex, is_equal)`` -> the matcher's operator as written.
OPERATORS = {(False, True): "=", (False, False): "!=", (True, True): "=~", (True, False): "!~"}
#: Seconds a process keeps the agents' routes before reading them again.
CACHE_SECONDS = 5.0


def parse_routes(value: Any, *, field: str = "routes") -> list[dict[str, Any]]:
    """Validate an agent's ``routes`` as the API receives them.

    Returns:
      ``[{"matchers": [matcher, ...]}]`` with every matcher in its full form.

    Raises:
      InvalidInput: naming the field (``routes``, ``routes[0].matchers[1].value`` ...); a route
        needs a matcher that does not match the empty string, as a silence does.
    """
    if not isinstance(value, list) or len(value) > MAX_ROUTES:
        raise InvalidInput(f"routes is a list of at most {MAX_ROUTES} routes", field=field)
    routes = []
    for i, route in enumerate(value):
        if not isinstance(route, dict) or set(route) != {"matchers"}:
            raise InvalidInput('a route is an object {"matchers": [...]}', field=f"{field}[{i}]")
        matchers = parse_matchers(route["matchers"], field=f"{field}[{i}].matchers")
        routes.append({"matchers": [m.as_json() for m in matchers]})
    return routes


def routes_of_text(text: str) -> list[dict[str, Any]]:
    """Routes written one per line, matchers separated by commas: ``source=prometheus, tag=~k8s-.*`` (the console's form;
    a value holding a comma is written through the API).

    Raises:
      InvalidInput: a matcher that is not ``NAME=VALUE``, ``NAME!=VALUE``, ``NAME=~REGEX`` or ``NAME!~REGEX``.
    """
    routes = []
    for line in text.splitlines():
        parts = [p for p in line.split(",") if p.strip()]
        if parts:
            routes.append({"matchers": [parse_matcher_text(p) for p in parts]})
    return parse_routes(routes)


def routes_as_text(routes: Iterable[Mapping[str, Any]]) -> str:
    """The inverse of :func:`routes_of_text` (values as written, unquoted: the form reads them back as they are)."""

    def one(m: Mapping[str, Any]) -> str:
        op = OPERATORS[(bool(m.get("is_regex")), bool(m.get("is_equal", True)))]
        return f"{m['name']}{op}{m['value']}"

    return "\n".join(", ".join(one(m) for m in r["matchers"]) for r in routes)


@dataclass(frozen=True)
class Routed:
    """An agent with routes, as the evaluator matches it."""

    name: str
    kind: str
    routes: tuple[tuple[Matcher, ...], ...]

    def takes_in(self, event: Mapping[str, Any]) -> bool:
        return any(all(m.matches(event) for m in route) for route in self.routes)


def routed_agents() -> list[Routed]:
    """The started agents of runnable kinds that have routes (call inside a transaction)."""
    started = (AgentConfig.enabled == True) & AgentConfig.stopped_at.is_null()  # noqa: E712
    rows = AgentConfig.select(AgentConfig.name, AgentConfig.kind, AgentConfig.routes).where(
        started, AgentConfig.kind.in_(RUNNABLE_KINDS)
    )
    return [Routed(r.name, r.kind, tuple(tuple(compile_stored(route["matchers"])) for route in r.routes))
            for r in rows.order_by(AgentConfig.name) if r.routes]  # fmt: skip


class RouteCache:
    """The agents' routes of one process, read again every :data:`CACHE_SECONDS` (a new route applies within that)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.read_at: float | None = None
        self.agents: list[Routed] = []

    def get(self) -> list[Routed]:
        if self.read_at is None or self.clock() - self.read_at >= CACHE_SECONDS:
            self.agents = in_transaction(routed_agents)
            self.read_at = self.clock()
        return self.agents


def matches(agents: Iterable[Routed], events: Iterable[Mapping[str, Any]]) -> dict[str, tuple[Routed, list[str]]]:
    """Each agent routed some of ``events``, by name, with their ids in order (a silenced event goes nowhere)."""
    found: dict[str, tuple[Routed, list[str]]] = {}
    for event in events:
        if event.get("silenced_by") is not None:
            continue
        for agent in agents:
            if agent.takes_in(event):
                found.setdefault(agent.name, (agent, []))[1].append(str(event["id"]))
    return found


def load_routable(event_ids: list[str]) -> list[dict[str, Any]]:
    """The batch's events with only the fields routes match on, in arrival order (call inside a transaction).

    For a batch the rules' evaluation did not read (no rule and no silence): the evaluator otherwise
    hands :func:`route` the rows it read.
    """
    columns = (ProcessedEvent.id, ProcessedEvent.source_host, ProcessedEvent.source_service, ProcessedEvent.event_type,
               ProcessedEvent.severity, ProcessedEvent.source, ProcessedEvent.source_type, ProcessedEvent.tags,
               ProcessedEvent.silence_id)  # fmt: skip
    rows: Any = (
        ProcessedEvent.select(*columns)
        .where(uuid_in(ProcessedEvent.id, event_ids))
        .order_by(ProcessedEvent.received_at)
    )
    return [{"id": str(key), "host": host, "service": service, "event_type": event_type, "severity": severity,
             "source": source, "source_type": source_type, "tags": tags or [], "silenced_by": silence}
            for key, host, service, event_type, severity, source, source_type, tags, silence in rows.tuples()]  # fmt: skip


def claim(name: str, *, now: datetime) -> bool:
    """Mark a routed run of ``name`` pending, unless one is already (call inside a transaction)."""
    free = AgentConfig.route_pending_at.is_null() | (AgentConfig.route_pending_at < now - PENDING_EXPIRES)
    claimed: int = AgentConfig.update(route_pending_at=now).where(AgentConfig.name == name, free).execute()
    return claimed == 1


def release(name: str) -> None:
    """The run is starting (or its send failed): the next matching event sends another (call inside a transaction)."""
    AgentConfig.update(route_pending_at=None).where(AgentConfig.name == name).execute()


#: The batch's events (fields as the API names them, ``silenced_by`` as the evaluator decided), or a
#: function reading them, called only when some agent has routes.
Rows = Sequence[Mapping[str, Any]] | Callable[[], Sequence[Mapping[str, Any]]]


def route(
    events: Rows, *, cache: RouteCache, now: datetime, send: Callable[[str, str, dict[str, Any]], object]
) -> list[str]:
    """Send a run to each agent that the events are routed to and that has none pending.

    Parameters:
      events: The batch's rows as the rules' evaluation read them (:func:`app.rules.evaluation.evaluate_batch`),
        or a function reading them (``partial(read_routable, ids)``, for a batch it did not read). PERF: the
        batch is read once, by the evaluation; routing adds no query unless an agent is routed some event.
      send: ``send(kind, name, trigger)`` puts the run on queue ``agent_<kind>`` (the claim is committed by then).

    Returns:
      The names of the agents sent a run.
    """
    agents = cache.get()
    if not agents:
        return []
    found = matches(agents, events() if callable(events) else events)
    if not found:
        return []

    def claim_matched() -> list[tuple[Routed, list[str]]]:  # one transaction for the claims
        return [(agent, ids) for name, (agent, ids) in found.items() if claim(name, now=now)]

    claimed = in_transaction(claim_matched)
    sent: list[str] = []
    for agent, ids in claimed:
        try:
            send(agent.kind, agent.name, {"trigger": "events", "event_ids": ids[:MAX_EVENT_IDS]})
        except Exception:  # the claims not sent are released: the next matching events send those runs
            for name in [a.name for a, _ in claimed if a.name not in sent]:
                in_transaction(partial(release, name))
            raise
        sent.append(agent.name)
    return sent


def read_routable(event_ids: list[str]) -> list[dict[str, Any]]:
    """:func:`load_routable` in its own transaction."""
    return in_transaction(partial(load_routable, event_ids))

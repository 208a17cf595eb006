"""Correlators scale out: the same events, correlated by one ``correlate`` process and by two at once, make the
same incidents (real dramatiq workers on real RabbitMQ and PostgreSQL)."""

from __future__ import annotations

import random
import re
import time

import pytest
from dramatiq import Message
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from app.db import database
from app.events.envelope import make_item
from app.events.store import store_batch
from app.ids import new_id
from app.models import CorrelationDecision, EventCorrelation, Incident, IncidentActivity, Notification, ProcessedEvent
from app.topology.store import forget_cache, replace_topology
from tests import services
from tests.outage import consumers, queue_depths
from tests.processes import BIN, Process, wait_for

#: Words the generated messages are made of: no two problems share a message template.
WORDS = ["amber", "basalt", "cobalt", "dune", "ember", "fjord", "garnet", "harbor", "indigo", "jasper", "kelp",
         "lagoon", "marble", "nectar", "onyx", "pewter", "quartz", "russet", "sierra", "tundra"]  # fmt: skip
#: Events per correlate message.
ITEMS = 20

Partition = frozenset[frozenset[str]]


def _many() -> tuple[dict[str, object], list[tuple[float, dict[str, object]]]]:
    """The pipeline bench's events (:func:`bench.pipeline.incident_payloads`): 3,000 events over 30 s that form
    hundreds of incidents (problems of one host and service, a switch outage, one-off events), 2,000 hosts behind
    40 switches declared."""
    from bench.pipeline import HOSTS, incident_payloads

    switches = sorted({f"sw-{h[4:6]}" for h in HOSTS})
    nodes = [{"id": n, "kind": "host"} for n in HOSTS] + [{"id": s, "kind": "switch"} for s in switches]
    edges = [{"from": h, "to": f"sw-{h[4:6]}", "kind": "connected_to"} for h in HOSTS]
    return {"nodes": nodes, "edges": edges}, [(t, p) for t, p, _ in incident_payloads(1, 3000)]


def _scenario() -> tuple[dict[str, object], list[tuple[float, dict[str, object]]]]:
    """A fixed set of problems whose grouping no order of arrival changes, overlapping in time, with noise.

    Twelve problems of one host and service each (one message template each, within ten minutes),
    two switch outages with the hosts behind them (the switch's trap may arrive before or after its
    effects), and sixty one-off events. Returns the topology and (seconds from the start, payload)
    in arrival order.
    """
    rng = random.Random(13)
    events: list[tuple[float, dict[str, object]]] = []
    for k in range(12):
        start, host, service = k * 240.0, f"{WORDS[k]}-db-{k}", f"{WORDS[k]}-api"
        for _ in range(rng.randint(15, 40)):
            title = f"{WORDS[k].capitalize()} {WORDS[(k + 5) % 20]} queue stalled after {rng.randint(1, 999)} ms"
            events.append((start + rng.uniform(0, 600), {"source": "t", "host": host, "service": service,
                                                         "severity": "high", "title": title}))  # fmt: skip
    edges = []
    for k in range(2):
        switch, start = f"{WORDS[12 + k]}-sw-{k}", 900.0 + k * 1500
        events.append((start + rng.uniform(0, 60), {"source": "t", "host": switch, "severity": "critical",
                                                    "title": f"Switch {switch} unreachable"}))  # fmt: skip
        for h in range(8):
            host = f"{WORDS[12 + k]}-web-{h}"
            edges.append({"from": host, "to": switch, "kind": "connected_to"})
            for _ in range(3):
                events.append((start + rng.uniform(0, 120), {"source": "t", "host": host, "severity": "high",
                                                             "title": f"Uplink lost on {host}"}))  # fmt: skip
    for n in range(60):
        a, b, c = rng.sample(WORDS, 3)
        events.append((rng.uniform(0, 3600), {"source": "t", "host": f"{a}-{b}-{n}", "service": f"{c}-{n}",
                                              "severity": "medium", "title": f"{a} {b} {c} check"}))  # fmt: skip
    nodes = sorted({e["from"] for e in edges} | {e["to"] for e in edges})
    topology = {"nodes": [{"id": n, "kind": "switch" if "-sw-" in n else "host"} for n in nodes], "edges": edges}
    return topology, sorted(events, key=lambda e: e[0])


def _partition() -> tuple[Partition, int]:
    """The events grouped by incident, and how many events no incident holds."""
    groups: dict[str, set[str]] = {}
    loose = 0
    for event_id, incident_id in ProcessedEvent.select(ProcessedEvent.id, ProcessedEvent.correlation_id).tuples():
        if incident_id is None:
            loose += 1
        else:
            groups.setdefault(str(incident_id), set()).add(str(event_id))
    return frozenset(frozenset(g) for g in groups.values()), loose


def _forget_correlation() -> None:
    """Every event back to uncorrelated, no incident: the state before the first correlator ran."""
    ProcessedEvent.update(correlation_id=None).execute()
    for model in (EventCorrelation, Incident, IncidentActivity, Notification, CorrelationDecision):
        model.delete().execute()


def _correlate(env: dict[str, str], url: str, messages: list[list[str]], *, processes: int) -> list[Process]:
    """Queue ``messages`` to ``correlate``, let ``processes`` correlator processes take them; wait until all are handled."""
    services.purge_queues(url)
    # LOG_LEVEL=DEBUG: the correlator's debug lines say how many messages each process handled
    argv = [str(BIN / "dramatiq"), "app.worker", "--processes", "1", "--threads", "2", "--queues", "correlate"]
    workers = [Process("correlator", argv, {**env, "LOG_LEVEL": "DEBUG"}) for _ in range(processes)]
    try:
        # every process consumes before the messages are queued: on a loaded machine the first one up would
        # otherwise take them all before the second had booted
        wait_for(lambda: consumers(url, "correlate") >= processes, timeout=120, interval=0.5,
                 message=f"{processes} correlator processes consuming")  # fmt: skip
        broker = RabbitmqBroker(url=url, confirm_delivery=True)
        for ids in messages:
            broker.enqueue(Message(queue_name="correlate", actor_name="correlate", args=(ids,), kwargs={}, options={}))
        broker.close()
        # each message hands its events on to the rule evaluator once they are correlated (none runs here)
        wait_for(lambda: queue_depths(url, ("evaluate",))["evaluate"] == len(messages), timeout=240, interval=0.5,
                 message=f"{len(messages)} messages handed on to evaluate")  # fmt: skip
    finally:
        for w in workers:
            w.stop()
    return workers


def _batches_handled(worker: Process) -> int:
    return len(re.findall(r"Correlated \d+ of \d+ events", worker.output()))


def _rehearsals_that_stood(worker: Process) -> int:
    return len(re.findall(r"Correlator batch: rehearsed", worker.output()))


@pytest.mark.parametrize(("events", "received"), [("few", "live"), ("few", "backlog"), ("many", "live")])
def test_two_correlator_processes_make_the_incidents_one_makes(stack_env, rabbitmq_url, pg_db, events, received):
    # Given problems overlapping in time with noise (their topology declared, their events stored as the normalizer
    # stores them; "few": 74 incidents, "many": the pipeline bench's, hundreds), received just now ("live") or two
    # hours ago ("backlog": late batches claim the events queued behind them), and their correlate messages, each
    # sent twice (at-least-once delivery)
    many = events == "many"
    topology, events = _many() if many else _scenario()
    forget_cache()
    replace_topology(topology, actor="test")
    t0 = time.time() - (2 * 3600 + events[-1][0] if received == "backlog" else 0)
    items = [make_item(id=new_id(), source_type="webhook", received_at=t0 + t, payload=p) for t, p in events]
    messages = [store_batch(items[k : k + ITEMS], window_s=300).event_ids for k in range(0, len(items), ITEMS)]
    deliveries = [ids for ids in messages for _ in range(2)]
    stored = ProcessedEvent.select().count()
    # When one correlator process correlates them, and then, from scratch, two at once
    (alone,) = _correlate(stack_env, rabbitmq_url, deliveries, processes=1)
    one, one_loose = _partition()
    _forget_correlation()
    database.close()
    pair = _correlate(stack_env, rabbitmq_url, deliveries, processes=2)
    two, two_loose = _partition()
    # Then both processes took part, and the two made the same incidents of the same events as the one
    assert all(_batches_handled(w) > 0 for w in pair), [_batches_handled(w) for w in pair]
    if many:
        assert len(one) > 300 and one_loose == 0 and sum(len(g) for g in one) == stored
    else:
        assert len(one) == 12 + 2 + 60 and one_loose == 0 and sum(len(g) for g in one) == stored
    assert two == one and two_loose == one_loose
    # (batches were placed before the correlator's lock, app/correlation/rehearsal.py, and some of those stood)
    assert _rehearsals_that_stood(alone) > 0 and sum(map(_rehearsals_that_stood, pair)) > 0
    # And each event was placed once: the incidents count their events, one record of why per join,
    # and no decision is left unwritten
    counts = sorted(i.event_count for i in Incident.select() if i.event_count)
    assert counts == sorted(len(g) for g in two)
    joined = [i for (ids,) in EventCorrelation.select(EventCorrelation.related_event_ids).tuples() for i in ids]
    assert len(joined) == len(set(joined))
    assert CorrelationDecision.select().count() == 0
    assert _batches_handled(alone) == len(deliveries)

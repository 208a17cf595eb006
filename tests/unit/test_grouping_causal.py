"""Causal grouping across hops, recovery of the cause, flapping, and order independence, on real databases."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.correlation import store as correlation_store
from app.correlation.grouping import GroupingSettings
from app.correlation.store import correlate_batch
from app.events.envelope import make_item
from app.events.store import store_batch
from app.incidents.timeline import timeline
from app.models import EventCorrelation, Incident, ProcessedEvent
from app.topology.store import forget_cache, replace_topology
from tests.correlation_items import LINK_DOWN, LINK_UP, trap, webhook

CORE, SWITCH = "10.0.0.1", "10.0.1.1"
HOSTS = [f"app-{i}" for i in range(6)]


def declare_three_hops(nodes: tuple[dict, ...] = (), edges: tuple[dict, ...] = ()) -> None:
    """core router <- access switch <- six hosts <- the shop service (runs on all six); and ``nodes``, ``edges``."""
    forget_cache()
    correlation_store._topology = None
    body = {
        "nodes": [{"id": CORE, "kind": "router"}, {"id": SWITCH, "kind": "switch"}, {"id": "shop", "kind": "service"},
                  *({"id": h, "kind": "host"} for h in HOSTS), *nodes],
        "edges": [{"from": SWITCH, "to": CORE, "kind": "connected_to"},
                  *({"from": h, "to": SWITCH, "kind": "connected_to"} for h in HOSTS),
                  *({"from": "shop", "to": h, "kind": "runs_on"} for h in HOSTS), *edges],
    }  # fmt: skip
    replace_topology(body, actor="test")


def run(batch: list[dict], cfg: GroupingSettings | None = None, window_s: int = 300) -> None:
    stored = store_batch(batch, window_s=window_s)
    correlate_batch(stored.event_ids, cfg=cfg)


def incident_of(item: dict) -> Incident:
    return Incident.get_by_id(ProcessedEvent.get_by_id(item["id"]).correlation_id)


def test_effects_three_hops_below_a_router_before_its_trap_become_one_incident_rooted_at_the_router(any_db):
    # Given hosts behind a switch behind a core router (and an unrelated host nobody declared)
    declare_three_hops()
    # When the hosts' effects arrive first, in two shapes, then the switch's trap, then the router's (the cause)
    effects = [webhook(h, "Connection reset by peer" if i % 2 else "Health check failed", 2 + 3 * i, service="shop")
               for i, h in enumerate(HOSTS)]  # fmt: skip
    switch_down, core_down = trap(SWITCH, LINK_DOWN, 30), trap(CORE, LINK_DOWN, 45)
    unrelated = webhook("mail-7", "Mail queue is stuck", 20, service="postfix")
    items = sorted([*effects, switch_down, core_down, unrelated], key=lambda i: i["received_at"])
    for k in range(0, len(items), 3):
        run(items[k : k + 3])
    # Then everything but the unrelated event is one incident, rooted at and named after the router
    incident = incident_of(core_down)
    members = {e.id for e in ProcessedEvent.select().where(ProcessedEvent.correlation_id == incident.id)}
    assert {str(m) for m in members} == {i["id"] for i in [*effects, switch_down, core_down]}
    assert incident.root_host == CORE and str(incident.root_event_id) == core_down["id"]
    assert CORE in incident.title and incident.event_count == len(members)
    assert incident_of(unrelated).id != incident.id
    # And an incident the effects formed first was merged into it, saying so
    merged = Incident.select().where(Incident.merged_into == incident.id)
    assert all(m.status == "closed" and m.event_count == 0 for m in merged)
    # When the switch's link comes back, the incident stays open (its cause, the router, has not recovered)
    run([trap(SWITCH, LINK_UP, 200)])
    assert Incident.get_by_id(incident.id).status == "open"
    # When the router's link comes back, the whole incident is closed
    core_up = trap(CORE, LINK_UP, 240)
    run([core_up])
    closed = Incident.get_by_id(incident.id)
    assert closed.status == "closed" and str(closed.closed_by_event_id) == core_up["id"]


def test_a_problem_starting_next_to_a_big_outage_does_not_join_it(any_db):
    # Given an outage of the switch and its hosts
    declare_three_hops(({"id": "10.0.2.1", "kind": "switch"}, {"id": "db-1", "kind": "host"}),
                       ({"from": "10.0.2.1", "to": CORE, "kind": "connected_to"},
                        {"from": "db-1", "to": "10.0.2.1", "kind": "connected_to"}))  # fmt: skip
    outage = [trap(SWITCH, LINK_DOWN, 0), *(webhook(h, "Health check failed", 5 + i) for i, h in enumerate(HOSTS))]
    run(outage)
    # When a host behind the neighbouring switch (same router) reports an unrelated problem
    disk = webhook("db-1", "Disk /var/lib/pgsql 97% full", 60, service="postgresql")
    run([disk])
    # Then it is an incident of its own: nearby is not dependent
    assert incident_of(disk).id != incident_of(outage[0]).id


@pytest.mark.parametrize("service_first", [False, True], ids=["cause first", "service first"])
def test_an_alert_on_a_service_as_a_whole_is_explained_by_a_single_point_of_failure_of_it(any_db, service_first):
    # Given the shop on six hosts behind one switch, and billing on one host of them
    declare_three_hops(
        ({"id": "billing", "kind": "service"},), ({"from": "billing", "to": HOSTS[5], "kind": "runs_on"},)
    )
    # When two of the shop's hosts go down, and a load balancer alerts on the shop as a whole (no host)
    down = [webhook(h, "Host is down", 10 + 3 * i) for i, h in enumerate(HOSTS[:2])]
    shop = webhook(None, "Error rate 38% on checkout requests", 0 if service_first else 20, service="shop")
    # And later billing's only host goes down, and billing's probe fails
    billing_host = webhook(HOSTS[5], "Host is down", 400 if service_first else 390)
    billing = webhook(None, "Probe of https://billing/health failed", 390 if service_first else 400, service="billing")
    # And later still the switch goes down, and the shop alerts again
    switch_down = trap(SWITCH, LINK_DOWN, 800 if service_first else 790)
    shop_again = webhook(None, "Latency p99 4.2 s on checkout requests", 790 if service_first else 800, service="shop")
    items = sorted([*down, shop, billing_host, billing, switch_down, shop_again], key=lambda i: i["received_at"])
    for item in items:
        run([item])
    # Then billing's probe is its only host's outage, and the shop's second alert the switch's (its single points
    # of failure), saying so
    assert incident_of(billing).id == incident_of(billing_host).id
    assert incident_of(shop_again).id == incident_of(switch_down).id
    reasons = " ".join(c.correlation_reason or "" for c in EventCorrelation.select())
    assert f"depends on {SWITCH}" in reasons or f"depend on {SWITCH}" in reasons, reasons
    # And two of the shop's six hosts down do not explain the shop's errors: they stay apart
    assert incident_of(shop).id != incident_of(down[0]).id


def test_a_flapping_link_marks_its_incident_and_its_timeline_says_so(any_db):
    # Given a link that went down and came back three times within the flap window (stored without de-duplication)
    cfg = GroupingSettings(flap_changes=3)
    downs = []
    for k in range(3):
        down, up = trap(SWITCH, LINK_DOWN, k * 120, if_index=7), trap(SWITCH, LINK_UP, k * 120 + 60, if_index=7)
        run([down, up], cfg, window_s=0)
        downs.append(down)
    first = incident_of(downs[0])
    assert first.status == "closed"
    # When it goes down once more
    last = trap(SWITCH, LINK_DOWN, 400, if_index=7)
    run([last], cfg, window_s=0)
    # Then every flap is in the one incident, which is flapping, and its timeline says why
    incident = incident_of(last)
    assert incident.id == first.id and incident.status == "flapping"
    entries = timeline(str(incident.id))["entries"]
    flapping = [e for e in entries if e["summary"].startswith("Flapping:")]
    assert len(flapping) == 1 and "3 times in 30 minutes" in flapping[0]["summary"]
    # And the next linkUp does not close it: it stays flapping until someone looks or it goes quiet
    run([trap(SWITCH, LINK_UP, 460, if_index=7)], cfg, window_s=0)
    assert Incident.get_by_id(incident.id).status == "flapping"


def _scenario_window() -> tuple[dict, list[dict]]:
    """The first 90 minutes of the generated tuning scenario 1 (topology, and events in arrival order)."""
    from bench.correlation_quality import with_ids
    from bench.scenarios import generate

    data = with_ids(generate(1))
    return data, [e for e in data["events"] if e["t"] < 5400]


def _partition(data: dict, batches: list[list[dict]]) -> set[frozenset[str]]:
    """Correlate ``batches`` in order on a fresh SQLite database; the incidents as sets of event ids."""
    from bench.correlation_quality import throwaway_database
    from bench.scenario_sources import T0 as BENCH_T0

    with throwaway_database(False):
        replace_topology(data["topology"], actor="test")
        for batch in batches:
            items = [make_item(id=e["id"], source_type=e["source_type"], received_at=BENCH_T0 + e["t"],
                               payload=e["payload"], source=e.get("source")) for e in batch]  # fmt: skip
            run(items)
        groups: dict[str, set[str]] = {}
        for event_id, incident_id in ProcessedEvent.select(ProcessedEvent.id, ProcessedEvent.correlation_id).tuples():
            groups.setdefault(str(incident_id) if incident_id else f"none-{event_id}", set()).add(str(event_id))
    return {frozenset(g) for g in groups.values()}


def _arrivals(events: list[dict], rng: random.Random, jitter_s: float, sizes: list[int]) -> list[list[dict]]:
    """The events as another run could deliver them: neighbours within ``jitter_s`` swapped, cut in batches of ``sizes``."""
    order = list(events)
    for k in range(len(order) - 1):
        if order[k + 1]["t"] - order[k]["t"] <= jitter_s and rng.random() < 0.5:
            order[k], order[k + 1] = order[k + 1], order[k]
    out, k = [], 0
    while k < len(order):
        size = sizes[len(out) % len(sizes)]
        out.append(order[k : k + size])
        k += size
    return out


@settings(max_examples=4, deadline=None)
@given(order=st.integers(min_value=0, max_value=2**32), sizes=st.lists(st.integers(1, 60), min_size=1, max_size=6))
def test_the_partition_does_not_depend_on_arrival_order_within_the_jitter_nor_on_batch_boundaries(order, sizes):
    # Given a generated scenario, correlated in arrival order, one batch per second of arrivals
    data, events = _scenario_window()
    reference = _partition(data, _arrivals(events, random.Random(0), 0.0, [20]))
    assert len(events) > 100 and sum(len(g) > 5 for g in reference) >= 2  # a scenario with incidents to split
    # When the same events arrive in another order (neighbours within 2 s swapped) and other batches
    again = _partition(data, _arrivals(events, random.Random(order), 2.0, sizes))
    # Then the incidents hold the same events (of those both runs stored: de-duplication keeps whichever
    # copy of a repeated event arrived first, which is the normalizer's choice, not the grouping's)
    assert _common(again, reference) == _common(reference, again)
    assert len(again) == len(reference)


def _common(groups: set[frozenset[str]], other: set[frozenset[str]]) -> set[frozenset[str]]:
    """``groups`` restricted to the events ``other`` holds too (empty groups dropped)."""
    kept = set().union(*other)
    return {g & kept for g in groups if g & kept}

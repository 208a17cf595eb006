"""The held-out scenario generator (bench/scenarios.py) and the quality report's metrics (bench/quality_metrics.py)."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from app.events.envelope import make_item
from app.events.store import parse_items
from bench import quality_metrics as qm
from bench.correlation_quality import batches, evaluate, legacy_shape, parse_seeds
from bench.scenario_sources import T0
from bench.scenarios import HELD_OUT_SEEDS, KINDS, NOISE, TUNING_SEEDS, generate

ALL_SEEDS = (*TUNING_SEEDS, *HELD_OUT_SEEDS)
NODE_KINDS = {"host", "switch", "router", "firewall", "load_balancer", "service", "database", "storage", "other"}
EDGE_KINDS = {"depends_on", "runs_on", "connected_to"}


# -- the generator -------------------------------------------------------------------------------


def test_a_seed_always_gives_the_same_scenario_and_another_seed_another():
    # Given / When the same seed twice and a second seed
    first, again, other = generate(3), generate(3), generate(4)
    # Then the first two are equal to the byte, and the third differs in its events and its names
    assert first == again
    assert first["events"] != other["events"]
    assert {e["source"] for e in first["events"]} != {e["source"] for e in other["events"]}


@pytest.mark.parametrize("seed", ALL_SEEDS)
def test_every_incident_kind_occurs_in_every_tuning_and_held_out_seed(seed):
    # Given the scenario of a seed
    scenario = generate(seed)
    # When its incidents are counted by kind
    kinds = Counter(facts["kind"] for facts in scenario["incidents"].values())
    # Then each of the ten kinds is there, and background noise too
    assert set(kinds) == set(KINDS) and len(KINDS) >= 10
    assert any(e["label"] == NOISE for e in scenario["events"])


@pytest.mark.parametrize("seed", (1, 101))
def test_labels_are_consistent_with_the_incidents_and_events_come_in_arrival_order(seed):
    # Given a scenario
    scenario = generate(seed)
    events = scenario["events"]
    # Then every event's label is a declared incident or noise, every incident has events,
    labels = Counter(e["label"] for e in events)
    assert set(labels) - {NOISE} == set(scenario["incidents"])
    # two on one host are two incidents on the same host,
    pairs = [f for f in scenario["incidents"].values() if f["kind"] == "two_on_one_host"]
    assert Counter(f["host"] for f in pairs).most_common(1)[0][1] >= 2
    # ids are unique UUIDs and arrival times never go backwards
    assert len({e["id"] for e in events}) == len(events)
    assert [e["t"] for e in events] == sorted(e["t"] for e in events)


def test_the_estates_declare_topologies_in_the_node_and_edge_shape_complete_partial_or_not_at_all():
    # Given the scenarios of every tuning and held-out seed
    scenarios = [generate(seed) for seed in ALL_SEEDS]
    # Then some declared a complete topology, some a partial one and some none
    assert {s["completeness"] for s in scenarios} == {"full", "partial", "none"}
    for scenario in scenarios:
        topology = scenario["topology"]
        if topology is None:
            continue
        # and a declared one has only known kinds, and edges between declared nodes, dependent first
        nodes = {n["id"]: n["kind"] for n in topology["nodes"]}
        assert set(topology) == {"nodes", "edges", "resolutions"}
        assert set(nodes.values()) <= NODE_KINDS and {e["kind"] for e in topology["edges"]} <= EDGE_KINDS
        assert all(e["from"] in nodes and e["to"] in nodes for e in topology["edges"])
        assert all(nodes[e["to"]] == "host" for e in topology["edges"] if e["kind"] == "runs_on")
        assert any(nodes[e["from"]] == "switch" and nodes[e["to"]] == "router" for e in topology["edges"])


@pytest.mark.parametrize("seed", (2, 103))
def test_the_generated_raw_items_parse_without_processing_errors_through_the_real_parsers(sqlite_db, seed):
    # Given a scenario's raw items, as the edge hands them to the normalizer
    scenario = generate(seed)
    items = [make_item(id=e["id"], source_type=e["source_type"], received_at=T0 + e["t"], payload=e["payload"],
                       source=e["source"]) for e in scenario["events"]]  # fmt: skip
    # When the normalizer's parsing reads them
    rows, events = parse_items(items)
    # Then none has a processing error, and every source and syslog format is represented
    assert [r["processing_errors"] for r in rows if r["processing_errors"]] == []
    assert len(events) == len(items)
    assert {r["source_type"] for r in rows} == {"webhook", "alertmanager", "grafana", "pagerduty", "syslog", "snmp"}
    formats = Counter(e["metadata"].get("format") for e in events.values() if e["source_type"] == "syslog")
    assert {"rfc3164", "rfc5424", "cef"} <= set(formats)
    # and the parsed events name the hosts the scenario meant: a trap's host is the device that sent it
    traps = [e for e in events.values() if e["source_type"] == "snmp"]
    assert traps and all(e["host"] == e["source"] for e in traps)
    assert any(e["metadata"].get("trap_name") == "linkDown" for e in traps)


def test_the_node_and_edge_topology_converts_to_the_older_map_for_a_store_that_only_knows_it():
    # Given a small node/edge document
    topology = {"nodes": [{"id": "r1", "kind": "router", "criticality": "critical"}, {"id": "sw", "kind": "switch"},
                          {"id": "h1", "kind": "host"}, {"id": "svc", "kind": "service"}, {"id": "db", "kind": "database"}],
                "edges": [{"from": "sw", "to": "r1", "kind": "connected_to"}, {"from": "h1", "to": "sw", "kind": "connected_to"},
                          {"from": "svc", "to": "h1", "kind": "runs_on"}, {"from": "svc", "to": "db", "kind": "depends_on"}],
                "resolutions": {}}  # fmt: skip
    # When it is converted, Then each host keeps its upstream and each service its first host
    assert legacy_shape(topology) == {"hosts": {"sw": "r1", "h1": "sw"}, "services": {"svc": "h1"}, "criticality": {}}


# -- the metrics --------------------------------------------------------------------------------


def test_pairwise_precision_recall_and_f1_on_a_partition_with_known_answers():
    # Given two events of A, one of B and two noise events, all but the noise put in one group
    truth = {"a1": "A", "a2": "A", "b1": "B", "n1": NOISE, "n2": NOISE}
    partition = {"a1": "g1", "a2": "g1", "b1": "g1", "n1": "g2", "n2": "g2"}
    # When scored
    pairs = qm.pairwise(truth, partition)
    # Then 1 pair is right (a1-a2), 3 are wrong (a-b twice, n1-n2: noise events belong to nothing), none missed
    assert (pairs.tp, pairs.fp, pairs.fn) == (1, 3, 0)
    assert pairs.precision == 0.25 and pairs.recall == 1.0 and pairs.f1 == pytest.approx(0.4)


def test_events_left_alone_are_groups_of_their_own():
    # Given an incident of two events the correlator left uncorrelated
    truth = {"a1": "A", "a2": "A", "n1": NOISE}
    partition: dict[str, str | None] = {"a1": None, "a2": None, "n1": None}
    # Then the pair is missed, nothing is wrongly grouped, and no incident was made
    pairs = qm.pairwise(truth, partition)
    assert (pairs.tp, pairs.fp, pairs.fn) == (0, 0, 1) and pairs.f1 == 0.0
    assert qm.groups(partition) == 0


def test_an_incident_is_found_only_when_ninety_percent_of_its_events_share_one_group():
    # Given A split 9/1 over two groups and B split 2/1
    truth = {**{f"a{i}": "A" for i in range(10)}, "b1": "B", "b2": "B", "b3": "B"}
    partition: dict[str, str | None] = {
        **{f"a{i}": "g1" for i in range(9)},
        "a9": "g2",
        "b1": "g3",
        "b2": "g3",
        "b3": None,
    }
    # When the shares are computed
    shares = qm.found(truth, partition)
    # Then A is found (90 %) and B is not (two thirds)
    assert shares == {"A": 0.9, "B": pytest.approx(2 / 3)}
    report = qm.score(truth, partition)
    assert report["found"] == 1 and report["incidents"] == 2 and list(report["missed"]) == ["B"]


def test_noise_contamination_counts_noise_put_into_a_true_incidents_group():
    # Given one noise event joined to A's group, and two others grouped with each other only
    truth = {"a1": "A", "a2": "A", "a3": "A", "n1": NOISE, "n2": NOISE, "n3": NOISE}
    partition: dict[str, str | None] = {"a1": "g1", "a2": "g1", "a3": "g1", "n1": "g1", "n2": "g2", "n3": "g2"}
    # When contamination is measured
    absorbed, share = qm.contamination(truth, partition)
    # Then a third of the noise was absorbed, and a quarter of the incident group is noise
    assert absorbed == pytest.approx(1 / 3) and share == pytest.approx(1 / 4)
    assert qm.score(truth, partition)["noise_reduction"] == pytest.approx(1 - 2 / 6)


def test_a_flapping_link_counts_as_marked_when_the_incident_holding_most_of_its_events_is_flapping():
    truth = {
        "a1": "flapping_link-1",
        "a2": "flapping_link-1",
        "a3": "flapping_link-1",
        "b1": "flapping_link-2",
        "c": "x-1",
    }
    partition: dict[str, str | None] = {"a1": "g1", "a2": "g1", "a3": "g2", "b1": "g3", "c": "g2"}
    assert qm.flapping_marked(truth, partition, {"g1": "flapping", "g2": "open", "g3": "closed"}) == (1, 2)
    assert qm.flapping_marked(truth, partition, {"g2": "flapping"}) == (0, 2)


def test_the_host_baseline_groups_a_host_s_events_while_each_follows_the_last_within_fifteen_minutes():
    # Given events of web-1 at 0, 10 and 23 minutes, then at 40, one of web-2, and one with no host
    events = [{"id": "e1", "at": 0, "host": "web-1"}, {"id": "e2", "at": 600, "host": "web-1"},
              {"id": "e3", "at": 1380, "host": "web-1"}, {"id": "e4", "at": 2400, "host": "web-1"},
              {"id": "e5", "at": 60, "host": "web-2"}, {"id": "e6", "at": 70, "host": None}]  # fmt: skip
    # When grouped by host within 15 minutes
    partition = qm.baseline(events, "host")
    # Then the first three form a chain, the fourth starts anew, web-2 is apart and the hostless event alone
    assert partition["e1"] == partition["e2"] == partition["e3"]
    assert len({partition["e1"], partition["e4"], partition["e5"]}) == 3
    assert partition["e6"] is None


def test_the_service_baseline_groups_by_service_across_hosts():
    # Given two hosts' events of one service, a minute apart, and a third host's of another service
    events = [{"id": "e1", "at": 0, "host": "a", "service": "checkout"}, {"id": "e2", "at": 60, "host": "b", "service": "checkout"},
              {"id": "e3", "at": 30, "host": "c", "service": "search"}]  # fmt: skip
    # When grouped by service, Then the first two are together and the third apart
    partition = qm.baseline(events, "service")
    assert partition["e1"] == partition["e2"] != partition["e3"]


def test_partitions_compare_by_who_is_with_whom_not_by_group_names():
    a: dict[str, str | None] = {"x": "g1", "y": "g1", "z": None}
    assert qm.same_partition(a, {"x": "other", "y": "other", "z": None})
    assert not qm.same_partition(a, {"x": "g1", "y": "g2", "z": None})
    assert not qm.same_partition(a, {"x": "g1", "y": "g1", "z": "g1"})


def test_batches_are_cut_by_size_and_by_a_second_of_arrival_and_only_swapped_within_the_jitter():
    # Given 250 events 0.005 s apart, then one 10 s later
    events = [{"t": k * 0.005} for k in range(250)] + [{"t": 11.0}]
    # When cut into batches
    cut = batches(events)
    # Then none holds more than 100 items or spans more than a second, and order is kept
    assert [len(b) for b in cut] == [100, 100, 50, 1]
    assert all(b[-1]["t"] - b[0]["t"] <= 1.0 for b in cut)
    # and shuffled delivery only swaps neighbours that arrived within the jitter (the lone late one stays last)
    shuffled = batches(events, items=10, rng=random.Random(1), jitter_s=2.0)
    assert shuffled[-1] == [{"t": 11.0}] and sorted(e["t"] for b in shuffled for e in b) == [e["t"] for e in events]


def test_seed_lists_read_ranges_and_single_seeds():
    assert parse_seeds("1-3,7,101-102") == [1, 2, 3, 7, 101, 102]


# -- the report, end to end ---------------------------------------------------------------------


def test_the_report_runs_a_generated_seed_through_parsing_and_correlation_with_both_baselines():
    # Given a tuning seed's scenario
    scenario = generate(1)
    # When the report runs it through the real parsing, storage and correlation on a throwaway database
    report = evaluate(scenario)
    # Then every item was parsed, the stored events were grouped, and both baselines scored the same events
    assert report["parse_errors"] == 0
    assert report["events"] > 0.8 * len(scenario["events"])  # some repeats fold into one event (de-duplication)
    assert report["incidents"] == len(scenario["incidents"]) and 0 < report["groups"] < report["events"]
    assert 0.0 < report["by_host"]["f1"] < 1.0 and 0.0 < report["by_service"]["f1"] < 1.0
    assert report["margin"] == pytest.approx(report["f1"] - max(report["by_host"]["f1"], report["by_service"]["f1"]))

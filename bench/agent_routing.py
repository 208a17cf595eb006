"""What routing events to agents costs the evaluator: its batches with no agent routed, then with one.

The evaluator (``app/actors/evaluator.py``) fires the rules of each batch, then routes the batch to
agents (:func:`app.agents.routing.route`) on the rows the rules' evaluation read
(:func:`app.rules.evaluation.evaluate_batch`): routing reads nothing (the routes are read once per
``CACHE_SECONDS``, and a claim is written only for an agent some event of the batch is routed to).
This times, batch by batch over the same stored events in one process on PostgreSQL, the rules'
evaluation (100 active rules, as ``bench/pipeline.py``) and the routing: with no agent routed, with
one on the evaluated rows, and with one reading the batch's nine routed columns again (the previous
version), interleaved; each routed run's claim is released at once (a worker always free: a claim
per batch that matches)::

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/opsconductor_bench_routing \\
        .venv/bin/python -m bench.agent_routing --events 20000 --batch 100 --runs 3

It prints each run's microseconds per event of each part, and routing's cost against the evaluation's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import UTC, datetime
from functools import partial


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    from app.agents import registry, routing
    from app.db import in_transaction, init_database
    from app.events.store import store_batch
    from app.migrate import migrate
    from app.models import AgentConfig, TriggerRule
    from app.rules.evaluation import RuleCache, columns_of, evaluate_batch
    from app.rules.triggers import parse_trigger
    from bench.pipeline import raw_items, rules

    init_database(os.environ["DATABASE_URL"], application_name="opsconductor-bench")
    migrate()
    if not in_transaction(lambda: TriggerRule.select().count()):
        for body in rules(100):
            in_transaction(lambda body=body: TriggerRule.create(**columns_of(parse_trigger(body))))
    items = raw_items(1, args.events)
    ids = [i for k in range(0, len(items), 500) for i in store_batch(items[k : k + 500], window_s=300).event_ids]
    batches = [ids[k : k + args.batch] for k in range(0, len(ids), args.batch)]
    now = datetime.now(UTC)
    # one started agent routed the bench's critical events from hosts of switch 07 (a few percent of them)
    route = routing.parse_routes([{"matchers": [{"name": "severity", "value": "critical"},
                                                {"name": "host", "value": "app-07-.*", "is_regex": True}]}])  # fmt: skip
    in_transaction(lambda: registry.configure({"name": "bench-routed", "kind": "cost", "enabled": True,
                                               "routes": route}, actor="bench", now=now))  # fmt: skip
    in_transaction(lambda: routing.release("bench-routed"))  # a run of an earlier bench may have left one pending
    routed, none = routing.RouteCache(), routing.RouteCache()
    none.agents, none.read_at = [], float("inf")  # an evaluator whose agents have no routes
    cache, sent = RuleCache(), []

    def send(kind: str, name: str, trigger: dict) -> None:
        sent.append(name)
        in_transaction(lambda: AgentConfig.update(route_pending_at=None).where(AgentConfig.name == name).execute())

    parts = ("evaluate (100 rules)", "routing, no agent routed", "routing, one agent routed, on the evaluated rows",
             "routing, one agent routed, reading the batch again")  # fmt: skip
    costs: dict[str, list[float]] = {part: [] for part in parts}
    for run in range(args.runs):
        took = dict.fromkeys(parts, 0.0)
        for i, batch in enumerate(batches):
            start = time.perf_counter()
            rows = evaluate_batch(batch, cache=cache).events or []  # run 0 fires; later runs find the firings made
            took[parts[0]] += time.perf_counter() - start
            steps = [(parts[1], lambda b, rows=rows: routing.route(rows, cache=none, now=now, send=send)),
                     (parts[2], lambda b, rows=rows: routing.route(rows, cache=routed, now=now, send=send)),
                     (parts[3], lambda b: routing.route(partial(routing.read_routable, b), cache=routed, now=now,
                                                        send=send))]  # fmt: skip
            for part, step in (
                steps if (i + run) % 2 == 0 else steps[::-1]
            ):  # interleaved: neither reads warm rows first
                start = time.perf_counter()
                step(batch)
                took[part] += time.perf_counter() - start
        for part in parts:
            costs[part].append(took[part] * 1e6 / len(ids))
    for part, values in costs.items():
        print(f"{part}: {[round(v, 1) for v in values]} us/event (median {statistics.median(values):.1f})")
    evaluated = statistics.median(costs[parts[0]])
    print(
        f"routing / evaluate (medians): {statistics.median(costs[parts[2]]) / evaluated:.2f}; reading the batch "
        f"again: {statistics.median(costs[parts[3]]) / evaluated:.2f}; routed runs sent: {len(sent)}"
    )


if __name__ == "__main__":
    main()

"""Grouping quality of the correlator on the labelled scenario set in ``tests/data/correlation_scenarios.json``.

Each event carries the true incident it belongs to (``label``). The events are
stored and correlated in arrival order, in batches, on a throwaway SQLite
database; the script reports pairwise precision, recall and F1 of the grouping
(over all pairs of events: same incident predicted vs. same label), whether every
true incident was found (its events mostly in one predicted incident), and the
noise reduction (events -> incidents).

    .venv/bin/python bench/correlation_quality.py            # report
    .venv/bin/python bench/correlation_quality.py --write    # regenerate the scenario file (deterministic)
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from collections import Counter
from itertools import combinations
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SCENARIOS = ROOT / "tests" / "data" / "correlation_scenarios.json"
T0 = 1_795_428_000.0  # 2026-11-23 10:00 UTC


def generate(seed: int = 7) -> dict:
    rng = random.Random(seed)
    events: list[dict] = []

    def webhook(
        label: str, t: float, host: str, title: str, severity: str = "high", service: str | None = None
    ) -> None:
        payload = {
            "source": "scenario",
            "host": host,
            "title": title,
            "severity": severity,
            **({"service": service} if service else {}),
        }
        events.append({"label": label, "source_type": "webhook", "t": t, "payload": payload})

    def trap(label: str, t: float, switch: str, oid: str, if_index: int) -> None:
        payload = {"version": "v2c", "peer": switch, "pdu": "trap", "trap_oid": oid,
                   "varbinds": [["1.3.6.1.6.3.1.1.4.1.0", "ObjectIdentifier", oid], [f"1.3.6.1.2.1.2.2.1.1.{if_index}", "Integer", if_index]]}  # fmt: skip
        events.append({"label": label, "source_type": "snmp", "t": t, "payload": payload})

    topology = {"hosts": {}, "criticality": {"10.1.0.1": "critical"}}
    # A: a core switch fails; 25 hosts behind it time out; linkUp 6 min later
    hosts_a = [f"pay-{i:02d}" for i in range(25)]
    topology["hosts"].update({h: "10.1.0.1" for h in hosts_a})
    trap("A-switch", 0, "10.1.0.1", "1.3.6.1.6.3.1.1.5.3", 7)
    for h in hosts_a:
        webhook(
            "A-switch",
            rng.uniform(5, 120),
            h,
            f"Upstream connect timeout to 10.9.{rng.randint(0, 9)}.{rng.randint(1, 250)}:5432",
        )
    trap("A-switch", 360, "10.1.0.1", "1.3.6.1.6.3.1.1.5.4", 7)
    # B: a database host fills its disk, then the database complains
    for k in range(12):
        webhook("B-disk", 1800 + k * 45, "db-07", rng.choice([f"Disk /var/lib/pgsql {90 + k % 10}% full", "could not write to WAL: No space left"]),
                "critical" if k > 5 else "medium", "postgresql")  # fmt: skip
    # C: a bad deploy of one service on 8 web hosts
    for i in range(8):
        for _ in range(3):
            webhook("C-deploy", 3600 + rng.uniform(0, 240), f"web-{i:02d}", f"HTTP 500 from checkout handler after {rng.randint(20, 900)} ms",
                    "high", "checkout")  # fmt: skip
    # D: certificates about to expire on the edge proxies
    for i in range(4):
        webhook(
            "D-cert",
            5400 + i * 60,
            f"edge-{i}",
            f"Certificate for shop{i}.example.com expires in {rng.randint(2, 9)} days",
            "medium",
        )
    # E: an Alertmanager alert fires and resolves
    for status, t in (("firing", 7200), ("resolved", 7500)):
        alert = {"status": status, "labels": {"alertname": "HighLatency", "instance": "api-3:9100", "severity": "warning"},
                 "annotations": {"summary": "p99 latency above 2 s on api-3"}, "fingerprint": "e1e1e1", "startsAt": "2026-11-23T12:00:00Z"}  # fmt: skip
        events.append(
            {"label": "E-latency", "source_type": "alertmanager", "t": t, "payload": {"alert": alert, "group": {}}}
        )
    # Noise: unrelated one-off events on other hosts, spread over three hours
    words = ["backup completed", "user logged in", "cron job finished", "config reloaded", "package updated", "ntp resynced",
             "cache warmed", "token rotated", "report generated", "license checked"]  # fmt: skip
    for i in range(150):
        webhook(
            f"noise-{i}",
            rng.uniform(0, 10800),
            f"misc-{i:03d}",
            f"{rng.choice(words)} ({rng.choice(['ok', 'done', 'fine'])})",
            "info",
        )
    events.sort(key=lambda e: e["t"])
    return {"topology": topology, "events": events}


def evaluate(data: dict, *, batch: int = 20) -> dict:
    from app.correlation import store as correlation_store
    from app.correlation.query import replace_topology
    from app.correlation.store import correlate_batch
    from app.db import init_database
    from app.events.envelope import make_item
    from app.events.store import store_batch
    from app.ids import new_id
    from app.migrate import migrate
    from app.models import ProcessedEvent

    with tempfile.TemporaryDirectory() as tmp:
        db = init_database(f"sqlite:///{tmp}/quality.db")
        migrate()
        correlation_store._topology = None
        replace_topology(data["topology"], actor="quality")
        labels: dict[str, str] = {}
        events = data["events"]
        for k in range(0, len(events), batch):
            items = []
            for e in events[k : k + batch]:
                item = make_item(id=new_id(), source_type=e["source_type"], received_at=T0 + e["t"], payload=e["payload"],
                                 source=e["payload"].get("peer"))  # fmt: skip
                labels[item["id"]] = e["label"]
                items.append(item)
            result = store_batch(items, window_s=300)
            correlate_batch(result.event_ids)
        predicted = {
            str(r.id): str(r.correlation_id)
            for r in ProcessedEvent.select(ProcessedEvent.id, ProcessedEvent.correlation_id)
        }
        db.close()
        correlation_store._topology = None
    ids = [i for i in labels if i in predicted]
    tp = fp = fn = 0
    for a, b in combinations(ids, 2):
        same_true, same_pred = labels[a] == labels[b], predicted[a] == predicted[b] and predicted[a] != "None"
        tp += same_true and same_pred
        fp += same_pred and not same_true
        fn += same_true and not same_pred
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    found = []
    for label in sorted({labels[i] for i in ids if not labels[i].startswith("noise")}):
        members = [predicted[i] for i in ids if labels[i] == label]
        top, count = Counter(members).most_common(1)[0]
        found.append((label, count / len(members)))
    incidents = len({predicted[i] for i in ids if predicted[i] != "None"})
    return {
        "events": len(ids),
        "incidents": incidents,
        "precision": round(precision, 3),
        "recall": round(recall, 3),
        "f1": round(2 * precision * recall / (precision + recall), 3) if precision + recall else 0.0,
        "true_incidents_found": all(share >= 0.9 for _, share in found),
        "per_incident_share": dict(found),
        "noise_reduction": round(1 - incidents / len(ids), 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="regenerate the scenario file")
    args = parser.parse_args()
    if args.write:
        SCENARIOS.write_text(json.dumps(generate(), indent=1) + "\n")
        print(f"wrote {SCENARIOS}")
    print(json.dumps(evaluate(json.loads(SCENARIOS.read_text())), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
